"""The bad-input suite: every public entry point and subcommand against its bad inputs.

The rows live in ``tests/bad_inputs/cases_*.py`` (one table per area); this module only runs
them. A library row passes when the call raises the stated error type with a message naming the
problem, or, for a documented pass-through, when the call returns and ``check`` accepts the
result. A command-line row passes when the subcommand exits non-zero with a one-line-per-problem
message on stderr and no traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from recurrent_params.cli import main
from tests import bad_inputs
from tests.bad_inputs.case import Case, CliCase


def _collect() -> list:
    rows = []
    for info in pkgutil.iter_modules(bad_inputs.__path__):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"tests.bad_inputs.{info.name}")
            rows.extend(module.CASES)
    return rows


_ROWS = _collect()
_CASES = [pytest.param(c, id=c.id, marks=c.marks) for c in _ROWS if isinstance(c, Case)]
_CLI = [pytest.param(c, id=c.id, marks=c.marks) for c in _ROWS if isinstance(c, CliCase)]


def test_ids_are_unique():
    ids = [c.id for c in _ROWS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", _CASES)
def test_library_entry_point(case: Case):
    if case.raises is None:
        result = case.call()
        assert case.check is not None, "a pass-through row must say what it checks"
        case.check(result)
        return
    with pytest.raises(case.raises) as info:
        case.call()
    assert re.search(case.match, str(info.value)), (
        f"message {str(info.value)!r} does not name the problem ({case.match!r})"
    )


@pytest.mark.parametrize("case", _CLI)
def test_subcommand(case: CliCase, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(case.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=__import__("sys").stderr)
    captured = capsys.readouterr()
    assert code in case.exit_codes, f"exit {code}; stderr: {captured.err!r}"
    assert "Traceback" not in captured.err + captured.out
    assert re.search(case.match, captured.err), f"stderr {captured.err!r} misses {case.match!r}"
