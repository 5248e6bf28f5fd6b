"""Placeholder registration for the `prepare` subcommand (filled in below)."""


def add_parser(subparsers):
    """Registers the subcommand."""
    subparsers.add_parser("prepare")
