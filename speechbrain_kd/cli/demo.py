"""Placeholder registration for the `demo` subcommand (filled in below)."""


def add_parser(subparsers):
    """Registers the subcommand."""
    subparsers.add_parser("demo")
