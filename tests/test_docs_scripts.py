"""The executed examples of the docs (docs/tutorials/scripts/*.py) run without error."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "docs" / "tutorials" / "scripts").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_docs_script_runs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_tutorial_page_includes_its_script():
    pages = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for script in SCRIPTS:
        assert f"docs/tutorials/scripts/{script.name}" in pages, f"{script.name} is not shown"
