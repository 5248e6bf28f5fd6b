"""``speechbrain-kd compare``: two enhanced folders, utterance by utterance.

Scores ``--baseline-dir`` and ``--candidate-dir`` against the same
``--clean-dir`` (files paired by name, as ``evaluate`` does) and reports,
per metric, the mean difference (candidate - baseline), its 95 %
confidence interval and the p-value of a two-tailed paired t-test, as
KDRL's Tables 12-14 compare each method with the non-KD student.

Example
-------
>>> from speechbrain_kd.cli import main
>>> main(["compare", "--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

import json
import math
import pathlib
import sys

from speechbrain_kd.cli.evaluate import (
    DEFAULT_METRICS,
    OTHER_METRICS,
    UnreadableFile,
    _check_file,
    pair_files,
    score_files,
)


def add_parser(subparsers):
    """Registers ``compare``.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subcommand registry.
    """
    parser = subparsers.add_parser(
        "compare",
        help="compare two enhanced folders per utterance (paired t-test)",
        description="Score --baseline-dir and --candidate-dir against "
        "--clean-dir and report, per metric, the mean per-utterance "
        "difference (candidate - baseline), its confidence interval and "
        "the p-value of a two-tailed paired t-test. Utterances where a "
        "metric is undefined for either system are left out of that "
        "metric.",
    )
    parser.add_argument("--clean-dir", required=True)
    parser.add_argument("--baseline-dir", required=True)
    parser.add_argument("--candidate-dir", required=True)
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=["pesq", "stoi", "si_sdr"],
        choices=DEFAULT_METRICS + OTHER_METRICS,
        metavar="METRIC",
        help="metrics to compare (default: pesq stoi si_sdr)",
    )
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--json", help="write the comparison to this file")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    parser.set_defaults(func=run)


def _score_folder(clean_dir, enhanced_dir, metrics, sample_rate, progress):
    """Per-utterance scores of one folder.

    Arguments
    ---------
    clean_dir : str
        Clean references.
    enhanced_dir : str
        The system's outputs.
    metrics : list of str
        Metrics.
    sample_rate : int
        Scoring rate.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        Utterance name -> ``{metric: score}`` (NaN when undefined or the
        file cannot be read).
    """
    from tqdm import tqdm

    scores = {}
    pairs = pair_files(clean_dir, enhanced_dir)
    for name, clean, enhanced in tqdm(
        pairs, desc=pathlib.Path(enhanced_dir).name, disable=not progress
    ):
        try:
            _check_file(clean)
            _check_file(enhanced)
        except UnreadableFile:
            scores[name] = dict.fromkeys(metrics, math.nan)
            continue
        scores[name] = score_files(clean, enhanced, sample_rate, metrics, True)[
            0
        ]
    return scores


def run(args):
    """Scores both folders and prints the comparison.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``compare``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.metrics.evaluation import check_metrics
    from speechbrain_kd.metrics.paired import paired_comparison, paired_table

    metrics = check_metrics(args.metrics, args.sample_rate)
    progress = not args.no_progress
    baseline = _score_folder(
        args.clean_dir, args.baseline_dir, metrics, args.sample_rate, progress
    )
    candidate = _score_folder(
        args.clean_dir, args.candidate_dir, metrics, args.sample_rate, progress
    )
    # pair_files made both folders hold exactly the clean folder's names
    names = sorted(baseline)
    report = {}
    for metric in metrics:
        report[metric] = paired_comparison(
            [baseline[n][metric] for n in names],
            [candidate[n][metric] for n in names],
            confidence=args.confidence,
        )
    level = f"{100 * args.confidence:g} %"
    print(
        f"{len(names)} utterances; candidate {args.candidate_dir} - baseline "
        f"{args.baseline_dir}; {level} interval, two-tailed paired t-test"
    )
    print(paired_table(report))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "confidence": args.confidence,
                    "baseline_dir": str(args.baseline_dir),
                    "candidate_dir": str(args.candidate_dir),
                    "clean_dir": str(args.clean_dir),
                    "metrics": {
                        m: {
                            k: (
                                None
                                if isinstance(v, float) and math.isnan(v)
                                else v
                            )
                            for k, v in row.items()
                        }
                        for m, row in report.items()
                    },
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    from speechbrain_kd.cli import main

    sys.exit(main(["compare", *sys.argv[1:]]))
