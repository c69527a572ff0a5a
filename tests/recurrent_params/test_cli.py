"""The command line: dispatch, common options, one-line errors, the memory experiment."""

import json
import subprocess
import sys

import pytest

from recurrent_params.cli import EXPERIMENTS, build_parser, main


def test_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out


def test_each_experiment_explains_itself():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "experiment")
    for name, p in sub.choices.items():
        assert len(p.description) > 80, f"{name} needs a one-paragraph --help"


def test_unknown_option_is_one_line_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["memory", "--no-such-option"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unrecognized arguments" in err


def test_bad_value_is_one_line_error_without_traceback(capsys):
    assert main(["memory", "--lambdas", "0.5", "1.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "(0, 1)" in err and "Traceback" not in err


def test_missing_cuda_is_reported(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(SystemExit, match="no CUDA device"):
        main(["memory", "--device", "cuda"])


def test_memory_experiment_matches_theory(tmp_path, capsys):
    code = main(["memory", "--lambdas", "0.5", "0.9", "--batch-size", "4096",
                 "--out", str(tmp_path), "--threads", "1"])
    assert code == 0
    rows = json.loads((tmp_path / "memory.json").read_text())["rows"]
    for row in rows:
        # Monte-Carlo with 4096 sequences: ~2% standard error per entry
        assert row["E[h^2]"] == pytest.approx(row["E[h^2] theory"], rel=0.1)
        assert row["E[(dh/dlam)^2]"] == pytest.approx(row["E[(dh/dlam)^2] theory"], rel=0.1)
        assert row["cured E[h^2]"] == pytest.approx(1.0, rel=0.1)
        assert row["cured E[(dh/dnu)^2]"] == pytest.approx(row["cured theory"], rel=0.1)
    assert (tmp_path / "memory.csv").exists() and (tmp_path / "memory.png").stat().st_size > 0
    assert "plain sensitivity grows" in capsys.readouterr().out


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "recurrent_params", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "teacher-student" in result.stdout
