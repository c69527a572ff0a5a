"""Signal propagation through deep stacks: closed forms for one linear layer (float64), exact
derivatives inside a stack against finite differences, the input autocorrelation, and the
``signal-propagation`` subcommand (quick, in-process; missing real data)."""

import json
import math

import pytest
import torch
from torch import nn

from diagnostics import (
    autocorrelation,
    correlated_inputs,
    correlation_time,
    normalized_exp_sensitivity,
    recurrent_layers,
    second_moment,
    sensitivity,
    signal_propagation,
)
from recurrent_params import LRU, DiagonalRNN, RecurrentStack, assign_
from recurrent_params.cli import main
from recurrent_params.experiments.signal_propagation import _GRULayer, build_model

F64 = torch.float64
C128 = torch.complex128


def white(batch, length, features, seed=0):
    return torch.randn(batch, length, features, generator=torch.Generator().manual_seed(seed),
                       dtype=F64)


def eigenvalues(magnitude, n):
    phases = torch.linspace(0.3, 2.8, n, dtype=F64)  # in (0, pi): theta = exp(theta_log)
    return torch.polar(torch.full((n,), magnitude, dtype=F64), phases), phases


# ------------------------------------------------------------------ closed forms, one layer

@pytest.mark.parametrize("nu", [0.5, 0.9])
def test_unnormalised_layer_matches_closed_forms(nu):
    n = 8
    cell = DiagonalRNN(n, n, n, complex=True).to(F64)
    lam, _ = eigenvalues(nu, n)
    assign_(cell, "lam", lam)
    assign_(cell, "B", torch.eye(n, dtype=C128))  # u_t = x_t: unit-variance white noise
    report = signal_propagation(cell, white(64, 1200, n), burn_in=200)
    assert report.layers == ["DiagonalRNN"] and set(report.sensitivity[0]) == {"lam"}
    assert report.exact[0]["lam"] and report.num_parameters[0]["lam"] == n
    # E|h|^2 = 1 / (1 - |lam|^2), E|dh/dlam|^2 = (1 + |lam|^2) / (1 - |lam|^2)^3
    assert report.second_moment[0] == pytest.approx(float(second_moment(lam).mean()), rel=0.05)
    assert report.sensitivity[0]["lam"] == pytest.approx(float(sensitivity(lam).mean()),
                                                         rel=0.07)
    assert report.input_second_moment[0] == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("nu", [0.5, 0.9])
def test_normalised_exponential_layer_matches_closed_forms(nu):
    n = 8
    cell = LRU(n, n, r_min=nu, r_max=nu).to(F64)  # ExpMag(phase="exp") + learned gamma
    lam, theta = eigenvalues(nu, n)
    assign_(cell, "lam", lam)
    gamma = (1 - lam.abs() ** 2).sqrt()
    assign_(cell, "B", torch.diag(gamma).to(C128))  # raw B = identity, effective gamma * I
    report = signal_propagation(cell, white(64, 1200, n, seed=1), burn_in=200)
    sens = report.sensitivity[0]
    assert set(sens) == {"nu", "theta_log"} and all(report.exact[0].values())
    # normalised: E|h|^2 = 1 for every |lam|
    assert report.second_moment[0] == pytest.approx(1.0, rel=0.05)
    # the learned gamma does not move with nu: the cured sensitivity, bounded (-> 1/2)
    expected_nu = normalized_exp_sensitivity(lam.abs(), through_gamma=False).mean()
    assert sens["nu"] == pytest.approx(float(expected_nu), rel=0.07)
    # the angle is not cured: dlam/dtheta_log = i theta lam, so
    # E|dh/dtheta_log|^2 = theta^2 |lam|^2 gamma^2 E|dh/dlam|^2 ~ (1 - |lam|)^-2
    expected_theta = theta**2 * lam.abs() ** 2 * gamma**2 * sensitivity(lam)
    assert sens["theta_log"] == pytest.approx(float(expected_theta.mean()), rel=0.07)


# ------------------------------------------------------------------ exact inside a stack

def _last_state_of(model, layer, x):
    out = {}
    handle = layer.register_forward_hook(lambda m, a, o: out.update(h=o[1]))
    with torch.no_grad():
        model(x)
    handle.remove()
    h = out["h"]
    return h[-1] if h.dim() == 3 else h


def _finite_difference_moment(model, layer, tensor, x, eps=1e-6):
    """(1/P) sum_p E_b ||dh_T/dtheta_p||^2 by central differences through the whole model."""
    total = 0.0
    flat = tensor.data.view(-1)
    for p in range(flat.numel()):
        keep = flat[p].clone()
        flat[p] = keep + eps
        plus = _last_state_of(model, layer, x)
        flat[p] = keep - eps
        minus = _last_state_of(model, layer, x)
        flat[p] = keep
        total += float((((plus - minus) / (2 * eps)).abs() ** 2).sum(-1).mean())
    return total / flat.numel()


def test_derivative_of_an_upper_layer_is_exact_inside_the_stack():
    torch.manual_seed(0)
    model = build_model("crnn", 0.9, depth=2, d_model=3, d_state=3, d_input=2).to(F64)
    x = white(2, 7, 2, seed=2)
    layers = recurrent_layers(model)
    assert len(layers) == 2
    # burn_in = length - 1: the average is over the last step, which the layer returns itself
    report = signal_propagation(model, x, burn_in=6)
    for i, layer in enumerate(layers):
        reference = _finite_difference_moment(model, layer, layer.lam, x)
        assert report.sensitivity[i]["lam"] == pytest.approx(reference, rel=1e-5)


