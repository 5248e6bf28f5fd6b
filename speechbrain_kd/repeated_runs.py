"""Repeated runs of one recipe over seeds: run them (each in its own folder,
resumable, finished seeds skipped), aggregate their test metrics as mean ±
sample standard deviation, and compare two configurations utterance by
utterance."""

import csv
import json
import math
import pathlib
import subprocess
import sys

import numpy as np

SUMMARY = "test_summary.json"
PER_UTTERANCE = "test_per_utterance.csv"
RUN_LOG = "seed_run.log"


def seed_folder(root, seed):
    """The output folder of one seed: ``root/seed_<seed>``.

    Arguments
    ---------
    root : str or pathlib.Path
        The folder of all seeds.
    seed : int
        The seed.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> seed_folder("results/cos", 3).as_posix()
    'results/cos/seed_3'
    """
    return pathlib.Path(root) / f"seed_{int(seed)}"


def read_summary(folder, summary=SUMMARY):
    """The test summary of a finished run, or None when it has none (yet).

    Arguments
    ---------
    folder : str or pathlib.Path
        A run's output folder.
    summary : str
        The summary's file name.

    Returns
    -------
    dict or None
        The parsed summary.
    """
    path = pathlib.Path(folder) / summary
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def seed_command(python, script, hparams, seed, folder, args):
    """The recipe command of one seed: ``args`` with ``{seed}`` replaced,
    then ``--seed`` and ``--output_folder``.

    Arguments
    ---------
    python : str
        The interpreter.
    script : str
        The recipe script.
    hparams : str
        The recipe yaml.
    seed : int
        The seed.
    folder : pathlib.Path
        The seed's output folder.
    args : list of str
        Further recipe arguments.

    Returns
    -------
    list of str
        The command.

    Example
    -------
    >>> seed_command(
    ...     "python",
    ...     "train.py",
    ...     "a.yaml",
    ...     2,
    ...     pathlib.Path("r/seed_2"),
    ...     ["--prepare_folder=p_{seed}"],
    ... )  # doctest: +NORMALIZE_WHITESPACE
    ['python', 'train.py', 'a.yaml', '--prepare_folder=p_2', '--seed=2',
     '--output_folder=r/seed_2']
    """
    given = [a.replace("{seed}", str(int(seed))) for a in args]
    for option in ("--seed", "--output_folder"):
        if any(a == option or a.startswith(option + "=") for a in given):
            raise ValueError(
                f"{option} is set per seed by the command; remove it from "
                "the recipe arguments"
            )
    return [
        str(python),
        str(script),
        str(hparams),
        *given,
        f"--seed={int(seed)}",
        f"--output_folder={folder}",
    ]


