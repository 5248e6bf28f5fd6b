"""The end-to-end demo behind ``make demo``, on the embedded dataset.

The product's main job, shrunk to run in minutes on two CPU cores:

1. generate the embedded speech-like dataset in the official
   VoiceBank-DEMAND layout and prepare it exactly as the real dataset;
2. train a small MANNER teacher with ``recipes/Valentini/train_teacher.py``;
3. distil a MANNER-S-1.5GF student from it with MV-AT + output KD
   (``recipes/Valentini/train_mvat.py hparams/mvat.yaml``);
4. train the same student without KD (``hparams/manner_baseline.yaml``);
5. print params, MACs per second of audio and the test metrics of the
   three models (and of the unprocessed noisy input).

The recipes and yaml files are the real ones; the demo only overrides
sizes and lengths (:data:`DEMO_SETTINGS`): a teacher of 24 base channels
(4.0 M parameters instead of MANNER-B's 24.1 M), fewer epochs, and a few
dozen short utterances. Its numbers show the pipeline working end to end;
they are not the paper's results, which need the real dataset and a GPU.
"""

import json
import logging
import pathlib
import subprocess
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: What the demo changes in the recipes, and why (two CPU cores, minutes).
DEMO_SETTINGS = {
    "n_train": 24,  # pairs (16 train, 8 validation speakers p282/p287)
    "n_test": 8,
    "teacher": [
        "--channels=24",  # MANNER-B has 60
        "--depth=4",
        "--attention_layers=[0, 1, 2, 3]",
        "--number_of_epochs=16",
    ],
    "student": ["--number_of_epochs=16"],  # MANNER-S-1.5GF as in the paper
    "common": ["--batch_size=4", "--metric_jobs=1", "--num_workers=0"],
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


def run_recipe(script, hparams, output_folder, data, extra):
    """Runs one recipe script in a subprocess, streaming a short status.

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
    float
        Wall time in seconds.
    """
    command = [
        sys.executable,
        str(REPO_ROOT / "recipes" / "Valentini" / script),
        str(REPO_ROOT / "hparams" / hparams),
        f"--data_folder={data['data_folder']}",
        f"--prepare_folder={data['prepare_folder']}",
        f"--output_folder={output_folder}",
        *DEMO_SETTINGS["common"],
        *extra,
    ]
    print(f"\n$ python recipes/Valentini/{script} hparams/{hparams} ...")
    start = time.time()
    result = subprocess.run(command, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(
            f"{script} {hparams} failed (exit {result.returncode}); see "
            f"{output_folder / 'log.txt'}"
        )
    return time.time() - start


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
    """
    from speechbrain_kd.profiling import (
        count_macs,
        count_parameters,
        load_module_from_hparams,
        make_example_input,
    )

    model = load_module_from_hparams(hparams_file, key, overrides=overrides)
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
    header = f"{'model':<26}{'params':>10}{'GMAC/s':>8}" + "".join(
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
        lines.append(f"{name:<26}{params:>10}{macs:>8}{metrics}")
    return "\n".join(lines)


def run_demo(output_folder="results/demo", seed=0):
    """Runs the whole demo and prints the three-row results table.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where the data, the three training runs and ``results.json`` go.
    seed : int
        Seed of the embedded dataset.

    Returns
    -------
    list of (str, dict)
        The rows of the table.
    """
    start = time.time()
    output_folder = pathlib.Path(output_folder).resolve()
    data = prepare_data(
        output_folder,
        seed=seed,
        n_train=DEMO_SETTINGS["n_train"],
        n_test=DEMO_SETTINGS["n_test"],
    )
    runs = {
        "teacher": output_folder / "teacher",
        "mvat": output_folder / "student_mvat",
        "baseline": output_folder / "student_baseline",
    }
    teacher = DEMO_SETTINGS["teacher"]
    run_recipe(
        "train_teacher.py",
        "manner_teacher.yaml",
        runs["teacher"],
        data,
        teacher,
    )
    run_recipe(
        "train_mvat.py",
        "mvat.yaml",
        runs["mvat"],
        data,
        [
            f"--teacher_source={runs['teacher']}",
            *(arg.replace("--", "--teacher_", 1) for arg in teacher[:3]),
            *DEMO_SETTINGS["student"],
        ],
    )
    run_recipe(
        "train_teacher.py",
        "manner_baseline.yaml",
        runs["baseline"],
        data,
        DEMO_SETTINGS["student"],
    )
    placeholder = f"data_folder: {data['data_folder']}"
    rows = [("noisy input", noisy_scores(data["manifests"]["test"]))]
    names = {
        "teacher": "teacher (MANNER, N=24)",
        "mvat": "student MV-AT + KD",
        "baseline": "student, no KD",
    }
    for key, folder in runs.items():
        summary = json.loads((folder / "test_summary.json").read_text())
        costs = model_costs(folder / "hyperparams.yaml", placeholder)
        rows.append((names[key], {**summary, **costs}))
    print(f"\nTest set: {DEMO_SETTINGS['n_test']} embedded utterances")
    print(format_results(rows))
    minutes = (time.time() - start) / 60
    print(f"\nDemo finished in {minutes:.1f} min; outputs in {output_folder}")
    (output_folder / "results.json").write_text(
        json.dumps(dict(rows), indent=2, default=float)
    )
    return rows