def test_gru_recurrent_weights_hutchinson_matches_finite_differences():
    torch.manual_seed(0)
    model = build_model("gru", 0.9, depth=2, d_model=3, d_state=3, d_input=2).to(F64)
    x = white(2, 6, 2, seed=3)
    layers = recurrent_layers(model)
    assert [type(m) for m in layers] == [nn.GRU, nn.GRU]
    gen = torch.Generator().manual_seed(0)
    report = signal_propagation(model, x, burn_in=5, probes=600, generator=gen)
    assert not report.exact[1]["weight_hh"] and report.num_parameters[1]["weight_hh"] == 27
    reference = _finite_difference_moment(model, layers[1], layers[1].weight_hh_l0, x)
    assert report.sensitivity[1]["weight_hh"] == pytest.approx(reference, rel=0.15)


def test_gru_update_gate_bias_sets_the_retention_to_nu0():
    layer = _GRULayer(4, 0.99)
    z_bias = layer.gru.bias_ih_l0[4:8] + layer.gru.bias_hh_l0[4:8]
    torch.testing.assert_close(torch.sigmoid(z_bias), torch.full((4,), 0.99))
    # the adapter's step mode equals its sequence mode
    x = torch.randn(2, 5, 4)
    y, h = layer(x)
    state, steps = None, []
    for t in range(5):
        out, state = layer.step(x[:, t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), y)
    torch.testing.assert_close(state, h)


def test_norm_none_is_the_residual_stack_without_normalisation():
    stack = build_model("lru", 0.9, depth=2, d_model=4, d_state=4, d_input=1, norm="none")
    assert isinstance(stack, RecurrentStack)
    assert all(isinstance(b.norm, nn.Identity) for b in stack.blocks)
    with_norm = build_model("lru", 0.9, depth=2, d_model=4, d_state=4, d_input=1, norm="layer")
    assert all(isinstance(b.norm, nn.LayerNorm) for b in with_norm.blocks)
    assert torch.allclose(stack.blocks[0].layer.lam.abs(), torch.full((4,), 0.9))


def test_states_that_do_not_match_the_layer_are_refused():
    class Twice(DiagonalRNN):  # returns a state the diagonal rule does not reproduce
        def forward(self, x, state=None):
            y, h = super().forward(x, state)
            return y, 2 * h

    with pytest.raises(ValueError, match="do not end at its own last state"):
        signal_propagation(Twice(2, 3, 2), torch.randn(1, 5, 2))


# ------------------------------------------------------------------ autocorrelation

def test_ar1_autocorrelation_and_correlation_time_are_recovered():
    rho = 0.7
    x = correlated_inputs(512, 400, 2, rho, generator=torch.Generator().manual_seed(0),
                          dtype=F64)
    acf = autocorrelation(x, 60)
    torch.testing.assert_close(acf[:6], rho ** torch.arange(6, dtype=F64), atol=0.01, rtol=0)
    assert correlation_time(acf) == pytest.approx((1 + rho) / (1 - rho), rel=0.05)
    noise = autocorrelation(white(256, 400, 2), 60)
    assert correlation_time(noise) == pytest.approx(1.0, abs=0.15)


# ------------------------------------------------------------------ the subcommand

def test_quick_run_shows_the_curse_and_the_cure(tmp_path, capsys):
    code = main(["signal-propagation", "--quick", "--nu0", "0.5", "0.9", "--length", "64",
                 "--out", str(tmp_path), "--threads", "1"])
    assert code == 0
    result = json.loads((tmp_path / "signal-propagation.json").read_text())
    rows = result["rows"]
    assert len(rows) == 2 * 3 * 2 * 4  # sources x models x nu0 x layers
    assert (tmp_path / "signal_propagation_white.png").stat().st_size > 0
    assert (tmp_path / "signal_propagation_ar1.png").stat().st_size > 0
    assert result["autocorrelation"]["ar1"]["rho(1)"] == pytest.approx(0.9, abs=0.05)

    def value(model, nu0, column, layer=1, source="white"):
        (row,) = [r for r in rows if r["source"] == source and r["model"] == model
                  and r["nu0"] == nu0 and r["layer"] == layer]
        return row[column]

    # unnormalised complex diagonal: closed-form growth 89x from 0.5 to 0.9
    assert value("crnn", 0.9, "E|dh/dlam|^2") > 20 * value("crnn", 0.5, "E|dh/dlam|^2")
    # LRU: ExpMag + gamma keep the magnitude's sensitivity bounded (theory 1.7x)
    assert value("lru", 0.9, "E|dh/dnu|^2") < 5 * value("lru", 0.5, "E|dh/dnu|^2")
    assert value("gru", 0.9, "E|dh/dW_hh|^2") > 0
    out = capsys.readouterr().out
    assert "Input autocorrelation" in out and "E|dh/dtheta_log|^2" in out


def test_missing_real_data_names_the_fetch_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECURRENT_PARAMS_DATA", str(tmp_path / "empty"))
    code = main(["signal-propagation", "--quick", "--inputs", "brown"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "python -m recurrent_params.data.fetch" in err and "Traceback" not in err


def test_summary_sentence_and_quick_defaults(tmp_path):
    from recurrent_params.experiments import signal_propagation as experiment

    args = experiment.argparse.Namespace(
        quick=True, inputs=["white"], models=["crnn"], nu0=[0.5, 0.9], depth=2, d_model=None,
        d_state=None, batch_size=None, length=32, features=None, rho=0.9, norm="none",
        probes=1, burn_in=0, max_lag=8, data_root=None, device=torch.device("cpu"), seed=0,
        out=None, plot=None)
    result = experiment.run(args)
    assert result["config"]["d_model"] == 16 and result["config"]["batch_size"] == 8
    assert "crnn" in experiment.summarize(result)
    assert math.isfinite(result["seconds"])