def run_seeds(
    script,
    hparams,
    seeds,
    root,
    args=(),
    python=sys.executable,
    summary=SUMMARY,
    echo=print,
):
    """Runs the recipe once per seed, each in ``root/seed_<seed>``.

    A seed whose folder holds a readable summary is skipped; an interrupted
    seed is started again with the same command, so the recipe resumes from
    its last checkpoint. Each run's output goes to ``seed_run.log`` in its
    folder.

    Arguments
    ---------
    script : str
        The recipe script (``recipes/.../train_*.py``).
    hparams : str
        The recipe yaml.
    seeds : list of int
        The seeds.
    root : str or pathlib.Path
        The folder of all seeds.
    args : list of str
        Further recipe arguments (``{seed}`` is replaced by the seed).
    python : str
        The interpreter that runs the script.
    summary : str
        File name of the test summary the recipe writes.
    echo : callable
        Where progress lines go.

    Returns
    -------
    dict
        Seed -> ``"ran"`` or ``"skipped"``.

    Raises
    ------
    RuntimeError
        If a seed's run fails (naming the seed, its exit status and log).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one: {seeds}")
    for path, what in ((script, "recipe script"), (hparams, "recipe yaml")):
        if not pathlib.Path(path).is_file():
            raise FileNotFoundError(f"{what} {path} does not exist")
    done = {}
    for index, seed in enumerate(seeds, 1):
        folder = seed_folder(root, seed)
        command = seed_command(python, script, hparams, seed, folder, args)
        if read_summary(folder, summary) is not None:
            echo(f"seed {seed} ({index}/{len(seeds)}): finished, skipped")
            done[seed] = "skipped"
            continue
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / RUN_LOG
        echo(f"seed {seed} ({index}/{len(seeds)}): running, log in {log}")
        with open(log, "a") as out:
            out.write(" ".join(command) + "\n")
            out.flush()
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        if code != 0 or read_summary(folder, summary) is None:
            tail = "".join(log.read_text().splitlines(True)[-15:])
            raise RuntimeError(
                f"seed {seed} failed (exit status {code}, no {summary} in "
                f"{folder}); its log {log} ends with:\n{tail}\nrun the "
                "command again to resume it"
            )
        done[seed] = "ran"
    return done


def seed_folders(root):
    """The ``seed_<n>`` folders under ``root``, by seed.

    Arguments
    ---------
    root : str or pathlib.Path
        The folder of all seeds.

    Returns
    -------
    dict
        Seed -> folder, in seed order.
    """
    found = {}
    for path in pathlib.Path(root).glob("seed_*"):
        suffix = path.name[len("seed_") :]
        if path.is_dir() and suffix.lstrip("-").isdigit():
            found[int(suffix)] = path
    return dict(sorted(found.items()))


def aggregate(root, summary=SUMMARY, metrics=None):
    """Mean and sample standard deviation (ddof 1) of each test metric over
    the finished seeds under ``root``.

    Arguments
    ---------
    root : str or pathlib.Path
        The folder of all seeds.
    summary : str
        File name of each seed's test summary.
    metrics : list of str, optional
        Metrics to keep (default: every numeric key all summaries share).

    Returns
    -------
    dict
        ``seeds`` (list), ``metrics``: metric -> ``{"values", "mean",
        "std", "n"}`` (``std`` NaN for a single seed).

    Raises
    ------
    FileNotFoundError
        If no seed under ``root`` has finished.
    ValueError
        If a requested metric is missing from a summary.
    """
    summaries = {
        seed: s
        for seed, folder in seed_folders(root).items()
        if (s := read_summary(folder, summary)) is not None
    }
    if not summaries:
        raise FileNotFoundError(
            f"no finished seed under {root}: expected seed_<n>/{summary}"
        )
    if metrics is None:
        shared = set.intersection(*(set(s) for s in summaries.values()))
        metrics = sorted(
            m
            for m in shared
            if all(
                isinstance(s[m], (int, float)) and not isinstance(s[m], bool)
                for s in summaries.values()
            )
        )
    table = {}
    for metric in metrics:
        values = []
        for seed, s in summaries.items():
            if metric not in s:
                raise ValueError(
                    f"{seed_folder(root, seed) / summary} has no {metric!r}"
                )
            value = s[metric]
            values.append(math.nan if value is None else float(value))
        array = np.asarray(values)
        table[metric] = {
            "values": values,
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if len(array) > 1 else math.nan,
            "n": len(values),
        }
    return {"seeds": list(summaries), "metrics": table}


def write_aggregate(result, root, digits=4):
    """Writes ``seeds_summary.md`` and ``seeds_summary.csv`` in ``root``.

    Arguments
    ---------
    result : dict
        :func:`aggregate`'s output.
    root : str or pathlib.Path
        The folder of all seeds.
    digits : int
        Decimals in the markdown table.

    Returns
    -------
    str
        The markdown table.
    """
    root = pathlib.Path(root)
    seeds = result["seeds"]
    lines = [
        "| metric | mean ± std | n | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " |",
        "|---|---|---|" + "---|" * len(seeds),
    ]
    with open(root / "seeds_summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["metric", "n", "mean", "std", *(f"seed_{s}" for s in seeds)]
        )
        for metric, row in result["metrics"].items():
            writer.writerow(
                [metric, row["n"], row["mean"], row["std"], *row["values"]]
            )
            std = (
                "n/a" if math.isnan(row["std"]) else f"{row['std']:.{digits}f}"
            )
            values = " | ".join(f"{v:.{digits}f}" for v in row["values"])
            lines.append(
                f"| {metric} | {row['mean']:.{digits}f} ± {std} | {row['n']} "
                f"| {values} |"
            )
    text = "\n".join(lines) + "\n"
    (root / "seeds_summary.md").write_text(text)
    return text


def seed_averaged_scores(root, per_utterance=PER_UTTERANCE):
    """Per-utterance scores averaged over the seeds under ``root``.

    Arguments
    ---------
    root : str or pathlib.Path
        The folder of all seeds.
    per_utterance : str
        File name of each seed's per-utterance scores.

    Returns
    -------
    dict
        Utterance id -> metric -> mean over the seeds that scored it.
    """
    sums = {}
    found = False
    for folder in seed_folders(root).values():
        path = folder / per_utterance
        if not path.is_file():
            continue
        found = True
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                uid = row.pop("id")
                for metric, value in row.items():
                    score = (
                        float(value) if value not in ("", "None") else math.nan
                    )
                    sums.setdefault(uid, {}).setdefault(metric, []).append(
                        score
                    )
    if not found:
        raise FileNotFoundError(
            f"no seed under {root} has {per_utterance} (finished runs write it)"
        )
    return {
        uid: {m: float(np.mean(v)) for m, v in scores.items()}
        for uid, scores in sums.items()
    }


def compare_configurations(
    baseline_root, candidate_root, metrics=None, confidence=0.95
):
    """Paired comparison of two configurations: each utterance's score
    averaged over each configuration's seeds, then
    :func:`~speechbrain_kd.metrics.paired.paired_comparison` over the
    utterances both scored.

    Arguments
    ---------
    baseline_root : str or pathlib.Path
        Seeds of the baseline configuration.
    candidate_root : str or pathlib.Path
        Seeds of the candidate configuration.
    metrics : list of str, optional
        Metrics (default: those both configurations have).
    confidence : float
        Level of the interval.

    Returns
    -------
    dict
        Metric -> paired comparison (candidate - baseline).

    Raises
    ------
    ValueError
        If the configurations share no utterance.
    """
    from speechbrain_kd.metrics.paired import paired_comparison

    baseline = seed_averaged_scores(baseline_root)
    candidate = seed_averaged_scores(candidate_root)
    names = sorted(set(baseline) & set(candidate))
    if not names:
        raise ValueError(
            f"{baseline_root} and {candidate_root} share no test utterance"
        )
    if metrics is None:
        metrics = sorted(
            set.intersection(
                *(set(baseline[n]) & set(candidate[n]) for n in names)
            )
        )
    return {
        m: paired_comparison(
            [baseline[n][m] for n in names],
            [candidate[n][m] for n in names],
            confidence=confidence,
        )
        for m in metrics
    }
