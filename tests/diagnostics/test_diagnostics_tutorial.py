"""The diagnostics tutorial script runs, and its page includes it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "tutorials" / "scripts" / "diagnostics_tutorial.py"


def test_tutorial_page_includes_the_script():
    page = (ROOT / "docs" / "tutorials" / "diagnostics.md").read_text()
    assert '--8<-- "docs/tutorials/scripts/diagnostics_tutorial.py"' in page


@pytest.mark.slow
def test_diagnostics_tutorial_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "matrix-free diagonal mass" in result.stdout
    assert (tmp_path / "effective_lr.png").stat().st_size > 1000
