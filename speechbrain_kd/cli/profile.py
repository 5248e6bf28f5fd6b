"""``speechbrain-kd profile``: parameters, MACs, RTF and peak memory.

Instantiates the module under a key of a HyperPyYAML file and measures
one forward pass (see :mod:`speechbrain_kd.profiling` for the
conventions and the input-signature protocol).

Example
-------
>>> import pathlib, tempfile
>>> from speechbrain_kd.cli import main
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder) / "hparams.yaml"
...     _ = path.write_text(
...         "model: !new:torch.nn.Sequential\\n"
...         "    - !new:torch.nn.Unflatten [1, [1, -1]]\\n"
...         "    - !new:torch.nn.Conv1d [1, 2, 3]\\n"
...     )
...     main(
...         [
...             "profile",
...             str(path),
...             "--seconds",
...             "0.5",
...             "--repeats",
...             "1",
...             "--warmup",
...             "0",
...         ]
...     )  # doctest: +ELLIPSIS
Model        : model = torch.nn.modules.container.Sequential (...)
Parameters   : 8 total, 8 trainable
MACs         : 0.000 G per 1 s (95,988)
               0.000 G per 0.5 s input [1, 8000] (47,988)
...
0
"""

import json
import pathlib


def add_parser(subparsers):
    """Registers ``profile`` on the top-level parser.

    Arguments
    ---------
    subparsers : argparse._SubParsersAction
        The subparsers of the ``speechbrain-kd`` parser.

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers())
    >>> args = parser.parse_args(["profile", "hparams.yaml"])
    >>> args.key, args.seconds, args.threads, args.sample_rate
    ('model', 4.0, 1, 16000)
    """
    parser = subparsers.add_parser(
        "profile",
        help="measure a model: parameters, MACs, RTF, peak memory",
        description="Instantiate the module under --key of a HyperPyYAML "
        "file and measure one forward pass: parameters (total and "
        "trainable), MACs per second of input and per --seconds input "
        "(FLOPs = 2 x MACs; convolutions, matrix products and attention "
        "only), the real-time factor (median of --repeats passes after "
        "--warmup, on --threads threads) and peak memory. Waveform models "
        "get a [1, time] input; a model with an "
        "example_input(seconds, sample_rate) method gets what it returns.",
    )
    parser.add_argument("hparams", metavar="HPARAMS_YAML")
    parser.add_argument(
        "--key",
        default="model",
        help="key of the module in the file; outer.inner for an entry of "
        "a top-level dict (default: model)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="input length for the RTF, peak memory and per-input MACs "
        "(default: 4)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads while measuring (default: 1)",
    )
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda[:N] (default: cpu)"
    )
    parser.add_argument(
        "--overrides",
        default=None,
        metavar="YAML_STRING",
        help='HyperPyYAML overrides, e.g. "{channels: 32}"',
    )
    parser.add_argument(
        "--json", default=None, metavar="FILE", help="also write JSON here"
    )
    parser.set_defaults(func=run)


def _format_shape(shape):
    """``[1, 64000]`` as text, nested shapes included."""
    return json.dumps(shape).replace('"', "")


def _seconds(value):
    """``4.0`` as ``4``, ``0.5`` as ``0.5``."""
    return f"{value:g}"


def format_report(report):
    """Formats a :func:`speechbrain_kd.profiling.profile_model` report.

    Arguments
    ---------
    report : dict
        The report (``hparams`` and ``key`` entries are shown if present).

    Returns
    -------
    str
        A few aligned lines of text.

    Example
    -------
    >>> report = {
    ...     "model": "m.Net",
    ...     "params_total": 1234567,
    ...     "params_trainable": 1000,
    ...     "seconds": 4.0,
    ...     "sample_rate": 16000,
    ...     "input_shape": [1, 64000],
    ...     "macs_per_second": 2_500_000_000,
    ...     "macs_per_input": 10_000_000_000,
    ...     "rtf": 0.25,
    ...     "rtf_min": 0.24,
    ...     "repeats": 5,
    ...     "warmup": 2,
    ...     "threads": 1,
    ...     "device": "cpu",
    ...     "onednn_enabled": True,
    ...     "peak_memory_bytes": 3 * 2**20,
    ... }
    >>> print(format_report(report))  # doctest: +NORMALIZE_WHITESPACE
    Model        : m.Net
    Parameters   : 1,234,567 total, 1,000 trainable
    MACs         : 2.500 G per 1 s (2,500,000,000)
                   10.000 G per 4 s input [1, 64000] (10,000,000,000)
                   FLOPs = 2 × MACs (convolutions, matrix products and
                   attention only)
    RTF          : 0.25 (median of 5 after 2 warm-up, min 0.24) on
                   1 thread, 4 s input, cpu, oneDNN on
    Peak memory  : 3.00 MiB (tensor allocations of one forward pass above
                   the level before it)
    """
    name = report["model"]
    if "key" in report:
        name = f"{report['key']} = {name} ({report.get('hparams', '')})"
    seconds = _seconds(report["seconds"])
    threads = report["threads"]
    thread_word = "thread" if threads == 1 else "threads"
    lines = [
        f"Model        : {name}",
        f"Parameters   : {report['params_total']:,} total, "
        f"{report['params_trainable']:,} trainable",
        f"MACs         : {report['macs_per_second'] / 1e9:.3f} G per 1 s "
        f"({report['macs_per_second']:,})",
        f"               {report['macs_per_input'] / 1e9:.3f} G per "
        f"{seconds} s input {_format_shape(report['input_shape'])} "
        f"({report['macs_per_input']:,})",
        "               FLOPs = 2 × MACs (convolutions, matrix products and",
        "               attention only)",
        f"RTF          : {report['rtf']:.4g} (median of {report['repeats']} "
        f"after {report['warmup']} warm-up, min {report['rtf_min']:.4g}) on",
        f"               {threads} {thread_word}, {seconds} s input, "
        f"{report['device']}, oneDNN "
        f"{'on' if report.get('onednn_enabled') else 'off'}",
        f"Peak memory  : {report['peak_memory_bytes'] / 2**20:.2f} MiB "
        "(tensor allocations of one forward pass above",
        "               the level before it)",
    ]
    return "\n".join(lines)


def run(args):
    """Profiles the module, prints the report, writes JSON if asked.

    Arguments
    ---------
    args : argparse.Namespace
        Parsed arguments of ``profile``.

    Returns
    -------
    int
        Exit status 0.
    """
    from speechbrain_kd.profiling import load_module_from_hparams, profile_model

    if args.seconds <= 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    module = load_module_from_hparams(
        args.hparams, key=args.key, overrides=args.overrides
    )
    report = {"hparams": str(args.hparams), "key": args.key}
    report.update(
        profile_model(
            module,
            seconds=args.seconds,
            sample_rate=args.sample_rate,
            threads=args.threads,
            warmup=args.warmup,
            repeats=args.repeats,
            device=args.device,
        )
    )
    print(format_report(report))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"JSON         : {path}")
    return 0
