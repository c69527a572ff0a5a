"""Bad arguments to the ``recurrent-params`` subcommands (run in-process)."""

from __future__ import annotations

from tests.bad_inputs.case import CliCase

CASES: list = [
    CliCase("memory-lambda-outside-unit-interval", ["memory", "--lambdas", "0.5", "1.5"],
            match=r"\(0, 1\)"),
]
