"""The command line: dispatch, common options, one-line errors, the memory experiment."""

import json
import subprocess
import sys

import pytest

from recurrent_params.cli import EXPERIMENTS, build_parser, main
from tests._mallinfo import mallinfo2


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


def test_help_shows_whole_summaries(capsys):
    from recurrent_params.cli import first_sentence

    assert first_sentence("The curse of memory (arXiv 2405.21064). For lam near 1, e.g. 0.99."
                          ) == "The curse of memory (arXiv 2405.21064)."
    assert first_sentence("No full stop") == "No full stop"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    assert "(arXiv 2405." + ")" not in out and "(arXiv 2405.21064" in out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "experiment")
    for action in sub._choices_actions:
        text = action.help
        assert text.endswith(".") and text.count("(") == text.count(")"), (action.dest, text)
        assert len(text) > 30 and text in out, (action.dest, text)


def test_library_warnings_are_one_clean_line(monkeypatch, capsys):
    import warnings

    from recurrent_params.experiments import memory

    def run(args):
        warnings.warn("LSC: 2 transition(s) left at\n  their floor", RuntimeWarning,
                      stacklevel=1)
        return None

    monkeypatch.setattr(memory, "run", run)
    before = warnings.showwarning
    assert main(["memory"]) == 0
    err = capsys.readouterr().err
    assert err == "recurrent-params: warning: LSC: 2 transition(s) left at their floor\n"
    assert warnings.showwarning is before  # restored after the run


def test_lsc_groups_its_options_per_task(capsys):
    with pytest.raises(SystemExit):
        main(["lsc", "--help"])
    out = capsys.readouterr().out
    both_at, copy_at = out.index("\nevery task:"), out.index("\n--task copy:")
    digits_at = out.index("\n--task digits:")
    assert both_at < out.index("--pretrain-steps", both_at) < copy_at
    assert copy_at < out.index("--delay", copy_at) < digits_at
    assert "--ffn-depth" in out[digits_at:] and "--delay" not in out[digits_at:]


def test_argument_types_refuse_what_the_experiments_cannot_use():
    import argparse

    from recurrent_params.experiments import _arg_types as t

    assert t.positive_int("3") == 3 and t.nonnegative_int("0") == 0 and t.seed("0") == 0
    assert t.positive_float("1e-3") == 1e-3 and t.finite_float("-2") == -2.0
    assert t.comma_list(("a", "b"))("b, a,b") == ["b", "a"]
    for fn, text in [(t.positive_int, "0"), (t.positive_int, "x"), (t.nonnegative_int, "-1"),
                     (t.seed, str(2**32)), (t.seed, "-1"), (t.positive_float, "0"),
                     (t.positive_float, "inf"), (t.finite_float, "nan"),
                     (t.comma_list(("a",)), ""), (t.comma_list(("a",)), "a,c")]:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            fn(text)


def test_demo_lsc_part_is_the_measured_budget():
    from recurrent_params.experiments import demo
    from recurrent_params.experiments.lsc import check_task_options
    from recurrent_params.experiments.lsc_digits import sizes_for

    args = build_parser().parse_args(["demo"])
    sub = demo._namespace_for(args, "lsc")
    check_task_options(sub)
    s = sizes_for(sub)
    assert (s["cells"], s["depths"], s["hidden"], s["epochs"], s["pretrain_steps"]) == (
        ["lstm"], [2], 32, 20, 15)
    assert s["ffn"] is False and s["seeds"] == 1


def _console(env_value):
    code = ("import ctypes, sys; import recurrent_params.cli as c; sys.argv=['x', '--help'];\n"
            "try: c.console_main()\nexcept SystemExit: pass\n"
            "from tests._mallinfo import mallinfo2\n"
            "import torch; f = mallinfo2(); before = f().hblkhd\n"
            "t = torch.empty(64 * 2**20, dtype=torch.uint8)\n"
            "print(f().hblkhd - before)")
    env = {**__import__("os").environ, "RECURRENT_PARAMS_KEEP_FREED_MEMORY": env_value}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_console_script_keeps_freed_memory_unless_told_not_to():
    if mallinfo2() is None:
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    assert _console("1") == 0  # a 64 MiB tensor comes from the heap, not a fresh mmap
    assert _console("0") >= 64 * 2**20
