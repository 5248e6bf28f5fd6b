"""The end-to-end demo behind ``make demo``, on the embedded dataset.

The product's main job, shrunk to run in minutes on two CPU cores:

1. generate the embedded speech-like dataset in the official
   VoiceBank-DEMAND layout and prepare it exactly as the real dataset;
2. evaluate the demo teacher: a MANNER (18 base channels) trained by
   :func:`train_demo_teacher` (``speechbrain-kd demo --train-teacher``) on
   15 times more embedded data than the students get, committed as an
   exported model folder (:data:`DEMO_TEACHER`);
3. distil a MANNER-S-1.5GF student from it with MV-AT + output KD
   (``recipes/Valentini/train_mvat.py hparams/mvat.yaml``);
4. train the same student without KD (``hparams/manner_baseline.yaml``),
   same epochs and seed;
5. print params, MACs per second of audio and the test metrics of the
   three models and of the noisy input, and draw ``demo.png``.

The recipes and yaml files are the real ones; the demo only overrides
sizes and lengths (:data:`DEMO_SETTINGS`).
"""

import json
import logging
import pathlib
import shlex
import shutil
import subprocess
import sys
import threading
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
#: The committed demo teacher (an exported model folder).
DEMO_TEACHER = REPO_ROOT / "recipes" / "Valentini" / "demo_teacher"

#: What the demo changes in the recipes, and why (two CPU cores, minutes).
DEMO_SETTINGS = {
    "n_train": 40,  # pairs (27 train, 13 validation speakers p282/p287)
    "n_test": 32,
    # The teacher's data: the same generator and seed, so the students'
    # 40 pairs are among its 600 (400 train, 200 validation).
    "teacher_data": {"n_train": 600, "n_test": 8},
    "teacher": [
        "--channels=18",  # MANNER-B has 60
        "--depth=4",
        "--attention_layers=[0, 1, 2, 3]",
    ],
    "teacher_training": ["--number_of_epochs=6", "--batch_size=4"],
    # MANNER-S-1.5GF as in the paper, trained for 36 epochs of 14 steps:
    # batches of 2 and a one-cycle peak of 3e-3 (the recipes: 4 and 1e-3,
    # for 350 epochs) so that both students get past their initial output
    # gain; validated every third epoch (the training is the same); the
    # last epoch is tested, as 13 validation utterances cannot rank epochs
    # whose PESQ differs by 0.01.
    "epochs": 36,
    "student": [
        "--batch_size=2",
        "--max_lr=0.003",
        "--ckpt_max_key=epoch",
        "--valid_interval=3",
    ],
    # The 27 training segments are deterministic: the teacher runs once
    # per segment, not once per step.
    "kd": ["--teacher_cache=True"],
    "common": ["--metric_jobs=1", "--num_workers=0"],
}

logger = logging.getLogger(__name__)


def summarize_manifests(manifests):
    """Counts utterances and hours in prepared manifests.

    Arguments
    ---------
    manifests : dict
        ``{split: path to a SpeechBrain JSON manifest}`` with a ``length``
        field in seconds per entry.

    Returns
    -------
    dict
        ``{split: {"files": int, "hours": float}}``.

    Example
    -------
    >>> import json, tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "test.json"
    >>> _ = tmp.write_text(json.dumps({"a": {"length": 1800.0}}))
    >>> summarize_manifests({"test": tmp})
    {'test': {'files': 1, 'hours': 0.5}}
    """
    summary = {}
    for split, path in manifests.items():
        entries = json.loads(pathlib.Path(path).read_text())
        seconds = sum(entry["length"] for entry in entries.values())
        summary[split] = {"files": len(entries), "hours": seconds / 3600}
    return summary


