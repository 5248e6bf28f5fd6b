"""The ``speechbrain-kd`` command line.

Each subcommand lives in its own module of this package and exposes
``add_parser(subparsers)`` (which registers its arguments and sets
``func`` on the parser defaults) so that ``main`` stays a thin dispatcher.
Every module of this package is a subcommand: adding one needs no edit
here.

Example
-------
>>> main(["make-data", "--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

import argparse
import importlib
import logging
import pkgutil
import sys

from speechbrain_kd import __version__

# Module names under speechbrain_kd.cli, in the order shown by --help.
SUBCOMMANDS = sorted(m.name for m in pkgutil.iter_modules(__path__))


def build_parser():
    """Builds the argument parser with every registered subcommand.

    Returns
    -------
    argparse.ArgumentParser
        The top-level parser.

    Example
    -------
    >>> parser = build_parser()
    >>> parser.prog
    'speechbrain-kd'
    """
    parser = argparse.ArgumentParser(
        prog="speechbrain-kd",
        description="Knowledge distillation for speech enhancement "
        "(a SpeechBrain plugin).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug-level logging"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"speechbrain_kd.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs the command line.

    Arguments
    ---------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.

    Example
    -------
    >>> main([])  # doctest: +ELLIPSIS
    usage: speechbrain-kd ...
    0
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # A subcommand that runs another program (``seeds run``) takes the
    # arguments after ``--`` as that program's, in ``args.<pass_through>``.
    if extra[:1] == ["--"]:
        extra = extra[1:]
    if getattr(args, "pass_through", None):
        setattr(args, args.pass_through, extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # User-facing errors carry their own explanation: no traceback.
        print(f"speechbrain-kd: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
