"""``speechbrain-kd prepare``: dataset preparation (manifests + resampling)."""

import json


def add_parser(subparsers):
    """Registers ``prepare`` on the top-level parser.

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
    ...     ["prepare", "--data-folder", "d", "--save-folder", "s"]
    ... )
    >>> args.sample_rate
    16000
    """
    parser = subparsers.add_parser(
        "prepare",
        help="prepare VoiceBank-DEMAND (Valentini): resample, write manifests",
        description="Prepare VoiceBank-DEMAND (Valentini) for enhancement: "
        "resample once into a cache under --save-folder and write "
        "train/valid/test JSON manifests. --data-folder is never written "
        "to (unless --download is given).",
    )
    parser.add_argument("--data-folder", required=True)
    parser.add_argument("--save-folder", required=True)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--valid-speakers",
        nargs="+",
        default=["p282", "p287"],
        help="training speakers held out for validation",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch the official release from Edinburgh DataShare first",
    )
    parser.set_defaults(func=run)


def run(args):
    """Prepares the dataset and prints the manifest paths.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``prepare``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.data.valentini import prepare_valentini

    manifests = prepare_valentini(
        args.data_folder,
        args.save_folder,
        valid_speakers=tuple(args.valid_speakers),
        sample_rate=args.sample_rate,
        download=args.download,
    )
    print(json.dumps({k: str(v) for k, v in manifests.items()}, indent=2))
    return 0
