"""``speechbrain-kd evaluate``: score a folder of enhanced files.

Pairs every file of ``--enhanced-dir`` with the file of the same name
(``.wav`` or ``.flac``, extension ignored) in ``--clean-dir``, scores each
pair (PESQ, STOI, ESTOI, CSIG, CBAK, COVL, segmental SNR, SI-SDR by
default), prints mean ± standard deviation per metric with the number of
files and failures, and optionally writes per-file rows (CSV) and the
summary (JSON).

Example
-------
>>> from speechbrain_kd.cli import main
>>> main(["evaluate", "--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

import csv
import json
import math
import pathlib
import sys

from speechbrain_kd.audio import (
    AUDIO_SUFFIXES,
    RESAMPLER,
    audio_info,
    read_audio,
)

SHOWN_NAMES = 10
# Copies of speechbrain_kd.metrics.evaluation.ALL_METRICS / EXTRA_METRICS
# and pool.DEFAULT_TIMEOUT, so that building the parser (``--help``) does
# not import torch; a test keeps them equal.
DEFAULT_METRICS = (
    "pesq",
    "stoi",
    "estoi",
    "csig",
    "cbak",
    "covl",
    "ssnr",
    "si_sdr",
)
OTHER_METRICS = ("llr", "wss", "snr")
DEFAULT_TIMEOUT = 120.0


def add_parser(subparsers):
    """Registers ``evaluate`` on the top-level parser.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subparsers of the ``speechbrain-kd`` parser.

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers())
    >>> args = parser.parse_args(
    ...     [
    ...         "evaluate",
    ...         "--clean-dir",
    ...         "c",
    ...         "--enhanced-dir",
    ...         "e",
    ...         "--jobs",
    ...         "2",
    ...     ]
    ... )
    >>> args.jobs, args.sample_rate, args.metrics[0]
    (2, 16000, 'pesq')
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="score enhanced files against clean references "
        "(PESQ, STOI, ESTOI, CSIG, CBAK, COVL, SSNR, SI-SDR)",
        description="Score every file of --enhanced-dir against the file of "
        "the same name in --clean-dir (.wav/.flac). Files at another rate "
        f"are resampled to --sample-rate with {RESAMPLER}. Multi-channel "
        "files are an error (down-mix them first). PESQ is wide-band "
        "(P.862.2) at 16 kHz and narrow-band (P.862) at 8 kHz; CSIG/CBAK/"
        "COVL are this package's port of Hu & Loizou's composite.m. Each "
        "pair is scored on the common (shorter) length. Means are "
        "per-utterance means over the files where no metric failed; a file "
        "fails when a metric is undefined (e.g. PESQ on silence or on less "
        "than 1/4 s) or its worker crashes or times out.",
    )
    parser.add_argument("--clean-dir", required=True, help="clean references")
    parser.add_argument(
        "--enhanced-dir", required=True, help="enhanced (or noisy) files"
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_METRICS),
        choices=DEFAULT_METRICS + OTHER_METRICS,
        metavar="METRIC",
        help=f"metrics to compute (default: {' '.join(DEFAULT_METRICS)}; "
        f"also available: {' '.join(OTHER_METRICS)})",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes (default 1: score in this process)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=16000,
        choices=(8000, 16000, 22050, 24000, 32000, 44100, 48000),
        help="rate to score at: 16000 (wide-band PESQ, default), 8000 "
        "(narrow-band PESQ) or a higher rate such as 48000 (SI-SDR, SNR and "
        "SSNR at that rate; PESQ, STOI and the composite measures after "
        "resampling to 16 kHz, the resampler named in the report)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds one file may take with --jobs > 1 before it is "
        f"counted as failed (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--no-clip",
        action="store_true",
        help="report CSIG/CBAK/COVL unclipped (as MATLAB's composite.m) "
        "instead of clipped to [1, 5]",
    )
    parser.add_argument("--csv", help="write per-file scores to this CSV")
    parser.add_argument("--json", help="write the summary to this JSON file")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    parser.set_defaults(func=run)


