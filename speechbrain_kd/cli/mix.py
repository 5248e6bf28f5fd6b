"""``speechbrain-kd mix``: noisy mixtures from a clean and a noise folder."""

import json


def add_parser(subparsers):
    """Registers ``mix`` on the top-level parser.

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
    ...         "mix",
    ...         "--clean-folder",
    ...         "c",
    ...         "--noise-folder",
    ...         "n",
    ...         "--save-folder",
    ...         "s",
    ...         "--train-snr",
    ...         "-5",
    ...         "5",
    ...     ]
    ... )
    >>> args.train_snr, args.test_snr
    ([-5.0, 5.0], [-13.0, -1.0])
    """
    parser = subparsers.add_parser(
        "mix",
        help="mix a folder of clean speech with a folder of noise",
        description="Write fixed, seeded noisy mixtures of every clean file "
        "(SNR drawn per utterance; the test set uses held-out noise "
        "segments) and train/valid/test JSON manifests for the recipes.",
    )
    parser.add_argument("--clean-folder", required=True)
    parser.add_argument("--noise-folder", required=True)
    parser.add_argument("--save-folder", required=True)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--train-snr",
        type=float,
        nargs=2,
        default=[-11.0, -3.0],
        metavar=("LOW", "HIGH"),
        help="SNR range (dB) of train and valid mixtures",
    )
    parser.add_argument(
        "--test-snr",
        type=float,
        nargs=2,
        default=[-13.0, -1.0],
        metavar=("LOW", "HIGH"),
        help="SNR range (dB) of test mixtures",
    )
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument(
        "--test-noise-fraction",
        type=float,
        default=0.3,
        help="tail of every noise file kept for the test mixtures",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    """Mixes and prints the manifest paths.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``mix``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.data.folder_mix import prepare_folder_mix

    manifests = prepare_folder_mix(
        args.clean_folder,
        args.noise_folder,
        args.save_folder,
        sample_rate=args.sample_rate,
        train_snr=args.train_snr,
        test_snr=args.test_snr,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        test_noise_fraction=args.test_noise_fraction,
        seed=args.seed,
    )
    print(json.dumps(manifests, indent=2))
    return 0
