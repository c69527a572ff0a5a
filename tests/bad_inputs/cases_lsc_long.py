"""Bad arguments to ``recurrent-params lsc --task smnist|fashion|brown`` and their helpers.

Every row fails before any training starts (argument parsing, the task-option check, the size
checks of ``sizes_for`` or the helpers' own checks), so the table stays fast.
"""

from __future__ import annotations

from tests.bad_inputs.case import Case, CliCase

SM = ["lsc", "--task", "smnist", "--quick", "--no-progress"]
BR = ["lsc", "--task", "brown", "--quick", "--no-progress"]


def _unknown_cell():
    from recurrent_params.experiments.lsc_long import build_net

    return build_net("lru", 2, 8)


def _unknown_task():
    from recurrent_params.experiments.lsc_long import PRESETS, load_images

    return load_images("cifar", PRESETS["quick"])


def _unknown_net():
    from recurrent_params.experiments.lsc_brown import PRESETS, build_lm

    return build_lm("gru2", PRESETS["quick"], 10)


def _dropout_one():
    from recurrent_params.experiments.lsc_digits import SequenceClassifier

    return SequenceClassifier("lstm", 4, 2, dropout=1.0)


CASES: list = [
    CliCase("lsc-long-unknown-preset", [*SM, "--preset", "gpu"],
            match=r"--preset.*invalid choice", exit_codes=(2,)),
    CliCase("lsc-long-unknown-task", ["lsc", "--task", "ptb"], match=r"--task.*invalid choice",
            exit_codes=(2,)),
    CliCase("lsc-long-patience-zero", [*SM, "--patience", "0"], match=r"--patience.*>= 1",
            exit_codes=(2,)),
    CliCase("lsc-long-dropout-one", [*SM, "--dropout", "1"],
            match=r"--dropout.*number in \[0, 1\)", exit_codes=(2,)),
    CliCase("lsc-long-dropout-nan", [*SM, "--dropout", "nan"], match=r"--dropout.*expected",
            exit_codes=(2,)),
    CliCase("lsc-long-unknown-init", [*SM, "--inits", "orthogonal"],
            match=r"--inits.*invalid choice", exit_codes=(2,)),
    CliCase("lsc-long-alif-lr-zero", [*SM, "--alif-lr", "0"], match=r"--alif-lr.*> 0",
            exit_codes=(2,)),
    CliCase("lsc-long-data-root-missing", [*SM, "--data-root", "no/such/folder"],
            match=r"--data-root: no/such/folder is not a folder", exit_codes=(1,)),
    CliCase("lsc-long-trace-every-negative", [*SM, "--trace-every", "-1"],
            match=r"--trace-every.*>= 0", exit_codes=(2,)),
    CliCase("lsc-brown-trace-every", [*BR, "--trace-every", "5"],
            match=r"--trace-every is an option of --task smnist, not of --task brown",
            exit_codes=(1,)),
    CliCase("lsc-brown-depth5-preset", ["lsc", "--task", "brown", "--preset", "cpu-depth5",
                                        "--no-progress"],
            match=r"--preset cpu-depth5 is not a preset of --task brown \(one of quick, cpu, "
            r"full\)", exit_codes=(1,)),
    CliCase("lsc-brown-bad-net", [*BR, "--nets", "rnn3"],
            match=r"--nets.*expected lstm<depth> or lru<depth>", exit_codes=(2,)),
    CliCase("lsc-brown-net-depth-zero", [*BR, "--nets", "lru0"],
            match=r"--nets.*expected lstm<depth> or lru<depth>", exit_codes=(2,)),
    CliCase("lsc-brown-bptt-zero", [*BR, "--bptt", "0"], match=r"--bptt.*>= 1",
            exit_codes=(2,)),
    CliCase("lsc-brown-data-root-missing", [*BR, "--data-root", "no/such/folder"],
            match=r"--data-root: no/such/folder is not a folder", exit_codes=(1,)),
    CliCase("lsc-long-option-with-digits", ["lsc", "--permute", "--preset", "cpu"],
            match=r"--preset is an option of --task smnist, not of --task digits \(also of "
            r"--task fashion, brown\); --permute is an option of --task smnist",
            exit_codes=(1,)),
    CliCase("lsc-brown-option-with-smnist", [*SM, "--bptt", "20", "--nets", "lstm2"],
            match=r"--nets, --bptt are options of --task brown, not of --task smnist",
            exit_codes=(1,)),
    CliCase("lsc-smnist-option-with-brown", [*BR, "--permute", "--cells", "gru"],
            match=r"--cells is an option of --task digits, not of --task brown \(also of "
            r"--task smnist, fashion\); --permute is an option of --task smnist",
            exit_codes=(1,)),
    CliCase("lsc-copy-option-with-fashion", ["lsc", "--task", "fashion", "--delay", "3"],
            match=r"--delay is an option of --task copy, not of --task fashion",
            exit_codes=(1,)),
    Case("lsc-long-unknown-cell", _unknown_cell, match=r"cell must be one of"),
    Case("lsc-long-unknown-task-name", _unknown_task, match=r"task must be one of"),
    Case("lsc-brown-unknown-net", _unknown_net, match=r"net must be lstm<depth> or lru<depth>"),
    Case("lsc-classifier-dropout-one", _dropout_one, match=r"dropout must be in \[0, 1\)"),
]
