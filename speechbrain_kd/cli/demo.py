"""``speechbrain-kd demo``: the end-to-end job behind ``make demo``."""


def add_parser(subparsers):
    """Registers ``demo`` on the top-level parser.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subparsers of the ``speechbrain-kd`` parser.

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers())
    >>> parser.parse_args(["demo"]).output
    'results/demo'
    """
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end demo on the embedded dataset",
        description="Generate the embedded dataset, prepare it and run the "
        "main job end to end.",
    )
    parser.add_argument("--output", default="results/demo")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the embedded dataset"
    )
    parser.add_argument(
        "--seed-spread",
        action="store_true",
        help="also train both students with recipe seed 101 and print "
        "each one's spread and mean over the two seeds",
    )
    parser.add_argument(
        "--train-teacher",
        action="store_true",
        help="instead of the demo, rebuild the committed demo teacher "
        "(recipes/Valentini/demo_teacher; about 45 min on 2 cores); its "
        "data and run go to --output",
    )
    parser.set_defaults(func=run)


def run(args):
    """Runs the demo.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``demo``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.demo import run_demo, train_demo_teacher

    if args.train_teacher:
        print(f"Wrote {train_demo_teacher(args.output, seed=args.seed)}")
    else:
        run_demo(args.output, seed=args.seed, seed_spread=args.seed_spread)
    return 0
