"""Placeholder: this experiment is not implemented yet."""

HELP = "Not implemented yet."


def add_arguments(parser):
    """No options yet."""


def run(args):
    """Fail with a clear message until the experiment lands."""
    raise RuntimeError("this experiment is not implemented yet")
