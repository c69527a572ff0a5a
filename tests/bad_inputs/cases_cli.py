"""Bad arguments to the ``recurrent-params`` subcommands (run in-process).

Every numeric option is typed with the shared validators of
``recurrent_params/experiments/_arg_types.py``: a value the experiment could not use exits with
status 2 and ``argument --x: expected ...`` before anything runs. Values that depend on other
options, unreadable files and diverged runs exit with status 1 and one line.
"""

from __future__ import annotations

from pathlib import Path

from tests.bad_inputs.case import CliCase

_ROOT = Path(__file__).resolve().parents[2]
#: valid JSON that is not a teacher-student result
_OTHER_JSON = str(_ROOT / "docs" / "figures" / "lsc_digits_runs.json")
_TINY_LR = ["effective-lr", "--quick", "--no-progress", "--threads", "1", "--models", "dense",
            "--steps", "20", "--length", "8", "--batch-size", "4", "--d-state", "10"]

CASES: list = [
    CliCase("memory-lambda-outside-unit-interval", ["memory", "--lambdas", "0.5", "1.5"],
            match=r"\(0, 1\)"),
    # common options
    CliCase("seed-too-large-for-torch", ["memory", "--seed", "1180591620717411303424"],
            match=r"--seed.*\[0, 2\*\*32\)", exit_codes=(2,)),
    CliCase("seed-negative", ["memory", "--seed", "-1"], match=r"--seed", exit_codes=(2,)),
    CliCase("seed-not-an-integer", ["memory", "--seed", "1.5"], match=r"--seed",
            exit_codes=(2,)),
    CliCase("threads-zero", ["memory", "--threads", "0"], match=r"--threads.*>= 1",
            exit_codes=(2,)),
    CliCase("out-folder-cannot-be-created", ["memory", "--out", "/dev/null/results"],
            match=r"cannot create --out folder '/dev/null/results'", exit_codes=(1,)),
    CliCase("plot-path-cannot-be-written",
            ["memory", "--quick", "--threads", "1", "--lambdas", "0.5", "--batch-size", "64",
             "--plot", "/dev/null/memory.png"],
            match=r"cannot write or read '/dev/null'", exit_codes=(1,)),
    # memory
    CliCase("memory-batch-size-zero", ["memory", "--batch-size", "0"],
            match=r"--batch-size.*>= 1, got '0'", exit_codes=(2,)),
    CliCase("memory-rho-infinite", ["memory", "--rho", "inf"], match=r"--rho.*finite",
            exit_codes=(2,)),
    CliCase("memory-lambda-nan", ["memory", "--lambdas", "nan"], match=r"--lambdas.*finite",
            exit_codes=(2,)),
    # lsc
    CliCase("lsc-copy-length-zero", ["lsc", "--task", "copy", "--length", "0"],
            match=r"--length.*>= 1", exit_codes=(2,)),
    CliCase("lsc-hidden-zero", ["lsc", "--task", "copy", "--hidden", "0"],
            match=r"--hidden.*>= 1", exit_codes=(2,)),
    CliCase("lsc-depths-zero", ["lsc", "--depths", "2", "0"], match=r"--depths.*>= 1",
            exit_codes=(2,)),
    CliCase("lsc-lr-zero", ["lsc", "--lr", "0"], match=r"--lr.*> 0", exit_codes=(2,)),
    CliCase("lsc-ffn-lr-negative", ["lsc", "--ffn-lr=-1e-3"], match=r"--ffn-lr.*> 0",
            exit_codes=(2,)),
    CliCase("lsc-copy-delay-not-below-length",
            ["lsc", "--task", "copy", "--length", "5", "--delay", "5"],
            match=r"--delay 5 must be smaller than --length 5", exit_codes=(1,)),
    CliCase("lsc-digits-option-with-copy", ["lsc", "--task", "copy", "--epochs", "3"],
            match=r"--epochs is an option of --task digits, not of --task copy",
            exit_codes=(1,)),
    CliCase("lsc-copy-options-with-digits", ["lsc", "--length", "30", "--batch", "8"],
            match=r"--length, --batch are options of --task copy, not of --task digits",
            exit_codes=(1,)),
    # effective-lr
    CliCase("effective-lr-diverges", [*_TINY_LR, "--lr", "1e6"],
            match=r"dense student diverged.*--lr 1e\+06", exit_codes=(1,)),
    CliCase("effective-lr-lr-zero", ["effective-lr", "--lr", "0"], match=r"--lr.*> 0",
            exit_codes=(2,)),
    CliCase("effective-lr-steps-zero", ["effective-lr", "--steps", "0"],
            match=r"--steps.*>= 1", exit_codes=(2,)),
    CliCase("effective-lr-nu0-nan", ["effective-lr", "--nu0", "nan"], match=r"--nu0.*finite",
            exit_codes=(2,)),
    CliCase("effective-lr-d-state-below-teacher", ["effective-lr", "--d-state", "4"],
            match=r"--d-state must be at least the teacher's 10", exit_codes=(1,)),
    # teacher-student
    CliCase("teacher-student-steps-zero", ["teacher-student", "--steps", "0"],
            match=r"--steps.*>= 1", exit_codes=(2,)),
    CliCase("teacher-student-lrs-negative", ["teacher-student", "--lrs", "1e-3", "-1"],
            match=r"--lrs.*> 0", exit_codes=(2,)),
    CliCase("teacher-student-log-every-negative", ["teacher-student", "--log-every", "-1"],
            match=r"--log-every.*>= 0", exit_codes=(2,)),
    CliCase("teacher-student-stack-zero", ["teacher-student", "--stack", "0"],
            match=r"--stack.*>= 1", exit_codes=(2,)),
    CliCase("from-json-missing-file", ["teacher-student", "--from-json", "missing.json"],
            match=r"--from-json 'missing.json': cannot read it", exit_codes=(1,)),
    CliCase("from-json-not-json", ["teacher-student", "--from-json", "/dev/null"],
            match=r"--from-json '/dev/null': not a JSON file", exit_codes=(1,)),
    CliCase("from-json-wrong-shape", ["teacher-student", "--from-json", _OTHER_JSON],
            match=r"lsc_digits_runs.json' is not a teacher-student result.*'settings' and "
            r"'runs'", exit_codes=(1,)),
    CliCase("hessian-models-empty", ["hessian", "--models", ""],
            match=r"--models.*comma-separated subset of dense,diagonal,lru", exit_codes=(2,)),
    CliCase("hessian-models-unknown", ["hessian", "--models", "dense,nope"],
            match=r"--models.*unknown 'nope'", exit_codes=(2,)),
    CliCase("hessian-d-state-zero", ["hessian", "--d-state", "0"],
            match=r"--d-state.*>= 1", exit_codes=(2,)),
    CliCase("hessian-top-k-negative", ["hessian", "--top-k", "-1"],
            match=r"--top-k.*>= 1", exit_codes=(2,)),
    CliCase("hessian-length-zero", ["hessian", "--length", "0"],
            match=r"--length.*>= 1", exit_codes=(2,)),
    CliCase("hessian-nu0-nan", ["hessian", "--nu0", "nan"],
            match=r"--nu0.*finite", exit_codes=(2,)),
    CliCase("hessian-nu0-one", ["hessian", "--nu0", "1.0", "--quick"],
            match=r"--nu0 must be in \[0, 1\)", exit_codes=(1,)),
]
