"""Bad inputs to signal propagation: ``diagnostics.signal_propagation``, the autocorrelation
helpers and the ``signal-propagation`` subcommand."""

from __future__ import annotations

import torch
from torch import nn

from tests.bad_inputs.case import Case, CliCase


def _sp(*args, **kwargs):
    from diagnostics import signal_propagation

    return signal_propagation(*args, **kwargs)


def _cell():
    from recurrent_params import DiagonalRNN

    return DiagonalRNN(2, 3, 2)


def _acf(*args):
    from diagnostics import autocorrelation

    return autocorrelation(*args)


def _tau(*args):
    from diagnostics import correlation_time

    return correlation_time(*args)


_SP = ["signal-propagation", "--quick"]

CASES: list = [
    Case("signal-propagation-lib-no-recurrent-layer",
         lambda: _sp(nn.Linear(2, 2), torch.randn(1, 4, 2)), match="no recurrent layer"),
    Case("signal-propagation-lib-burn-in-past-the-end",
         lambda: _sp(_cell(), torch.randn(1, 4, 2), burn_in=4), match=r"burn_in .*\[0, 3\]"),
    Case("signal-propagation-lib-zero-probes",
         lambda: _sp(_cell(), torch.randn(1, 4, 2), probes=0), match="probes"),
    Case("signal-propagation-lib-layers-one-module",
         lambda: _sp(_cell(), torch.randn(1, 4, 2), layers=_cell()), raises=TypeError,
         match="sequence of modules"),
    Case("signal-propagation-lib-layer-not-called",
         lambda: _sp(_cell(), torch.randn(1, 4, 2), layers=[_cell()]),
         match="called 0 times"),
    Case("signal-propagation-lib-inputs-not-a-batch",
         lambda: _sp(_cell(), torch.randn(4)), match=r"\(batch, length"),
    Case("signal-propagation-lib-unknown-parameter",
         lambda: _sp(_cell(), torch.randn(1, 4, 2), parameters={"w": "no_such"}),
         match="no parameter 'no_such'"),
    Case("signal-propagation-lib-multi-layer-gru",
         lambda: _sp(nn.GRU(2, 2, num_layers=2, batch_first=True), torch.randn(1, 4, 2)),
         match="2-layer GRU"),
    Case("autocorrelation-lag-not-below-length",
         lambda: _acf(torch.randn(2, 5, 1), 5), match=r"max_lag .*\[0, 4\]"),
    Case("autocorrelation-constant-input",
         lambda: _acf(torch.ones(2, 5, 1), 2), match="constant"),
    Case("autocorrelation-complex-input",
         lambda: _acf(torch.randn(2, 5, 1, dtype=torch.complex64), 2), match="real floating"),
    Case("correlation-time-not-an-acf",
         lambda: _tau(torch.tensor([0.5, 0.2])), match=r"acf\[0\] == 1"),
    CliCase("signal-propagation-nu0-one", _SP + ["--nu0", "0.5", "1.0"], match=r"\(0, 1\)"),
    CliCase("signal-propagation-nu0-zero", _SP + ["--nu0", "0"], match=r"\(0, 1\)"),
    CliCase("signal-propagation-unknown-source", _SP + ["--inputs", "wikipedia"],
            match="--inputs must be among"),
    CliCase("signal-propagation-unknown-model", _SP + ["--models", "lstm"],
            match="--models must be among"),
    CliCase("signal-propagation-rho-outside", _SP + ["--rho", "1.5"], match=r"\(-1, 1\)"),
    CliCase("signal-propagation-unknown-norm", _SP + ["--norm", "batch"],
            match="--norm must be one of"),
    CliCase("signal-propagation-zero-depth", _SP + ["--depth", "0"],
            match="--depth must be a positive integer"),
    CliCase("signal-propagation-zero-d-model", _SP + ["--d-model", "0"],
            match="--d-model must be a positive integer"),
    CliCase("signal-propagation-zero-batch", _SP + ["--batch-size", "0"],
            match="--batch-size must be a positive integer"),
    CliCase("signal-propagation-zero-length", _SP + ["--length", "0"],
            match="--length must be a positive integer"),
    CliCase("signal-propagation-zero-features", _SP + ["--features", "0"],
            match="--features must be a positive integer"),
    CliCase("signal-propagation-zero-d-state", _SP + ["--d-state", "0"],
            match="--d-state must be a positive integer"),
    CliCase("signal-propagation-length-one", _SP + ["--length", "1"], match="at least 2"),
    CliCase("signal-propagation-burn-in-too-long", _SP + ["--burn-in", "128"],
            match=r"--burn-in must lie in \[0, length\)"),
    CliCase("signal-propagation-cli-zero-probes", _SP + ["--probes", "0"],
            match="--probes must be a positive integer"),
    CliCase("signal-propagation-zero-max-lag", _SP + ["--max-lag", "0"],
            match="--max-lag must be a positive integer"),
    CliCase("signal-propagation-missing-data", _SP + ["--inputs", "mnist", "--data-root",
                                                      "no-such-folder"],
            match=r"python -m recurrent_params\.data\.fetch"),
    CliCase("signal-propagation-nu0-nan",
            _SP + ["--inputs", "white", "--nu0", "nan"], match=r"\(0, 1\)"),
]
