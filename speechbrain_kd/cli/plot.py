"""``speechbrain-kd plot``: the training curves of a recipe run."""


def add_parser(subparsers):
    """Registers ``plot`` on the top-level parser.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subparsers of the ``speechbrain-kd`` parser.

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers())
    >>> parser.parse_args(["plot", "results/mvat/100"]).output is None
    True
    """
    parser = subparsers.add_parser(
        "plot",
        help="draw the training curves of a recipe run into a PNG",
        description="Draw every loss term and validation metric that a "
        "recipe run logged per epoch (its train_log.txt) into a PNG.",
    )
    parser.add_argument(
        "run", help="the run's output folder (or its train_log.txt)"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="the PNG (default: RUN/training_curves.png)",
    )
    parser.add_argument("--title", default=None, help="figure title")
    parser.set_defaults(func=run)


def run(args):
    """Draws the curves and prints where.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``plot``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.plotting import plot_training_curves

    path = plot_training_curves(args.run, args.output, args.title)
    print(f"Wrote {path}")
    return 0
