"""Placeholder registration for the `make_data` subcommand (filled in below)."""


def add_parser(subparsers):
    """Registers the subcommand."""
    subparsers.add_parser("make-data")