def _audio_files(folder, role):
    """Maps file stem to path for the audio files directly in ``folder``."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{role} folder {folder} does not exist")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            if path.stem in files:
                raise ValueError(
                    f"{role} folder has two files named {path.stem!r}: "
                    f"{files[path.stem].name} and {path.name}"
                )
            files[path.stem] = path
    if not files:
        raise ValueError(f"no .wav or .flac file in {role} folder {folder}")
    return files


def _name_list(names):
    """The first names of a list, then how many more there are."""
    names = sorted(names)
    shown = ", ".join(names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        shown += f", ... ({len(names) - SHOWN_NAMES} more)"
    return shown


def pair_files(clean_dir, enhanced_dir):
    """Pairs the audio files of two folders by name (extension ignored).

    Arguments
    ---------
    clean_dir : str or pathlib.Path
        Folder of clean references.
    enhanced_dir : str or pathlib.Path
        Folder of enhanced files.

    Returns
    -------
    list of (str, pathlib.Path, pathlib.Path)
        ``(name, clean_path, enhanced_path)`` sorted by name.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for sub, name in [("c", "a.wav"), ("e", "a.flac"), ("e", "b.wav")]:
    ...     (folder / sub).mkdir(exist_ok=True)
    ...     (folder / sub / name).touch()
    >>> pair_files(folder / "c", folder / "e")
    Traceback (most recent call last):
    ...
    ValueError: 1 enhanced file(s) have no clean file: b
    """
    clean = _audio_files(clean_dir, "clean")
    enhanced = _audio_files(enhanced_dir, "enhanced")
    problems = []
    if set(clean) - set(enhanced):
        missing = set(clean) - set(enhanced)
        problems.append(
            f"{len(missing)} clean file(s) have no enhanced file: "
            f"{_name_list(missing)}"
        )
    if set(enhanced) - set(clean):
        missing = set(enhanced) - set(clean)
        problems.append(
            f"{len(missing)} enhanced file(s) have no clean file: "
            f"{_name_list(missing)}"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return [(name, clean[name], enhanced[name]) for name in sorted(clean)]


class UnreadableFile(ValueError):
    """One file of the pair cannot be read: that pair fails, others go on."""


def _check_file(path):
    """Returns the sample rate of a mono audio file.

    A multi-channel file stops the run (a setup mistake); an unreadable or
    empty one raises :class:`UnreadableFile` (that pair fails).
    """
    try:
        info = audio_info(path)
    except ValueError as error:
        raise UnreadableFile(f"unreadable: {error}") from None
    if info.channels != 1:
        raise ValueError(
            f"{path} has {info.channels} channels; the metrics need mono "
            "files (down-mix or pick a channel first)"
        )
    if info.frames == 0:
        raise UnreadableFile(f"unreadable: {path} is empty")
    return info.sample_rate


def failure_reasons(scores, reasons):
    """Why the undefined metrics of one pair are undefined, in one line.

    Arguments
    ---------
    scores : dict
        ``{metric: score}`` of the pair.
    reasons : dict
        ``{metric: reason}`` collected while scoring.

    Returns
    -------
    str
        ``"pesq: <reason>; stoi: <reason>"`` for the NaN metrics.

    Example
    -------
    >>> failure_reasons(
    ...     {"pesq": math.nan, "stoi": 0.9}, {"pesq": "shorter than 1/4 s"}
    ... )
    'pesq: shorter than 1/4 s'
    """
    return "; ".join(
        f"{name}: {reasons.get(name, 'undefined')}"
        for name, value in scores.items()
        if math.isnan(value)
    )


def read_mono(path, sample_rate):
    """Reads a mono file as float64 at ``sample_rate`` (resampling if needed).

    Read by :func:`speechbrain_kd.audio.read_audio` (float32 samples,
    exact for 16- and 24-bit PCM), for the metrics in float64.

    Arguments
    ---------
    path : str or pathlib.Path
        A mono audio file (integer PCM is mapped to [-1, 1)).
    sample_rate : int
        Target rate; other rates are resampled with
        ``torchaudio.functional.resample``.

    Returns
    -------
    numpy.ndarray
        The 1-D signal.

    Raises
    ------
    ValueError
        The file is unreadable, empty or not mono (the message names it).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
    >>> soundfile.write(path, np.sin(np.arange(4800) / 10), 48000)
    >>> read_mono(path, 16000).shape
    (1600,)
    """
    return read_audio(path, sample_rate, downmix=False).double().numpy()


def score_files(clean_path, enhanced_path, sample_rate, metrics, clip):
    """Worker task: reads one pair and scores it.

    Arguments
    ---------
    clean_path : str or pathlib.Path
        Clean reference file.
    enhanced_path : str or pathlib.Path
        Enhanced file.
    sample_rate : int
        Rate to score at.
    metrics : tuple of str
        Metric names.
    clip : bool
        Clip CSIG/CBAK/COVL to [1, 5].

    Returns
    -------
    tuple
        ``(scores, clean_length, enhanced_length, reasons)`` (lengths in
        samples at ``sample_rate``; ``reasons``: why each undefined metric
        is undefined).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> x = np.random.default_rng(0).standard_normal(16000) / 4
    >>> soundfile.write(folder / "c.wav", x, 16000, subtype="FLOAT")
    >>> soundfile.write(folder / "e.wav", x, 16000, subtype="FLOAT")
    >>> scores, n, m, reasons = score_files(
    ...     folder / "c.wav", folder / "e.wav", 16000, ("si_sdr",), True
    ... )
    >>> scores["si_sdr"] > 100, n, m
    (True, 16000, 16000)
    """
    from speechbrain_kd.metrics.evaluation import evaluate_pair
    from speechbrain_kd.metrics.intrusive import undefined_reasons

    clean = read_mono(clean_path, sample_rate)
    enhanced = read_mono(enhanced_path, sample_rate)
    with undefined_reasons() as reasons:
        scores = evaluate_pair(clean, enhanced, sample_rate, metrics, clip)
    return scores, len(clean), len(enhanced), reasons


def _number(value):
    """NaN becomes None (JSON null)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def format_table(summary, metrics):
    """The printed summary table.

    Arguments
    ---------
    summary : dict
        As from :func:`~speechbrain_kd.metrics.evaluation.summarize_scores`.
    metrics : list of str
        Metrics, in display order.

    Returns
    -------
    str
        One line per metric: mean ± standard deviation.

    Example
    -------
    >>> print(format_table({"pesq": 2.5, "pesq_std": 0.5}, ["pesq"]))
    metric      mean      std
    pesq      2.5000 ± 0.5000
    """
    lines = [f"{'metric':<8}{'mean':>8}{'std':>9}"]
    for name in metrics:
        lines.append(
            f"{name:<8}{summary[name]:>8.4f} ± {summary[name + '_std']:.4f}"
        )
    return "\n".join(lines)


