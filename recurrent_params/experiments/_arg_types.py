"""Argument types of the command line, shared by every subcommand.

Each function here is an ``argparse`` ``type=``: it turns the text of one option into its
value or raises ``argparse.ArgumentTypeError`` with what was expected, which argparse prints as
one line (``recurrent-params memory: error: argument --batch-size: expected an integer >= 1,
got '0'``) and exit status 2. A value the experiment could not use is therefore refused before
anything runs, instead of being replaced by a default (``0`` used to mean "the default" for
several options) or failing deep inside torch.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

__all__ = ["SEED_LIMIT", "comma_list", "finite_float", "nonnegative_float", "nonnegative_int",
           "positive_float", "positive_int", "seed"]

#: seeds are integers in [0, SEED_LIMIT): what ``numpy.random.seed`` accepts, and small enough
#: that the seeds the experiments derive from it (``seed + offset``, ``seed * prime``) stay
#: inside the 64-bit range of ``torch.manual_seed``.
SEED_LIMIT = 2**32


def _int(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (sizes, counts, steps)."""
    value = _int(text, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (e.g. a logging interval where 0 means off)."""
    value = _int(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in ``[0, 2**32)``."""
    expected = f"an integer seed in [0, 2**32) (0 to {SEED_LIMIT - 1})"
    value = _int(text, expected)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number (range checks that need other options are left to the experiment)."""
    return _float(text, "a finite number")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (weight decay, dropout, a lower bound)."""
    value = _float(text, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    value = _float(text, "a finite number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A non-empty comma-separated subset of ``choices`` (order kept, duplicates dropped)."""

    def parse(text: str) -> list[str]:
        items = list(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))
        if not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(choices)}, got {text!r}")
        unknown = [i for i in items if i not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))}; expected a comma-separated subset of "
                f"{','.join(choices)}")
        return items

    return parse
