"""Bad inputs to the optimiser-side tools: effective learning rates, Lookahead, AdaBelief."""

from __future__ import annotations

import math

import torch

from diagnostics import EffectiveLRTracker, effective_learning_rates
from optim import AdaBelief, lookahead
from tests.bad_inputs.case import Case


def _adam(*params: torch.Tensor) -> torch.optim.Optimizer:
    return torch.optim.Adam(list(params) or [torch.nn.Parameter(torch.zeros(2))], lr=1e-2)


def _sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


def _adabelief_nan_step() -> torch.Tensor:
    p = torch.nn.Parameter(torch.ones(3))
    opt = AdaBelief([p], lr=0.1)
    for grad in ([float("nan"), 1.0, 1.0], [1.0, 1.0, 1.0]):
        p.grad = torch.tensor(grad)
        opt.step()
    return p.detach()


def _nan_in_nan_out(p: torch.Tensor) -> None:  # documented in AdaBelief's docstring
    assert math.isnan(p[0]) and torch.isfinite(p[1:]).all()


CASES: list = [
    # effective learning rates
    Case("effective-lr-named-tensor-not-in-optimizer",
         lambda: effective_learning_rates(_adam(), {"q": torch.nn.Parameter(torch.zeros(2))}),
         match=r"'q' is not a parameter of this Adam"),
    Case("effective-lr-tracker-named-tensor-not-in-optimizer",
         lambda: EffectiveLRTracker(_adam(), {"q": torch.nn.Parameter(torch.zeros(2))}),
         match=r"'q' is not a parameter of this Adam"),
    Case("effective-lr-unknown-definition",
         lambda: effective_learning_rates(_adam(), definition="update"), match=r"definition"),
    Case("effective-lr-unreadable-optimizer", lambda: effective_learning_rates(_sgd()),
         raises=TypeError, match=r"cannot read SGD.*all_ones"),
    Case("effective-lr-not-an-optimizer", lambda: effective_learning_rates("adam"),
         raises=TypeError, match=r"torch.optim.Optimizer, got str"),
    Case("effective-lr-tracker-every-zero", lambda: EffectiveLRTracker(_adam(), every=0),
         match=r"every must be >= 1"),
    # lookahead
    Case("lookahead-k-zero", lambda: lookahead(_sgd(), k=0), match=r"k must be an integer >= 1"),
    Case("lookahead-k-not-integer", lambda: lookahead(_sgd(), k=1.5), raises=TypeError,
         match=r"k must be an integer"),
    Case("lookahead-alpha-above-one", lambda: lookahead(_sgd(), k=1, alpha=2.0),
         match=r"alpha must lie in \(0, 1\]"),
    Case("lookahead-alpha-zero", lambda: lookahead(_sgd(), alpha=0.0),
         match=r"alpha must lie in \(0, 1\]"),
    Case("lookahead-alpha-nan", lambda: lookahead(_sgd(), alpha=float("nan")),
         match=r"alpha must lie in \(0, 1\]"),
    Case("lookahead-inner-not-an-optimizer", lambda: lookahead([torch.zeros(2)]),
         raises=TypeError, match=r"inner must be a torch.optim.Optimizer"),
    # AdaBelief
    Case("adabelief-negative-lr", lambda: AdaBelief([torch.nn.Parameter(torch.zeros(1))], lr=-1),
         match=r"lr >= 0"),
    Case("adabelief-beta-one",
         lambda: AdaBelief([torch.nn.Parameter(torch.zeros(1))], betas=(1.0, 0.999)),
         match=r"beta at index 0"),
    Case("adabelief-negative-eps",
         lambda: AdaBelief([torch.nn.Parameter(torch.zeros(1))], eps=-1.0), match=r"eps"),
    Case("adabelief-nan-gradient-passes-through", _adabelief_nan_step, raises=None,
         check=_nan_in_nan_out),
]
