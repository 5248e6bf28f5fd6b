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
    >>> parser.parse_args(["make-data", "out", "--binaural"]).binaural
    True
    """
    parser = subparsers.add_parser(
        "make-data",
        help="write the embedded speech-like demo dataset (Valentini layout)",
        description="Write a small deterministic dataset of speech-like "
        "signals and noises in the official 48 kHz VoiceBank-DEMAND folder "
        "layout, so every recipe runs on it unchanged; with --binaural, "
        "speech/, noise/ and irs/ (two-channel impulse responses) folders "
        "for recipes/Binaural/train_spatial.py.",
    )
    parser.add_argument("out_dir")
    parser.add_argument(
        "--n-train",
        type=int,
        default=12,
        help="training utterances (with --binaural: all speech files)",
    )
    parser.add_argument("--n-test", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--binaural",
        action="store_true",
        help="write the speech, noise and impulse-response folders of the "
        "spatial-injection recipes (16 kHz) instead",
    )
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
    from speechbrain_kd.data.synthetic import (
        make_binaural_folders,
        make_mini_valentini,
    )

    if args.binaural:
        speech, noise, irs = make_binaural_folders(
            args.out_dir, utterances=args.n_train, seed=args.seed
        )
        folders = {"speech_folder": speech, "noise_folder": noise}
        print(json.dumps({**folders, "ir_folder": irs}, indent=2, default=str))
        return 0
    summary = make_mini_valentini(
        args.out_dir, n_train=args.n_train, n_test=args.n_test, seed=args.seed
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0
