"""``speechbrain-kd make-data``: write the embedded synthetic dataset."""

import json


def add_parser(subparsers):
    """Registers ``make-data`` on the top-level parser.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subparsers of the ``speechbrain-kd`` parser.

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers())
    >>> parser.parse_args(["make-data", "out"]).seed
    0
    """
    parser = subparsers.add_parser(
        "make-data",
        help="write the embedded speech-like demo dataset (Valentini layout)",
        description="Write a small deterministic dataset of speech-like "
        "signals and noises in the official 48 kHz VoiceBank-DEMAND folder "
        "layout, so every recipe runs on it unchanged.",
    )
    parser.add_argument("out_dir")
    parser.add_argument("--n-train", type=int, default=12)
    parser.add_argument("--n-test", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    """Writes the dataset and prints its summary.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``make-data``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.data.synthetic import make_mini_valentini

    summary = make_mini_valentini(
        args.out_dir, n_train=args.n_train, n_test=args.n_test, seed=args.seed
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0