def run(args):
    """Scores the folder pair and prints/writes the results.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``evaluate``.

    Returns
    -------
    int
        Exit status 0 when some file was scored (failed files are
        reported, not fatal), 1 when every file failed.
    """
    from speechbrain_kd.metrics.evaluation import (
        PERCEPTUAL_RESAMPLER,
        check_metrics,
        is_failure,
        perceptual_rate,
        summarize_scores,
    )
    from speechbrain_kd.metrics.intrusive import PESQ_MODES
    from speechbrain_kd.metrics.pool import SafePool

    metrics = check_metrics(args.metrics, args.sample_rate)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    pairs = pair_files(args.clean_dir, args.enhanced_dir)
    resampled, errors = [], {}
    for name, clean_path, enhanced_path in pairs:
        for path in (clean_path, enhanced_path):
            try:
                rate = _check_file(path)
            except UnreadableFile as error:
                errors.setdefault(name, str(error))
                continue
            if rate != args.sample_rate:
                resampled.append((str(path), rate))

    readable = [pair for pair in pairs if pair[0] not in errors]
    tasks = [
        (clean_path, enhanced_path, args.sample_rate, metrics, not args.no_clip)
        for _, clean_path, enhanced_path in readable
    ]
    with SafePool(score_files, n_jobs=args.jobs, timeout=args.timeout) as pool:
        results = pool.map(
            tasks, progress=not args.no_progress, desc="evaluate"
        )
    result_of = {
        name: result
        for (name, _, _), result in zip(readable, results, strict=False)
    }

    rows, length_mismatch = [], 0
    for name, _, _ in pairs:
        result = result_of.get(name)
        scores = dict.fromkeys(metrics, math.nan)
        if result is not None and result.ok:
            scores, clean_length, enhanced_length, reasons = result.value
            length_mismatch += clean_length != enhanced_length
            if is_failure(scores):
                errors[name] = failure_reasons(scores, reasons)
        elif result is not None:
            errors[name] = result.error
        rows.append(scores)
    summary = summarize_scores(rows, metrics)
    failed = [
        name
        for (name, _, _), row in zip(pairs, rows, strict=False)
        if is_failure(row)
    ]

    heard_rate = perceptual_rate(args.sample_rate)
    mode = PESQ_MODES[heard_rate]
    print(
        f"{summary['n_files']} files, {summary['n_failed']} failed; "
        f"{args.sample_rate} Hz, PESQ "
        f"{'wide-band (P.862.2)' if mode == 'wb' else 'narrow-band (P.862)'}"
        f"; CSIG/CBAK/COVL {'unclipped' if args.no_clip else 'in [1, 5]'}"
    )
    perceptual_note = None
    if heard_rate != args.sample_rate:
        perceptual_note = (
            "PESQ, STOI, ESTOI, CSIG/CBAK/COVL after "
            f"{PERCEPTUAL_RESAMPLER}; SI-SDR, SNR, SSNR at "
            f"{args.sample_rate} Hz"
        )
        print(perceptual_note)
    if resampled:
        rates = sorted({rate for _, rate in resampled})
        print(
            f"resampled {len(resampled)} file(s) from "
            f"{', '.join(map(str, rates))} Hz to {args.sample_rate} Hz with "
            f"{RESAMPLER}"
        )
    if length_mismatch:
        print(
            f"{length_mismatch} pair(s) differ in length: scored on the "
            "common (shorter) length"
        )
    print(format_table(summary, metrics))
    if failed:
        print(f"failed ({len(failed)}): {_name_list(failed)}")
        for name in sorted(errors)[:SHOWN_NAMES]:
            print(f"  {name}: {errors[name]}")

    if args.csv:
        path = pathlib.Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["name", *metrics])
            for (name, _, _), row in zip(pairs, rows, strict=False):
                writer.writerow([name, *(repr(row[m]) for m in metrics)])
    if args.json:
        report = {key: _number(value) for key, value in summary.items()}
        report.update(
            failed=failed,
            failure_reasons={name: errors[name] for name in failed},
            sample_rate=args.sample_rate,
            pesq_mode=mode,
            composite_clipped=not args.no_clip,
            resampler=RESAMPLER,
            resampled_files=len(resampled),
            perceptual_metrics=perceptual_note,
            clean_dir=str(args.clean_dir),
            enhanced_dir=str(args.enhanced_dir),
        )
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    if pairs and len(failed) == len(pairs):
        print(
            f"error: every file failed ({len(failed)}), so no mean is "
            "defined; see the reasons above",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    from speechbrain_kd.cli import main

    sys.exit(main(["evaluate", *sys.argv[1:]]))
