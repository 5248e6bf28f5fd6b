"""``speechbrain-kd seeds``: one recipe over several seeds (``run``), their
test metrics as mean ± std (``aggregate``), two configurations compared per
utterance (``compare``)."""

import json
import math
import sys


def add_parser(subparsers):
    """Registers ``seeds`` and its actions.

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
    ...     ["seeds", "run", "t.py", "a.yaml", "out", "--seeds", "1", "2"]
    ... )
    >>> args.seeds, args.pass_through
    ([1, 2], 'recipe_args')
    """
    parser = subparsers.add_parser(
        "seeds",
        help="repeated runs over seeds: run, aggregate (mean ± std), compare",
        description="Run one recipe over several seeds, each in "
        "ROOT/seed_<n> (finished seeds skipped, interrupted ones resumed), "
        "aggregate their test metrics into a mean ± sample-std table "
        "(markdown and CSV), or compare two configurations utterance by "
        "utterance (scores averaged over each one's seeds, paired t-test).",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    run = actions.add_parser(
        "run",
        help="run a recipe once per seed, then aggregate",
        description="Run SCRIPT HPARAMS once per seed with --seed=<n> "
        "--output_folder=ROOT/seed_<n> and the recipe arguments after "
        "'--' ({seed} in them is replaced by the seed, e.g. a per-seed "
        "--prepare_folder when the data depends on the seed). Runs again "
        "after an interruption resume each unfinished seed from its last "
        "checkpoint.",
    )
    run.add_argument("script", help="recipe script, e.g. recipes/.../train.py")
    run.add_argument("hparams", help="recipe yaml")
    run.add_argument("root", help="folder of the seeds' output folders")
    run.add_argument("--seeds", type=int, nargs="+", required=True)
    run.add_argument(
        "--python", default=sys.executable, help="interpreter for the script"
    )
    run.add_argument("--summary", default="test_summary.json")
    # the recipe arguments after '--' (speechbrain_kd.cli.main passes them)
    run.set_defaults(pass_through="recipe_args")
    run.set_defaults(func=run_action)

    agg = actions.add_parser(
        "aggregate",
        help="mean ± std of the finished seeds' test metrics",
        description="Write ROOT/seeds_summary.md and ROOT/seeds_summary.csv: "
        "per test metric, the mean and sample standard deviation (n - 1) "
        "over the finished seeds, and each seed's value.",
    )
    agg.add_argument("root")
    agg.add_argument("--summary", default="test_summary.json")
    agg.add_argument("--metrics", nargs="+", metavar="METRIC")
    agg.set_defaults(func=aggregate_action)

    compare = actions.add_parser(
        "compare",
        help="paired comparison of two configurations' seeds",
        description="Average each test utterance's scores over the seeds "
        "of BASELINE_ROOT and of CANDIDATE_ROOT, then report per metric the "
        "mean difference (candidate - baseline), its confidence interval "
        "and a two-tailed paired t-test over the utterances.",
    )
    compare.add_argument("baseline_root")
    compare.add_argument("candidate_root")
    compare.add_argument("--metrics", nargs="+", metavar="METRIC")
    compare.add_argument("--confidence", type=float, default=0.95)
    compare.add_argument("--json", help="write the comparison to this file")
    compare.set_defaults(func=compare_action)
    parser.set_defaults(func=lambda args: parser.print_help())


def run_action(args):
    """Runs the seeds, then aggregates them.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``seeds run``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.repeated_runs import run_seeds

    run_seeds(
        args.script,
        args.hparams,
        args.seeds,
        args.root,
        args=args.recipe_args,
        python=args.python,
        summary=args.summary,
    )
    return aggregate_action(args)


def aggregate_action(args):
    """Aggregates the finished seeds and prints the table.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments with ``root``, ``summary`` (and ``metrics``).

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.repeated_runs import aggregate, write_aggregate

    result = aggregate(
        args.root, summary=args.summary, metrics=getattr(args, "metrics", None)
    )
    print(write_aggregate(result, args.root), end="")
    print(f"written: {args.root}/seeds_summary.md, seeds_summary.csv")
    return 0


def compare_action(args):
    """Compares two configurations and prints the table.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``seeds compare``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.metrics.paired import paired_table
    from speechbrain_kd.repeated_runs import compare_configurations

    report = compare_configurations(
        args.baseline_root,
        args.candidate_root,
        metrics=args.metrics,
        confidence=args.confidence,
    )
    level = f"{100 * args.confidence:g} %"
    print(
        f"candidate {args.candidate_root} - baseline {args.baseline_root}; "
        f"scores averaged over seeds; {level} interval, paired t-test"
    )
    print(paired_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    m: {
                        k: None if isinstance(v, float) and math.isnan(v) else v
                        for k, v in row.items()
                    }
                    for m, row in report.items()
                },
                f,
                indent=2,
            )
    return 0