def format_data_summary(manifest_summary, dataset_summary):
    """Formats the dataset summary table printed by the demo.

    Arguments
    ---------
    manifest_summary : dict
        Output of :func:`summarize_manifests`.
    dataset_summary : dict
        Output of ``describe_dataset``: holds ``snrs`` per split.

    Returns
    -------
    str
        A fixed-width table, one row per split.

    Example
    -------
    >>> print(
    ...     format_data_summary(
    ...         {"test": {"files": 2, "hours": 0.001}},
    ...         {"snrs": {"test": [2.5, 7.5]}},
    ...     )
    ... )
    split   files   minutes  SNRs (dB)
    test        2      0.06  2.5, 7.5
    """
    rows = [f"{'split':<6}{'files':>7}{'minutes':>10}  SNRs (dB)"]
    snrs_by_split = dataset_summary.get("snrs", {})
    for split, stats in manifest_summary.items():
        # valid is carved out of the training set, so it shares its SNRs.
        source = "test" if split == "test" else "train"
        snrs = ", ".join(f"{s:g}" for s in snrs_by_split.get(source, []))
        rows.append(
            f"{split:<6}{stats['files']:>7}{stats['hours'] * 60:>10.2f}  {snrs}"
        )
    return "\n".join(rows)


def prepare_data(output_folder, seed=0, n_train=12, n_test=4):
    """Writes the embedded dataset and prepares it; prints a summary.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where the data, the prepared manifests and results go.
    seed : int
        Seed of the embedded dataset.

    n_train, n_test : int
        Number of training (incl. validation) and test pairs.

    Returns
    -------
    dict
        ``{"data_folder", "prepare_folder", "manifests", "summary"}``.

    Example
    -------
    >>> import tempfile
    >>> result = prepare_data(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    split ...
    >>> sorted(result["manifests"])
    ['test', 'train', 'valid']
    """
    from speechbrain_kd.data.synthetic import (
        describe_dataset,
        make_mini_valentini,
    )
    from speechbrain_kd.data.valentini import prepare_valentini

    output_folder = pathlib.Path(output_folder)
    data_folder = output_folder / "data"
    logger.info("Writing the embedded dataset to %s", data_folder)
    make_mini_valentini(data_folder, n_train=n_train, n_test=n_test, seed=seed)
    prepare_folder = output_folder / "prepared"
    manifests = prepare_valentini(data_folder, prepare_folder)
    summary = summarize_manifests(manifests)
    print(format_data_summary(summary, describe_dataset(data_folder)))
    return {
        "data_folder": data_folder,
        "prepare_folder": prepare_folder,
        "manifests": manifests,
        "summary": summary,
    }


def recipe_command(script, hparams, output_folder, data, extra):
    """The command line of one recipe run of the demo.

    Arguments
    ---------
    script : str
        Script name in ``recipes/Valentini``.
    hparams : str
        Yaml file name in ``hparams``.
    output_folder : pathlib.Path
        The run's output folder.
    data : dict
        Output of :func:`prepare_data`.
    extra : list of str
        More command-line overrides.

    Returns
    -------
    list of str
        The command (the current Python runs the script).

    Example
    -------
    >>> data = {"data_folder": "d", "prepare_folder": "p"}
    >>> recipe_command("train_mvat.py", "mvat.yaml", "o", data, ["--seed=1"])[
    ...     -1
    ... ]
    '--seed=1'
    """
    return [
        sys.executable,
        str(REPO_ROOT / "recipes" / "Valentini" / script),
        str(REPO_ROOT / "hparams" / hparams),
        f"--data_folder={data['data_folder']}",
        f"--prepare_folder={data['prepare_folder']}",
        f"--output_folder={output_folder}",
        *DEMO_SETTINGS["common"],
        *extra,
    ]


