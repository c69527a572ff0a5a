"""The two row types of the bad-input tables.

A :class:`Case` calls a library entry point and expects either a clear error (``raises`` and a
message matching ``match``, a regular expression that names the problem) or a documented
pass-through (``raises=None`` and ``check``, called on the result, asserting what the docs say).

A :class:`CliCase` runs one subcommand in-process and expects a non-zero exit, an error message
on stderr matching ``match`` and no traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One bad or edge input to a library entry point."""

    id: str
    call: Callable[[], Any]
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = ValueError
    match: str = ""
    check: Callable[[Any], None] | None = None
    marks: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class CliCase:
    """One bad argument list for ``recurrent-params``."""

    id: str
    argv: list[str]
    match: str
    exit_codes: tuple[int, ...] = (1, 2)
    marks: tuple = field(default_factory=tuple)
