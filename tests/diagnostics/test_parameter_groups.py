"""recurrent_parameter_groups and grouped_summary: which parameters are recurrent, and the
effective learning rates pooled per group (also through EffectiveLRTracker(groups=))."""

import pytest
import torch

from diagnostics import (
    EffectiveLRTracker,
    effective_learning_rates,
    grouped_summary,
    recurrent_parameter_groups,
)
from recurrent_params import ALIF, S4D, DiagonalRNN, ExpMag


def test_groups_of_s4d_alif_and_a_plain_module():
    net = torch.nn.Sequential(S4D(4, 3), ALIF(4, 5), torch.nn.GRU(5, 5))
    groups = recurrent_parameter_groups(net)
    assert groups["0.log_dt"] == "recurrent"
    assert groups["0.D"] == "input_output"
    assert all(g == "input_output" for n, g in groups.items() if n.startswith("0.param")
               and ".C." in n)
    assert groups["1.A"] == "recurrent" and groups["1.B"] == "input_output"
    assert groups["2.weight_hh_l0"] == "recurrent" and groups["2.weight_ih_l0"] == "input_output"
    with pytest.raises(TypeError, match="model"):
        recurrent_parameter_groups("not a module")


def test_grouped_summary_pools_coordinates_and_the_tracker_records_it():
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1))
    c = torch.nn.Parameter(torch.zeros(1))
    named = {"a": a, "b": b, "c": c}
    groups = {"a": "recurrent", "b": "recurrent", "c": "other"}
    opt = torch.optim.Adam([a, b, c], lr=0.1, eps=0.0)
    with EffectiveLRTracker(opt, named, groups=groups) as tracker:
        a.grad, b.grad, c.grad = torch.tensor([2.0, -0.5]), torch.tensor([1.0]), \
            torch.tensor([4.0])
        opt.step()
    # one Adam step: eta = lr / ((1 - beta1) |g|) = 1 / |g|: a -> 0.5, 2; b -> 1; c -> 0.25
    summ = grouped_summary(effective_learning_rates(opt, named), groups)
    assert summ["recurrent"]["median"] == pytest.approx(1.0)
    assert summ["recurrent"]["count"] == 3
    assert summ["recurrent"]["geo_mean"] == pytest.approx(1.0)  # (0.5 * 2 * 1)^(1/3)
    assert summ["other"]["max"] == pytest.approx(0.25)
    steps, values = tracker.group_series("recurrent", "max")
    assert steps == [1] and values == [pytest.approx(2.0)]
    assert tracker.to_dict()["groups"][0]["other"]["median"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown group"):
        tracker.group_series("mixers")


def test_groups_of_a_cell_registered_by_the_user():
    from torch.nn.utils import parametrize

    cell = DiagonalRNN(3, 4, 2, normalization="learned-direct")
    parametrize.register_parametrization(cell, "lam", ExpMag())
    groups = recurrent_parameter_groups(torch.nn.ModuleDict({"enc": torch.nn.Linear(1, 3),
                                                              "cell": cell}))
    assert groups == {
        "enc.weight": "other", "enc.bias": "other", "cell.D": "input_output",
        "cell.parametrizations.B.original0": "input_output",
        "cell.parametrizations.B.original1": "input_output",
        "cell.parametrizations.B.1.gamma_direct": "recurrent",
        "cell.parametrizations.C.original0": "input_output",
        "cell.parametrizations.C.original1": "input_output",
        "cell.parametrizations.lam.original0": "recurrent",
        "cell.parametrizations.lam.original1": "recurrent",
    }


def test_grouped_summary_leaves_out_nan_rates():
    out = grouped_summary({"a": torch.tensor([float("nan"), 3.0])}, {"a": "recurrent"})
    assert out["recurrent"]["count"] == 1 and out["recurrent"]["median"] == 3.0
