"""``speechbrain-kd export``: a trained model as a hub-ready folder.

Writes ``enhance_model.ckpt``, ``hyperparams.yaml``, ``config.json``,
``example.wav`` (a noisy clip; ``example_enhanced.wav`` its output) and a ``README.md``
model card; see :func:`speechbrain_kd.pretrained.export.export_model`.

Example
-------
>>> from speechbrain_kd.cli import main
>>> main(["export", "--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""


def add_parser(subparsers):
    """Registers ``export`` on the top-level parser.

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
    ...         "export",
    ...         "--hparams",
    ...         "h.yaml",
    ...         "--checkpoint",
    ...         "run",
    ...         "--output",
    ...         "out",
    ...     ]
    ... )
    >>> args.key, args.force, args.example_input
    ('model', False, None)
    """
    parser = subparsers.add_parser(
        "export",
        help="export a trained model as a hub-ready model folder",
        description="Export the module under --key of a training run "
        "(default: model, the student of a KD run) as a folder that "
        "KDEnhancement.from_hparams loads, locally or from the "
        "HuggingFace hub: enhance_model.ckpt, hyperparams.yaml "
        "(inference only), config.json, example.wav and a README.md "
        "model card.",
    )
    parser.add_argument(
        "--hparams",
        required=True,
        metavar="OUTPUT_FOLDER/hyperparams.yaml",
        help="the hyperparams.yaml saved in the training output folder",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT_OR_OUTPUT_FOLDER",
        help="a training output folder (best validation PESQ checkpoint), "
        "a CKPT+... folder or a .ckpt file",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="folder to write"
    )
    parser.add_argument(
        "--key",
        default="model",
        help="key of the module in the hparams (default: model; e.g. "
        "teacher, or outer.inner)",
    )
    parser.add_argument(
        "--example-input",
        default=None,
        metavar="WAV",
        help="noisy wav enhanced into example.wav (default: a synthetic "
        "3-s speech-like clip in babble noise)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty output folder",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for the RTF in the model card (default: 1)",
    )
    parser.add_argument(
        "--repo-id",
        default=None,
        metavar="USER/NAME",
        help="HuggingFace repository id the model card's usage snippet "
        "loads (default: YOUR_HF_USER/<output folder name>)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write model_step.onnx, the streaming step of a causal "
        "student (inputs: an audio block and the state tensors; outputs: "
        "the enhanced block and the new state), and onnx_state.json, the "
        "state layout (needs pip install speechbrain-kd[onnx])",
    )
    parser.add_argument(
        "--onnx-block-hops",
        type=int,
        default=1,
        metavar="N",
        help="hops per ONNX step (default 1: the lowest latency)",
    )
    parser.set_defaults(func=run)


def run(args):
    """Exports the model and prints the output folder.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``export``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.pretrained import export_model

    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    if args.onnx_block_hops < 1:
        raise ValueError(
            f"--onnx-block-hops must be at least 1, got {args.onnx_block_hops}"
        )
    output = export_model(
        args.hparams,
        args.checkpoint,
        args.output,
        key=args.key,
        example_input=args.example_input,
        force=args.force,
        rtf_threads=args.threads,
        repo_id=args.repo_id,
    )
    print(f"Exported {args.key} to {output}")
    if args.onnx:
        import tempfile

        from speechbrain_kd.pretrained.adapters import unwrap
        from speechbrain_kd.pretrained.folder import MODULE_KEY
        from speechbrain_kd.pretrained.interface import KDEnhancement
        from speechbrain_kd.pretrained.onnx_step import export_onnx_step

        loaded = KDEnhancement.from_hparams(
            source=str(output), savedir=tempfile.mkdtemp(prefix="sbkd_onnx_")
        )
        model = unwrap(loaded.mods[MODULE_KEY])
        path = export_onnx_step(
            model,
            output,
            block_hops=args.onnx_block_hops,
            sample_rate=loaded.hparams.sample_rate,
        )
        print(f"Wrote the streaming step {path} (state layout beside it)")
    return 0
