"""Seconds per file of each metric, in one process and on two workers.

Scores the 25 real VoiceBank-DEMAND test pairs (noisy against clean) with
each metric at ``--jobs 1`` (in this process) and ``--jobs 2`` (a
:class:`~speechbrain_kd.metrics.pool.SafePool` of two workers), side by
side in one run, and projects the time for the 824-file test set::

    python benchmarks/metrics_speed.py            # from the repository root

Rows: ``pesq`` (wide-band), ``stoi``, ``estoi``, ``composite`` (CSIG, CBAK,
COVL with LLR, WSS and segSNR, given a precomputed PESQ score, i.e.
without PESQ), ``si_sdr``, and ``all`` (``evaluate_pair`` with every
default metric, PESQ computed once). Each cell is the median over
``--repeats`` passes over the 25 files; the pool's start-up is measured
once and reported separately. Projection for 824 files: seconds per file
on these 25 pairs times 824 (equal to the one-process time per file times
824 divided by the speed-up), plus the start-up for two workers.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np
import soundfile as sf

from speechbrain_kd.metrics.composite import composite
from speechbrain_kd.metrics.evaluation import ALL_METRICS, evaluate_pair
from speechbrain_kd.metrics.intrusive import estoi, pesq, si_sdr, stoi
from speechbrain_kd.metrics.pool import SafePool

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data" / "vbd_16k_25"
METRICS = ("pesq", "stoi", "estoi", "composite", "si_sdr", "all")
TEST_SET_FILES = 824
FS = 16000


def run_metric(name, clean, noisy, pesq_score):
    """Worker task: one metric on one pair (module level: picklable).

    Arguments
    ---------
    name : str
        A row of the table (see ``METRICS``).
    clean : numpy.ndarray
        Clean reference.
    noisy : numpy.ndarray
        Processed signal.
    pesq_score : float
        Precomputed PESQ, handed to the composite.

    Returns
    -------
    object
        The score(s).

    Example
    -------
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> run_metric("si_sdr", x, x, 0.0) > 100
    True
    """
    if name == "pesq":
        return pesq(clean, noisy, FS)
    if name == "stoi":
        return stoi(clean, noisy, FS)
    if name == "estoi":
        return estoi(clean, noisy, FS)
    if name == "composite":
        return composite(clean, noisy, FS, pesq_score=pesq_score)
    if name == "si_sdr":
        return si_sdr(clean, noisy)
    if name == "all":
        return evaluate_pair(clean, noisy, FS, ALL_METRICS)
    raise ValueError(f"unknown row {name!r}")


def load_pairs(clean_dir, noisy_dir):
    """Reads every clean file and its noisy twin (float64, 16 kHz)."""
    pairs = []
    for path in sorted(pathlib.Path(clean_dir).glob("*.wav")):
        clean, rate = sf.read(path)
        noisy, noisy_rate = sf.read(pathlib.Path(noisy_dir) / path.name)
        if rate != FS or noisy_rate != FS:
            sys.exit(f"{path.name}: expected {FS} Hz files")
        pairs.append((clean, noisy))
    if not pairs:
        sys.exit(f"no .wav files in {clean_dir}")
    return pairs


def main(argv=None):
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-dir", default=str(DATA / "clean"))
    parser.add_argument("--noisy-dir", default=str(DATA / "noisy"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    pairs = load_pairs(args.clean_dir, args.noisy_dir)
    n_files = len(pairs)
    audio_seconds = sum(len(clean) for clean, _ in pairs) / FS
    pesq_scores = [pesq(clean, noisy, FS) for clean, noisy in pairs]
    tasks = {
        name: [
            (name, c, n, p)
            for (c, n), p in zip(pairs, pesq_scores, strict=False)
        ]
        for name in METRICS
    }
    inline = SafePool(run_metric, n_jobs=1)
    start = time.perf_counter()
    workers = SafePool(run_metric, n_jobs=2)
    warm_up = workers.map([("si_sdr", np.ones(4), np.ones(4), 0.0)] * 2)
    startup = time.perf_counter() - start
    assert all(result.ok for result in warm_up)

    timings = {(name, jobs): [] for name in METRICS for jobs in (1, 2)}
    for _ in range(args.repeats):
        for name in METRICS:
            for jobs, pool in ((1, inline), (2, workers)):
                start = time.perf_counter()
                results = pool.map(tasks[name])
                timings[name, jobs].append(time.perf_counter() - start)
                assert all(result.ok for result in results), name
    workers.close()

    print(
        f"{n_files} pairs ({audio_seconds / n_files:.2f} s of audio per "
        f"file on average), median of {args.repeats} passes; "
        f"pool start-up (2 workers): {startup:.1f} s"
    )
    columns = [
        ("metric", 9),
        ("jobs=1 s/file", 13),
        ("jobs=2 s/file", 13),
        ("speed-up", 8),
        (f"{TEST_SET_FILES} files, jobs=1", 18),
        (f"{TEST_SET_FILES} files, jobs=2", 18),
    ]
    print("| " + " | ".join(f"{t:<{w}}" for t, w in columns) + " |")
    print("|" + "|".join("-" * (w + 2) for _, w in columns) + "|")
    for name in METRICS:
        one = statistics.median(timings[name, 1]) / n_files
        two = statistics.median(timings[name, 2]) / n_files
        cells = [
            name,
            f"{one:.4f}",
            f"{two:.4f}",
            f"{one / two:.2f}x",
            f"{one * TEST_SET_FILES:.1f} s",
            f"{two * TEST_SET_FILES + startup:.1f} s",
        ]
        print(
            "| "
            + " | ".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                for i, (c, (_, w)) in enumerate(
                    zip(cells, columns, strict=False)
                )
            )
            + " |"
        )
    print(
        f"projection: s/file on these {n_files} pairs x {TEST_SET_FILES} "
        "(= jobs=1 s/file x 824 / speed-up), plus the pool start-up for "
        "jobs=2"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
