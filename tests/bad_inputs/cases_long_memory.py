"""Bad arguments to ``recurrent-params long-memory`` and its library helpers.

Every row fails before any training starts (argument parsing, the size checks of
``sizes_for`` or the helpers' own checks), so the table stays fast.
"""

from __future__ import annotations

from tests.bad_inputs.case import Case, CliCase

LM = ["long-memory", "--quick", "--no-progress"]


def _groups_of_a_string():
    from diagnostics import recurrent_parameter_groups

    return recurrent_parameter_groups("lstm")


def _grouped_summary_without_tensors():
    from diagnostics import grouped_summary

    return grouped_summary({}, {})


def _budget_zero():
    from recurrent_params.experiments.long_memory import match_budget

    return match_budget("lru", 0, 2, 0.5)


def _unknown_model():
    from recurrent_params.experiments.long_memory import build_model

    return build_model("transformer", 8, 4, 1)


def _unknown_dataset():
    from recurrent_params.experiments.long_memory import PRESETS, load_task

    return load_task("cifar", "plain", PRESETS["quick"])


CASES: list = [
    CliCase("long-memory-seeds-zero", [*LM, "--seeds", "0"],
            match=r"--seeds.*expected an integer >= 1"),
    CliCase("long-memory-epochs-not-int", [*LM, "--epochs", "two"],
            match=r"--epochs.*expected an integer >= 1"),
    CliCase("long-memory-negative-lr", [*LM, "--lr=-1e-3"],
            match=r"--lr.*expected a finite number > 0"),
    CliCase("long-memory-nan-lr-factor", [*LM, "--lr-factor", "nan"],
            match=r"--lr-factor.*expected a finite number > 0"),
    CliCase("long-memory-dropout-one", [*LM, "--dropout", "1"], match=r"--dropout must be < 1"),
    CliCase("long-memory-rmin-above-rmax", [*LM, "--r-min", "0.99", "--r-max", "0.9"],
            match=r"--r-min <= --r-max < 1"),
    CliCase("long-memory-rmax-one", [*LM, "--r-max", "1.0"], match=r"--r-max < 1"),
    CliCase("long-memory-unknown-model", [*LM, "--models", "transformer"],
            match=r"--models.*invalid choice"),
    CliCase("long-memory-unknown-dataset", [*LM, "--datasets", "cifar"],
            match=r"--datasets.*invalid choice"),
    CliCase("long-memory-unknown-preset", ["long-memory", "--preset", "gpu"],
            match=r"--preset.*invalid choice"),
    CliCase("long-memory-data-root-missing", [*LM, "--data-root", "no/such/folder"],
            match=r"--data-root: no/such/folder is not a folder"),
    Case("recurrent-parameter-groups-not-a-module", _groups_of_a_string, TypeError,
         match=r"model: expected an nn\.Module"),
    Case("grouped-summary-without-tensors", _grouped_summary_without_tensors,
         match=r"rates: expected per-coordinate tensors"),
    Case("long-memory-budget-zero", _budget_zero, match=r"budget: expected a positive"),
    Case("long-memory-unknown-model-name", _unknown_model, match=r"model must be one of"),
    Case("long-memory-unknown-dataset-name", _unknown_dataset, match=r"dataset must be one of"),
]
