"""The optim tutorial script (included into docs/tutorials/optim.md) runs as published."""

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "tutorials" / "scripts" / "optim_tutorial.py"


@pytest.mark.slow
def test_optim_tutorial_runs(capsys):
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    assert "LSCResult(converged=True" in out