def run_recipe(script, hparams, output_folder, data, extra):
    """Runs one recipe script in a subprocess, streaming its output.

    Arguments
    ---------
    script, hparams, output_folder, data, extra
        As for :func:`recipe_command`.

    Returns
    -------
    float
        Wall time in seconds.
    """
    command = recipe_command(script, hparams, output_folder, data, extra)
    print(f"\n$ python recipes/Valentini/{script} hparams/{hparams} ...")
    start = time.time()
    result = subprocess.run(command, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(
            f"{script} {hparams} failed (exit {result.returncode}); see "
            f"{output_folder / 'log.txt'}"
        )
    return time.time() - start


def run_recipes_in_parallel(jobs, data, epochs, parallel=2, background=None):
    """Runs recipe jobs ``parallel`` at a time, one CPU thread each.

    Small models use two cores better as two one-thread runs than as one
    two-thread run. Each run's output goes to ``<output>/stdout.txt``; one
    progress bar per run counts its finished epochs (``train_log.txt``).
    ``background`` (a function) runs in a thread of this process, with one
    torch thread, on the first slot no run needs any more.

    Arguments
    ---------
    jobs : list of (str, str, pathlib.Path, list of str)
        ``(script, hparams, output_folder, extra)`` per run.
    data : dict
        Output of :func:`prepare_data`.
    epochs : int
        Epochs of every run (the bars' total).
    parallel : int
        Runs at a time.
    background : callable, optional
        Work for a freed slot; its result is returned.

    Returns
    -------
    object
        What ``background`` returned (None without it).

    Raises
    ------
    RuntimeError
        A run failed: names its script, yaml and ``stdout.txt``.

    Example
    -------
    >>> run_recipes_in_parallel([], {}, epochs=1, background=lambda: "done")
    'done'
    """
    import os

    from tqdm import tqdm

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending = list(jobs)
    running = []
    started = {}
    task = _BackgroundTask(background)
    for script, hparams, folder, _ in jobs:
        print(
            f"$ python recipes/Valentini/{script} hparams/{hparams} ... "
            f"--output_folder={folder}"
        )
    try:
        while pending or running:
            while pending and len(running) < parallel:
                script, hparams, folder, extra = pending.pop(0)
                folder = pathlib.Path(folder)
                folder.mkdir(parents=True, exist_ok=True)
                stdout = open(folder / "stdout.txt", "w")
                process = subprocess.Popen(
                    recipe_command(script, hparams, folder, data, extra),
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=stdout,
                    stderr=subprocess.STDOUT,
                )
                bar = tqdm(total=epochs, desc=folder.name, unit="epoch")
                started[folder] = time.time()
                running.append((process, stdout, bar, script, hparams, folder))
            if not pending and len(running) < parallel:
                task.start()
            time.sleep(1.0)
            for job in list(running):
                process, stdout, bar, script, hparams, folder = job
                bar.update(_finished_epochs(folder) - bar.n)
                if process.poll() is None:
                    continue
                running.remove(job)
                stdout.close()
                bar.close()
                tqdm.write(
                    f"{folder.name}: exit {process.returncode} after "
                    f"{time.time() - started[folder]:.0f} s"
                )
                if process.returncode != 0:
                    tail = (folder / "stdout.txt").read_text().splitlines()
                    raise RuntimeError(
                        f"{script} {hparams} failed (exit "
                        f"{process.returncode}); the end of "
                        f"{folder / 'stdout.txt'}:\n" + "\n".join(tail[-15:])
                    )
    finally:
        # An error or Ctrl-C stops the other runs; their checkpoints stay,
        # so the next demo resumes them.
        for process, stdout, bar, *_ in running:
            process.kill()
            process.wait()
            stdout.close()
            bar.close()
    task.start()
    return task.result()


class _BackgroundTask:
    """A function run once in a thread with one torch thread."""

    def __init__(self, function):
        self.function = function
        self.thread = None
        self.outcome = {}

    def start(self):
        """Starts the thread (once; nothing without a function)."""
        if self.function is None or self.thread is not None:
            return
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import torch

        torch.set_num_threads(1)
        try:
            self.outcome["value"] = self.function()
        except BaseException as error:  # re-raised in the caller's thread
            self.outcome["error"] = error

    def result(self):
        """Waits for the function; returns its value or raises its error.

        Returns
        -------
        object
            The function's return value (None if it never started).
        """
        if self.thread is None:
            return None
        self.thread.join()
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["value"]


def _finished_epochs(folder):
    log = pathlib.Path(folder) / "train_log.txt"
    if not log.is_file():
        return 0
    return sum(line.startswith("epoch:") for line in log.open())


def model_costs(hparams_file, overrides, key="model"):
    """Parameters and MACs per second of 16 kHz audio of a recipe model.

    Arguments
    ---------
    hparams_file : pathlib.Path
        The run's saved ``hyperparams.yaml``.
    overrides : str
        Yaml overrides (e.g. the data folder placeholder).
    key : str
        The model's key in the yaml.

    Returns
    -------
    dict
        ``{"params": int, "macs_per_second": int}``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> yaml = pathlib.Path(tempfile.mkdtemp()) / "hyperparams.yaml"
    >>> _ = yaml.write_text(
    ...     "data_folder: !PLACEHOLDER\\n"
    ...     "model: !new:torch.nn.Conv1d [1, 1, 3]\\n"
    ... )
    >>> model_costs(yaml, "data_folder: unused")["params"]
    4
    """
    from speechbrain_kd.profiling import load_module_from_hparams

    return module_costs(
        load_module_from_hparams(hparams_file, key, overrides=overrides)
    )


def module_costs(model):
    """Parameters and MACs per second of 16 kHz audio of a model.

    Arguments
    ---------
    model : torch.nn.Module
        A waveform model.

    Returns
    -------
    dict
        ``{"params": int, "macs_per_second": int}``.

    Example
    -------
    >>> import torch
    >>> module_costs(torch.nn.Conv1d(1, 1, 3, padding=1))["params"]
    4
    """
    from speechbrain_kd.profiling import (
        count_macs,
        count_parameters,
        make_example_input,
    )

    return {
        "params": count_parameters(model)["total"],
        "macs_per_second": count_macs(model, make_example_input(model, 1.0)),
    }


def noisy_scores(test_manifest):
    """Metrics of the unprocessed noisy test files against the clean ones.

    Arguments
    ---------
    test_manifest : str or pathlib.Path
        The prepared ``test.json``.

    Returns
    -------
    dict
        Mean of each metric over the test files.

    Example
    -------
    >>> import tempfile
    >>> data = prepare_data(tempfile.mkdtemp(), n_test=2)  # doctest: +ELLIPSIS
    split ...
    >>> scores = noisy_scores(data["manifests"]["test"])
    >>> 1.0 < scores["pesq"] < 4.64 and 0.0 < scores["stoi"] < 1.0
    True
    """
    from speechbrain_kd.audio import read_audio
    from speechbrain_kd.metrics import evaluate_pairs, summarize_scores

    def read(path):
        """A file as float64 samples."""
        return read_audio(path).double().numpy()

    entries = json.loads(pathlib.Path(test_manifest).read_text())
    pairs = [
        (read(e["clean_wav"]), read(e["noisy_wav"])) for e in entries.values()
    ]
    rows = evaluate_pairs(pairs, progress=False)
    return summarize_scores(rows)


TABLE_METRICS = ("pesq", "stoi", "csig", "cbak", "covl")


def format_results(rows):
    """The demo's results table.

    Arguments
    ---------
    rows : list of (str, dict)
        Model name and a dict with ``params``, ``macs_per_second`` and the
        metrics of :data:`TABLE_METRICS` (missing entries print as ``-``).

    Returns
    -------
    str
        A fixed-width table.

    Example
    -------
    >>> table = format_results([("noisy", {"pesq": 1.5})]).splitlines()
    >>> table[0].split()
    ['model', 'params', 'GMAC/s', 'PESQ', 'STOI', 'CSIG', 'CBAK', 'COVL']
    >>> table[1].split()
    ['noisy', '-', '-', '1.500', '-', '-', '-', '-']
    """
    header = f"{'model':<30}{'params':>10}{'GMAC/s':>8}" + "".join(
        f"{m.upper():>7}" for m in TABLE_METRICS
    )
    lines = [header]
    for name, row in rows:
        params = f"{row['params']:,}" if "params" in row else "-"
        macs = (
            f"{row['macs_per_second'] / 1e9:.3f}"
            if "macs_per_second" in row
            else "-"
        )
        metrics = "".join(
            f"{row[m]:>7.3f}" if row.get(m) is not None else f"{'-':>7}"
            for m in TABLE_METRICS
        )
        lines.append(f"{name:<30}{params:>10}{macs:>8}{metrics}")
    return "\n".join(lines)


def enhance_test_set(model_folder, test_manifest, output_dir):
    """Enhances every test file with an exported model folder.

    Arguments
    ---------
    model_folder : pathlib.Path
        An exported model folder (``KDEnhancement``).
    test_manifest : pathlib.Path
        The prepared ``test.json``.
    output_dir : pathlib.Path
        Where ``<id>.wav`` files are written.

    Returns
    -------
    pathlib.Path
        ``output_dir``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> data = prepare_data(out, n_test=1)  # doctest: +ELLIPSIS
    split ...
    >>> folder = enhance_test_set(
    ...     DEMO_TEACHER, data["manifests"]["test"], out / "enhanced"
    ... )
    >>> [path.suffix for path in folder.iterdir()]
    ['.wav']
    """
    from speechbrain_kd.pretrained import KDEnhancement

    enhancer = KDEnhancement.from_hparams(
        source=str(model_folder),
        savedir=str(output_dir.parent / "pretrained"),
        run_opts={"device": "cpu"},
    )
    entries = json.loads(pathlib.Path(test_manifest).read_text())
    for uid, entry in entries.items():
        enhancer.enhance_file(entry["noisy_wav"], output_dir / f"{uid}.wav")
    return output_dir


def folder_scores(test_manifest, enhanced_dir):
    """Metrics of the files ``<id>.wav`` of a folder against the clean ones.

    Arguments
    ---------
    test_manifest : pathlib.Path
        The prepared ``test.json``.
    enhanced_dir : pathlib.Path
        Folder of enhanced files named by utterance id.

    Returns
    -------
    dict
        Mean of each metric over the test files.

    Example
    -------
    >>> import json, shutil, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> data = prepare_data(out, n_test=2)  # doctest: +ELLIPSIS
    split ...
    >>> test = data["manifests"]["test"]
    >>> (out / "copies").mkdir()
    >>> for uid, entry in json.loads(pathlib.Path(test).read_text()).items():
    ...     _ = shutil.copy(entry["noisy_wav"], out / "copies" / f"{uid}.wav")
    >>> copies, noisy = folder_scores(test, out / "copies"), noisy_scores(test)
    >>> max(abs(copies[key] - noisy[key]) for key in noisy) < 1e-9
    True
    """
    from speechbrain_kd.audio import read_audio
    from speechbrain_kd.metrics import evaluate_pairs, summarize_scores

    entries = json.loads(pathlib.Path(test_manifest).read_text())
    pairs = [
        (
            read_audio(e["clean_wav"]).double().numpy(),
            read_audio(enhanced_dir / f"{uid}.wav").double().numpy(),
        )
        for uid, e in entries.items()
    ]
    return summarize_scores(evaluate_pairs(pairs, progress=False))


def run_demo(output_folder="results/demo", seed=0, seed_spread=False):
    """Runs the whole demo, prints its table and draws ``demo.png``.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where the data, the two training runs, ``results.json`` and
        ``demo.png`` go.
    seed : int
        Seed of the embedded dataset.
    seed_spread : bool
        Also train both students with the next recipe seed (101) and
        print each one's spread and mean over the two seeds
        (:func:`format_seed_spread`).

    Returns
    -------
    list of (str, dict)
        The rows of the table.

    Raises
    ------
    FileNotFoundError
        The demo teacher folder is missing.
    """
    from speechbrain_kd.pretrained.folder import MODULE_KEY, read_hyperparams

    start = time.time()
    if not (DEMO_TEACHER / "enhance_model.ckpt").is_file():
        raise FileNotFoundError(
            f"the demo teacher {DEMO_TEACHER} is missing; rebuild it with "
            "`speechbrain-kd demo --train-teacher` (about 40 min on 2 cores)"
        )
    output_folder = pathlib.Path(output_folder).resolve()
    data = prepare_data(
        output_folder,
        seed=seed,
        n_train=DEMO_SETTINGS["n_train"],
        n_test=DEMO_SETTINGS["n_test"],
    )
    test_manifest = data["manifests"]["test"]
    runs = {
        "mvat": output_folder / "student_mvat",
        "baseline": output_folder / "student_baseline",
    }
    teacher_args = DEMO_SETTINGS["teacher"]
    student = [
        f"--number_of_epochs={DEMO_SETTINGS['epochs']}",
        *DEMO_SETTINGS["student"],
    ]
    kd_args = [
        f"--teacher_source={DEMO_TEACHER}",
        *(arg.replace("--", "--teacher_", 1) for arg in teacher_args),
        *student,
        *DEMO_SETTINGS["kd"],
    ]

    def seeded(args):
        """The same run with the next recipe seed."""
        return [*args, "--seed=101"]

    jobs = [
        ("train_mvat.py", "mvat.yaml", runs["mvat"], kd_args),
        ("train_teacher.py", "manner_baseline.yaml", runs["baseline"], student),
    ]
    if seed_spread:
        runs["mvat_seed"] = output_folder / "student_mvat_seed101"
        runs["baseline_seed"] = output_folder / "student_baseline_seed101"
        jobs += [
            ("train_mvat.py", "mvat.yaml", runs["mvat_seed"], seeded(kd_args)),
            (
                "train_teacher.py",
                "manner_baseline.yaml",
                runs["baseline_seed"],
                seeded(student),
            ),
        ]
    teacher_dir = output_folder / "teacher" / "enhanced"

    def score_inputs_and_teacher():
        """The rows of the noisy input and of the teacher."""
        enhance_test_set(DEMO_TEACHER, test_manifest, teacher_dir)
        costs = module_costs(read_hyperparams(DEMO_TEACHER)[MODULE_KEY])
        return [
            ("noisy input", noisy_scores(test_manifest)),
            (
                "teacher (MANNER, N=18)",
                {**folder_scores(test_manifest, teacher_dir), **costs},
            ),
        ]

    print(
        "\nTraining the students, two runs at a time; the teacher enhances "
        "and scores the test set when a run is done:"
    )
    rows = run_recipes_in_parallel(
        jobs, data, DEMO_SETTINGS["epochs"], background=score_inputs_and_teacher
    )
    placeholder = f"data_folder: {data['data_folder']}"
    names = {
        "mvat": "student MV-AT + KD",
        "baseline": "student, no KD",
        "mvat_seed": "student MV-AT + KD, seed 101",
        "baseline_seed": "student, no KD, seed 101",
    }
    for key, folder in runs.items():
        summary = json.loads((folder / "test_summary.json").read_text())
        costs = model_costs(folder / "hyperparams.yaml", placeholder)
        rows.append((names[key], {**summary, **costs}))
    print(f"\nTest set: {DEMO_SETTINGS['n_test']} embedded utterances")
    print(format_results(rows))
    if seed_spread:
        print(format_seed_spread(dict(rows), names))
    figure = draw_demo_figure(output_folder, data, runs, teacher_dir)
    minutes = (time.time() - start) / 60
    print(f"\nFigure: {figure}")
    print(f"Demo finished in {minutes:.1f} min; outputs in {output_folder}")
    (output_folder / "results.json").write_text(
        json.dumps(dict(rows), indent=2, default=float)
    )
    return rows


def format_seed_spread(scores, names):
    """The lines under the table of ``--seed-spread``: for each student,
    the spread between seeds 100 and 101 and the mean of the two, and the
    KD student's lead at each seed.

    Arguments
    ---------
    scores : dict
        Table row name -> metrics.
    names : dict
        ``{"mvat", "baseline", "mvat_seed", "baseline_seed"}`` -> row name.

    Returns
    -------
    str
        One line per student, then one line of leads.

    Example
    -------
    >>> names = {
    ...     k: k for k in ("mvat", "baseline", "mvat_seed", "baseline_seed")
    ... }
    >>> scores = {
    ...     "mvat": {"pesq": 2.0, "stoi": 0.9},
    ...     "mvat_seed": {"pesq": 1.9, "stoi": 0.9},
    ...     "baseline": {"pesq": 1.5, "stoi": 0.8},
    ...     "baseline_seed": {"pesq": 1.75, "stoi": 0.7},
    ... }
    >>> print(format_seed_spread(scores, names))
    seeds 100 and 101   PESQ spread / mean  STOI spread / mean
    MV-AT + KD               0.100 / 1.950       0.000 / 0.900
    no KD                    0.250 / 1.625       0.100 / 0.750
    KD lead, seed 100: PESQ 0.500, STOI 0.100; seed 101: PESQ 0.150, STOI 0.200
    """
    metrics = ("pesq", "stoi")
    lines = [
        f"{'seeds 100 and 101':<18}"
        + "".join(f"{m.upper() + ' spread / mean':>20}" for m in metrics)
    ]
    for label, key in (("MV-AT + KD", "mvat"), ("no KD", "baseline")):
        first, second = scores[names[key]], scores[names[f"{key}_seed"]]
        cells = "".join(
            f"{abs(first[m] - second[m]):>12.3f} / {(first[m] + second[m]) / 2:.3f}"
            for m in metrics
        )
        lines.append(f"{label:<18}{cells}")
    leads = []
    for seed, suffix in ((100, ""), (101, "_seed")):
        kd, alone = (
            scores[names["mvat" + suffix]],
            scores[names["baseline" + suffix]],
        )
        leads.append(
            f"seed {seed}: "
            + ", ".join(f"{m.upper()} {kd[m] - alone[m]:.3f}" for m in metrics)
        )
    lines.append("KD lead, " + "; ".join(leads))
    return "\n".join(lines)


def draw_demo_figure(output_folder, data, runs, teacher_dir):
    """Draws ``demo.png``: spectrograms of the first test utterance and the
    validation PESQ per epoch of the teacher and the students.

    Arguments
    ---------
    output_folder : pathlib.Path
        The demo's output folder.
    data : dict
        Output of :func:`prepare_data`.
    runs : dict
        ``{"mvat": folder, "baseline": folder, ...}`` of the student runs.
    teacher_dir : pathlib.Path
        The teacher's enhanced test files.

    Returns
    -------
    pathlib.Path
        The PNG.
    """
    from speechbrain_kd.plotting import plot_demo

    entries = json.loads(pathlib.Path(data["manifests"]["test"]).read_text())
    uid, entry = sorted(entries.items())[0]
    files = [
        (f"clean ({uid})", entry["clean_wav"]),
        ("noisy", entry["noisy_wav"]),
        ("teacher", teacher_dir / f"{uid}.wav"),
        ("student MV-AT + KD", runs["mvat"] / "enhanced" / f"{uid}.wav"),
        ("student, no KD", runs["baseline"] / "enhanced" / f"{uid}.wav"),
    ]
    curves = [
        (
            "teacher (its run: 400 train, 200 validation utterances)",
            DEMO_TEACHER / "train_log.txt",
        ),
        ("student MV-AT + KD", runs["mvat"]),
        ("student, no KD", runs["baseline"]),
    ]
    return plot_demo(files, curves, output_folder / "demo.png")


def train_demo_teacher(work_folder="results/demo_teacher", seed=0):
    """Trains the demo teacher and exports it to :data:`DEMO_TEACHER`.

    The embedded dataset of ``DEMO_SETTINGS["teacher_data"]`` (same seed
    as the demo: its pairs include the students' ones), then
    ``train_teacher.py hparams/manner_teacher.yaml`` with
    ``DEMO_SETTINGS["teacher"]`` and ``["teacher_training"]``, then
    ``speechbrain-kd export`` of the best checkpoint; the run's
    ``train_log.txt`` is copied beside it.

    Arguments
    ---------
    work_folder : str or pathlib.Path
        Where the teacher's data and training run go.
    seed : int
        Seed of the embedded dataset.

    Returns
    -------
    pathlib.Path
        :data:`DEMO_TEACHER`.
    """
    from speechbrain_kd.pretrained import export_model

    work_folder = pathlib.Path(work_folder).resolve()
    data = prepare_data(work_folder, seed=seed, **DEMO_SETTINGS["teacher_data"])
    run = work_folder / "teacher"
    run_recipe(
        "train_teacher.py",
        "manner_teacher.yaml",
        run,
        data,
        [*DEMO_SETTINGS["teacher"], *DEMO_SETTINGS["teacher_training"]],
    )
    export_model(run / "hyperparams.yaml", run, DEMO_TEACHER, force=True)
    shutil.copy(run / "train_log.txt", DEMO_TEACHER / "train_log.txt")
    with open(DEMO_TEACHER / "README.md", "a", encoding="utf-8") as card:
        card.write(_reproduce_section())
    return DEMO_TEACHER


def _reproduce_section():
    """The model card section saying how the demo teacher was built."""
    data = DEMO_SETTINGS["teacher_data"]
    args = " ".join(
        shlex.quote(arg)
        for arg in [
            *DEMO_SETTINGS["teacher"],
            *DEMO_SETTINGS["teacher_training"],
            *DEMO_SETTINGS["common"],
        ]
    )
    return (
        "\n## Reproduce\n\n"
        "The teacher of `make demo`. `speechbrain-kd demo --train-teacher` "
        "rebuilds this folder (about 45 min on 2 CPU cores): the embedded "
        f"dataset with {data['n_train']} training pairs (seed 0; the "
        "demo's students train on its first "
        f"{DEMO_SETTINGS['n_train']}), then\n\n"
        "```bash\n"
        "python recipes/Valentini/train_teacher.py "
        "hparams/manner_teacher.yaml \\\n"
        f"    --data_folder=DATA --output_folder=RUN {args}\n"
        "```\n\n"
        "and `speechbrain-kd export` of its best checkpoint; "
        "`train_log.txt` is that run's log.\n"
    )
