"""``speechbrain-kd enhance``: enhance audio files with a pretrained model.

Loads a pretrained model folder (local, or a HuggingFace id) with
:class:`speechbrain_kd.pretrained.KDEnhancement` and enhances every input
file (``.wav``/``.flac``; folders are searched recursively) into
``--output-dir``, keeping the inputs' relative folder structure. Outputs
are 16-bit wav files at the model's rate (``--keep-rate``: at each
input's rate). A file that cannot be read or is empty is reported (name
and reason) and skipped; the others are still written.

Exit status: 0 when every file was written, 1 when some failed, 2 on a
usage error (e.g. a missing model folder or no input files).

Example
-------
>>> from speechbrain_kd.cli import main
>>> main(["enhance", "--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

import pathlib
import sys

from speechbrain_kd.audio import AUDIO_SUFFIXES
from speechbrain_kd.outputs import check_output_folder

SHOWN_FAILURES = 20


def add_parser(subparsers):
    """Registers ``enhance`` on the top-level parser.

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
    ...     ["enhance", "--source", "m", "a.wav", "--output-dir", "out"]
    ... )
    >>> args.inputs, args.device, args.keep_rate
    (['a.wav'], 'cpu', False)
    """
    parser = subparsers.add_parser(
        "enhance",
        help="enhance audio files with a pretrained model",
        description="Enhance audio files with a pretrained model folder "
        "(local or HuggingFace id; see `speechbrain_kd.pretrained`). "
        "INPUT is a file or a folder (searched recursively for .wav/.flac). "
        "Multi-channel inputs are down-mixed to mono; inputs are resampled "
        "to the model's rate; long inputs are enhanced in overlapping "
        "chunks. Outputs are 16-bit wav under --output-dir with the "
        "inputs' relative paths. Exit status: 0 if every file was written, "
        "1 if some failed (listed at the end), 2 on a usage error.",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="pretrained model folder or HuggingFace id (org/name)",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="audio files or folders"
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="enhance as a live stream (causal models such as RT-SENet): "
        "0.1-s pieces through StreamingEnhancer; equals offline output",
    )
    parser.add_argument(
        "--block-hops",
        type=int,
        default=1,
        help="streaming block size in native hops (latency vs cost)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="with --streaming: run the step traced with TorchScript "
        "(about 3x faster on CPU, same output)",
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device (default: cpu)"
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="chunk length for long inputs (default: the model's "
        "hyperparams.yaml, else 10)",
    )
    parser.add_argument(
        "--overlap-seconds",
        type=float,
        default=None,
        help="minimum overlap of neighbouring chunks (default: the "
        "model's hyperparams.yaml, else 1)",
    )
    parser.add_argument(
        "--keep-rate",
        action="store_true",
        help="write each output at its input's sample rate",
    )
    parser.add_argument(
        "--savedir",
        default=None,
        help="where the model files are collected (default: "
        "<output-dir>/.pretrained_model)",
    )
    parser.set_defaults(func=run)


def collect_inputs(inputs):
    """Lists the audio files to enhance, each with its output's relative path.

    Arguments
    ---------
    inputs : list of str
        Files and folders (folders searched recursively for ``.wav`` and
        ``.flac``).

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
        ``(input file, relative output path)``: a file given directly
        keeps its name, a file found in a folder its path relative to that
        folder; the suffix becomes ``.wav``.

    Raises
    ------
    FileNotFoundError
        An input does not exist.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "sub").mkdir()
    >>> (folder / "sub" / "a.flac").touch()
    >>> [str(rel) for _, rel in collect_inputs([str(folder)])]
    ['sub/a.wav']
    """
    found = []
    for item in inputs:
        path = pathlib.Path(item).expanduser()
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            found.extend(
                (p, p.relative_to(path).with_suffix(".wav")) for p in files
            )
        elif path.is_file():
            found.append((path, pathlib.Path(path.name).with_suffix(".wav")))
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    return found


def run(args):
    """Enhances the inputs and prints a summary.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``enhance``.

    Returns
    -------
    int
        0 if every file was written, 1 if some failed.

    Raises
    ------
    ValueError
        No audio file among the inputs, or two inputs map onto the same
        output file.
    """
    from tqdm.auto import tqdm

    from speechbrain_kd.pretrained import KDEnhancement

    files = collect_inputs(args.inputs)
    if not files:
        raise ValueError(
            f"no {'/'.join(AUDIO_SUFFIXES)} files in {' '.join(args.inputs)}"
        )
    outputs = [rel for _, rel in files]
    if len(set(outputs)) != len(outputs):
        duplicates = sorted({str(r) for r in outputs if outputs.count(r) > 1})
        raise ValueError(
            f"several inputs would be written to the same output: "
            f"{', '.join(duplicates[:5])}; enhance them separately"
        )
    output_dir = check_output_folder(args.output_dir, "--output-dir")
    savedir = args.savedir or str(output_dir / ".pretrained_model")
    enhancer = KDEnhancement.from_hparams(
        source=args.source,
        savedir=savedir,
        run_opts={"device": args.device},
    )
    written, failed = [], []
    for path, rel in tqdm(files, desc="enhance", unit="file"):
        try:
            enhancer.enhance_file(
                path,
                output_dir / rel,
                keep_rate=args.keep_rate,
                chunk_seconds=args.chunk_seconds,
                overlap_seconds=args.overlap_seconds,
                streaming=args.streaming,
                block_hops=args.block_hops,
                compile=args.compile,
            )
        except (ValueError, RuntimeError, OSError) as error:
            failed.append((path, str(error)))
            continue
        written.append(output_dir / rel)
    print(
        f"{len(written)} file(s) written to {output_dir}, {len(failed)} failed"
    )
    for path, reason in failed[:SHOWN_FAILURES]:
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    if len(failed) > SHOWN_FAILURES:
        print(f"  ... and {len(failed) - SHOWN_FAILURES} more", file=sys.stderr)
    return 1 if failed else 0
