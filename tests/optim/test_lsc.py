"""LSCPretrainer: convergence on the supported model kinds, rescaling rules, resume, reports."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from diagnostics import Driver, Transition, transition_radii
from optim import AdaBelief, LSCPretrainer, LSCResult
from optim.lsc import rescale_, with_gate_bias_shift
from recurrent_params import LRU, DiagonalRNN, ExpMag


def _bad_tanh_ffn(depth=10, width=32):
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        nn.init.normal_(lin.weight, std=2 / width**0.5)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers)


@pytest.mark.slow
def test_deep_tanh_ffn_with_bad_init_reaches_radius_one():
    torch.manual_seed(0)
    net = _bad_tanh_ffn()
    result = LSCPretrainer(net, progress=False).run()
    assert result.converged, result.reason
    assert max(result.radii_before.values()) > 1.1
    for name, r in result.radii_after.items():
        assert r == pytest.approx(1.0, abs=0.02), name
    mean = sum(result.radii_after.values()) / len(result.radii_after)
    assert mean == pytest.approx(1.0, abs=0.02)


def test_orthogonal_linear_ffn_reports_radius_one_before_any_step():
    net = nn.Sequential(*[nn.Linear(16, 16, bias=False) for _ in range(3)])
    for m in net:
        nn.init.orthogonal_(m.weight)
    before = [m.weight.detach().clone() for m in net]
    result = LSCPretrainer(net, progress=False, patience=3, grad_step=False, shuffle=0).run()
    assert all(r == pytest.approx(1.0, abs=5e-4) for r in result.radii_before.values())
    assert result.converged and result.steps <= 3
    for m, w in zip(net, before):  # nothing to correct beyond rounding
        torch.testing.assert_close(m.weight, w, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_three_layer_lstm_depth_reaches_half_time_is_reported_floored():
    """Kernels alone cannot pull an LSTM time radius below its forget-gate floor: the
    transition is reported (target, floor, why), and its weights are not driven to zero."""
    torch.manual_seed(0)
    lstm = nn.LSTM(64, 64, num_layers=3)
    w_hh = [getattr(lstm, f"weight_hh_l{l}").norm().item() for l in range(3)]
    b_f = [getattr(lstm, f"bias_hh_l{l}")[64:128].detach().clone() for l in range(3)]
    with pytest.warns(RuntimeWarning, match="cannot reach"):
        result = LSCPretrainer(lstm, batch_size=32, clip=(0.7, 1.3), progress=False).run()
    assert set(result.radii_after) == {f"layer{l}.{k}" for l in range(3)
                                       for k in ("time", "depth")}
    for l in range(3):
        assert result.radii_after[f"layer{l}.depth"] == pytest.approx(0.5, abs=0.1)
        st = result.status[f"layer{l}.time"]
        assert st["target"] == 0.5 and st["floor"] is not None
        if not st["reached"]:
            assert st["floor"] > 0.45 and "forget" in st["why"]
        assert getattr(lstm, f"weight_hh_l{l}").norm().item() > 0.5 * w_hh[l]
        drift = (getattr(lstm, f"bias_hh_l{l}")[64:128] - b_f[l]).abs().max().item()
        assert drift < 0.5  # no bias is rescaled; only the small gradient steps move it
    assert "all" in result.saturation_before and "all" in result.saturation_after


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_rnns_run_and_rescale_their_kernels(cls, batch_first):
    torch.manual_seed(0)
    rnn = cls(3, 6, num_layers=2, batch_first=batch_first)
    w_hh0 = rnn.weight_hh_l1.detach().clone()
    w_ih0 = rnn.weight_ih_l1.detach().clone()
    pre = LSCPretrainer(rnn, max_steps=2, batch_size=4, seq_len=5, progress=False,
                        grad_step=False, shuffle=0, tolerance=1e-6)
    assert pre.run(num_steps=1).steps == 1  # a pause keeps the current weights
    hist = pre.history[0]
    factor_t = min(max(0.5 / hist["radii"]["layer1.time"], 0.85), 1.15)
    factor_d = min(max(0.5 / hist["radii"]["layer1.depth"], 0.85), 1.15)
    if "layer1.time" in hist["floored"]:
        factor_t = 1.0  # blocked by the gate floor: left alone
    torch.testing.assert_close(rnn.weight_hh_l1, w_hh0 * factor_t)
    torch.testing.assert_close(rnn.weight_ih_l1, w_ih0 * factor_d)
    result = pre.run()
    assert not result.converged and result.steps == 2
    assert "max_steps=2" in result.reason


def test_take_step_is_one_step_of_run():
    """``take_step()`` N times moves the weights and writes the history exactly as
    ``run(num_steps=N)``; ``run()`` then goes on from there."""
    def pretrainer():
        torch.manual_seed(0)
        net = nn.GRU(3, 6, num_layers=2, batch_first=True)
        return net, LSCPretrainer(net, max_steps=5, batch_size=4, seq_len=5, progress=False,
                                  seed=3)

    net_a, a = pretrainer()
    net_b, b = pretrainer()
    net_b.train()
    records = [b.take_step() for _ in range(3)]
    assert net_b.training  # the mode is restored
    with pytest.warns(RuntimeWarning):
        a.run(num_steps=3)
    assert [r["step"] for r in records] == [0, 1, 2] and b.step == a.step == 3
    assert records == b.history and b.history == a.history
    assert b.radii_before == a.radii_before
    for (k, pa), pb in zip(net_a.named_parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(pb, pa, rtol=0, atol=0, msg=k)
    with pytest.warns(RuntimeWarning):
        assert b.run().steps == 5


def test_single_layer_rnn_default_target_is_one_and_unbalanced_split():
    rnn = nn.GRU(2, 4)
    pre = LSCPretrainer(rnn, max_steps=1, batch_size=2, seq_len=3, progress=False)
    assert set(pre.run().targets.values()) == {1.0}
    deep = nn.RNN(2, 4, num_layers=3)
    res = LSCPretrainer(deep, target="unbalanced", max_steps=1, batch_size=2,
                        input_shape=(7, 2), progress=False).run()
    assert res.targets["layer1.time"] == pytest.approx(7 / 10)
    assert res.targets["layer1.depth"] == pytest.approx(3 / 10)


def test_cell_stack_with_mixing_layers_reports_every_transition():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Linear(3, 8), nn.GRUCell(8, 8), nn.Tanh(), nn.RNNCell(8, 8),
                          nn.Linear(8, 2))
    result = LSCPretrainer(stack, batch_size=32, seq_len=6, max_steps=60,
                           progress=False).run()
    assert result.targets["decoder"] == 1.0  # the decoder aims at 1 (REFERENCE section 3)
    assert result.radii_after["decoder"] == pytest.approx(1.0, abs=0.1)
    for name, st in result.status.items():
        assert st["reached"] == (abs(result.radii_after[name] - st["target"]) <= 0.1), name
        # a reason exactly when the target was missed
        if st["reached"]:
            assert st["why"] == "", (name, st)
        else:
            assert st["why"].startswith(("floored", "not within tolerance")), (name, st)
    assert result.status["layer0.time"]["floor"] is not None  # GRU update gate
    assert result.status["layer1.time"]["floor"] is None  # a plain RNN cell has none


def test_lru_stack_converges_and_rescales_lam_in_magnitude():
    torch.manual_seed(0)
    stack = nn.Sequential(LRU(4, 8, r_min=0.8, r_max=0.99), nn.GELU(), LRU(4, 8))
    phase0 = stack[0].lam.detach().angle()
    result = LSCPretrainer(stack, batch_size=16, seq_len=6, grad_step=False,
                           progress=False).run()
    assert result.converged, result.reason
    for name, r in result.radii_after.items():
        assert r == pytest.approx(0.5, abs=0.05), name
    lam = stack[0].lam.detach()
    assert float(lam.abs().max()) == pytest.approx(result.radii_after["layer0.time"], rel=1e-5)
    torch.testing.assert_close(lam.angle(), phase0)  # the phase is untouched


def test_magnitude_driver_rescales_lam_not_nu():
    """|lam| = 0.2 < 1/e: multiplying nu would move |lam| the wrong way (REFERENCE section 3)."""
    cell = DiagonalRNN(1, 3, 1, complex=False)
    with torch.no_grad():
        cell.lam.copy_(torch.tensor([0.2, 0.5, 0.9]))
    parametrize.register_parametrization(cell, "lam", ExpMag())
    rescale_(Driver(cell, "lam", "magnitude"), 1.1)
    torch.testing.assert_close(cell.lam, torch.tensor([0.22, 0.55, 0.99]))
    rescale_(Driver(cell, "lam", "magnitude"), 1.1, max_magnitude=0.995)
    assert float(cell.lam.detach().max()) == pytest.approx(0.995)


def test_resume_from_checkpoint_gives_the_same_result():
    torch.manual_seed(0)
    base = nn.LSTM(3, 6, num_layers=2, batch_first=True)
    kwargs = dict(batch_size=8, seq_len=5, progress=False, seed=3, max_steps=12,
                  grad_step=True, shuffle_every=4)
    full_model = copy.deepcopy(base)
    full = LSCPretrainer(full_model, **kwargs).run()
    part_model = copy.deepcopy(base)
    first = LSCPretrainer(part_model, **kwargs)
    first.run(num_steps=5)
    ckpt = copy.deepcopy(first.state_dict())
    resumed_model = copy.deepcopy(base)  # fresh weights: the checkpoint restores them
    second = LSCPretrainer(resumed_model, **kwargs)
    second.load_state_dict(ckpt)
    resumed = second.run()
    assert resumed.steps == full.steps
    assert resumed.history == full.history
    assert resumed.radii_after == full.radii_after
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradient_step_uses_one_persistent_optimiser():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    pre = LSCPretrainer(net, grad_step=True, max_steps=4, tolerance=1e-9, batch_size=8,
                        progress=False)
    from torch_optimizer import Lookahead

    assert isinstance(pre.optimizer, Lookahead)  # the reference's AdaBelief inside Lookahead
    assert isinstance(pre.optimizer.optimizer, AdaBelief)
    assert pre.optimizer.optimizer.defaults["lr"] == pytest.approx(7.2e-3)
    assert (pre.optimizer.k, pre.optimizer.alpha) == (6, 0.5)
    result = pre.run()
    assert result.steps == 4
    state = pre.optimizer.optimizer.state[net[0].weight]
    assert state["step"] == 4  # the same optimiser stepped every time
    assert "slow_param" in pre.optimizer.state[net[0].weight]
    assert all(h["loss"] >= 0 for h in result.history)


def test_user_batches_dataloader_and_protocol_model():
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(256, 8), torch.zeros(256))
    loader = torch.utils.data.DataLoader(data, batch_size=64)
    net = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
    result = LSCPretrainer(net, loader, progress=False).run()
    assert result.converged, result.reason

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.eye(3) * 3.0)

        def lsc_transitions(self, x):
            return [Transition("mine", lambda s: s @ self.w.T, x, (), (Driver(self, "w"),))]

    model = Scaled()
    result = LSCPretrainer(model, torch.randn(4, 3), target=0.7, progress=False).run()
    assert result.converged
    assert result.radii_after["mine"] == pytest.approx(0.7, abs=0.02)


def test_errors_say_what_to_provide():
    with pytest.raises(TypeError, match="lsc_transitions"):
        LSCPretrainer(nn.Conv1d(2, 2, 3), progress=False).run()
    with pytest.raises(ValueError, match="clip"):
        LSCPretrainer(nn.Linear(2, 2), clip=(1.2, 1.5))
    with pytest.raises(ValueError, match="target"):
        LSCPretrainer(nn.Sequential(nn.Linear(2, 2)), target="balanced", progress=False).run()


def test_result_is_a_readable_dataclass(tmp_path):
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    result = LSCPretrainer(net, max_steps=3, batch_size=8, progress=False).run()
    assert isinstance(result, LSCResult)
    assert "linear0" in repr(result) and "target" in repr(result)
    d = result.to_dict()
    assert d["steps"] == result.steps and d["radii_after"] == result.radii_after
    pytest.importorskip("matplotlib")
    result.plot(tmp_path / "lsc.png")
    assert (tmp_path / "lsc.png").stat().st_size > 0


def test_radii_after_are_remeasured_with_transition_radii():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6))
    result = LSCPretrainer(net, progress=False).run()
    again = transition_radii(net, batch_size=256)
    for k in again:
        assert again[k] == pytest.approx(result.radii_after[k], abs=0.05)


def test_runs_on_the_model_device_and_dtype(device):
    torch.manual_seed(0)
    rnn = nn.GRU(3, 6, num_layers=2, batch_first=True).to(device=device, dtype=torch.float64)
    radii = transition_radii(rnn, batch_size=4, seq_len=4, method="matrix_free")
    exact = transition_radii(rnn, batch_size=4, seq_len=4, method="exact")
    assert radii.keys() == exact.keys()
    result = LSCPretrainer(rnn, max_steps=3, batch_size=4, seq_len=4, grad_step=True,
                           shuffle_every=2, progress=False).run()
    assert result.steps == 3
    assert all(p.device.type == device.type and p.dtype == torch.float64
               for p in rnn.parameters())


_NAN_SCRIPT = """
import torch, sys
from torch import nn
from optim import LSCPretrainer
torch.manual_seed(0)
lstm = nn.LSTM(4, 200, num_layers=2, batch_first=True)
with torch.no_grad():
    lstm.weight_hh_l1[3, 5] = float("nan")
try:
    LSCPretrainer(lstm, batch_size=4, seq_len=3, max_steps=2, progress=False).run()
except FloatingPointError as e:
    print("ERROR:", e)
    sys.exit(0)
sys.exit(3)
"""


def test_nan_weight_raises_a_named_error_in_a_subprocess():
    """A NaN weight must raise (naming it), never reach LAPACK (MKL's eigvals can crash)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", _NAN_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "weight_hh_l1" in proc.stdout


def test_non_finite_states_and_jacobians_name_the_transition():
    from diagnostics import spectral_radius

    with pytest.raises(FloatingPointError, match="point of"):
        spectral_radius(lambda s: s, torch.full((2, 3), float("nan")))
    with pytest.raises(FloatingPointError, match="output of transition 'x'"):
        spectral_radius(lambda s: s * float("inf"), torch.ones(2, 3), name="transition 'x'")
    rnn = nn.GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match="NaN"):
        transition_radii(rnn, torch.full((2, 5, 3), float("nan")))
    with torch.no_grad():
        rnn.weight_ih_l0[0, 0] = float("nan")  # transition_radii alone: caught at the states
    with pytest.raises(FloatingPointError, match="state of layer 0"):
        transition_radii(rnn, torch.ones(2, 5, 3))
    with pytest.raises(FloatingPointError, match="weight_ih_l0"):
        LSCPretrainer(rnn, torch.ones(2, 5, 3), progress=False).run()
    with pytest.raises(FloatingPointError, match="input batch"):
        LSCPretrainer(nn.GRU(3, 4, batch_first=True), torch.full((2, 5, 3), float("inf")),
                      progress=False).run()


def test_shuffle_permutes_2d_kernels_only_and_is_switchable():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
    biases = {n: p.detach().clone() for n, p in lstm.named_parameters() if "bias" in n}
    w0 = lstm.weight_hh_l0.detach().clone()
    pre = LSCPretrainer(lstm, batch_size=4, seq_len=4, max_steps=6, shuffle_every=1,
                        grad_step=False, progress=False)
    pre.run(num_steps=1)
    for n, b in biases.items():
        torch.testing.assert_close(getattr(lstm, n), b)  # never rescaled, never shuffled
    w1 = lstm.weight_hh_l0.detach()
    vals0, vals1 = w0.flatten().sort().values, w1.flatten().sort().values
    ratio = (vals1 / vals0)[vals0.abs() > 1e-3]
    torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))  # a scaled permutation
    assert not torch.allclose(w1 / ratio[0], w0)
    off = LSCPretrainer(copy.deepcopy(lstm), max_steps=3, shuffle=0, grad_step=False,
                        progress=False)
    assert off.shuffle == 0
    with pytest.raises(ValueError, match="probability"):
        LSCPretrainer(lstm, shuffle=2.0)


def test_data_keyword_and_gate_bias_shift_opt_in():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
    data = [torch.randn(4, 6, 3) for _ in range(2)]
    pre = LSCPretrainer(lstm, data=data, max_steps=1, progress=False)
    assert pre.inputs is data
    with pytest.raises(ValueError, match="not both"):
        LSCPretrainer(lstm, data[0], data=data)
    from diagnostics import model_transitions

    plain = model_transitions(lstm, data[0])
    shifted = with_gate_bias_shift(model_transitions(lstm, data[0]))
    assert all(d.mode == "scale" for t in plain for d in t.drivers)
    assert any(d.mode == "shift" for t in shifted for d in t.drivers)
    assert all(t.floor is None for t in shifted)  # the shift removes the floor


def test_lstm_floor_is_the_largest_forget_gate_at_zero_recurrent_kernel():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 6, num_layers=1, batch_first=True).double()
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    from diagnostics import model_transitions, spectral_radius

    t = model_transitions(lstm, x)[0]
    floor = t.floor(t.point, *t.context)
    with torch.no_grad():
        lstm.weight_hh_l0.zero_()
    radius = spectral_radius(t.fn, t.point, t.context, method="exact")
    torch.testing.assert_close(floor, radius)


def test_saturation_warning_when_pretraining_saturates():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Linear(3, 8), nn.GRUCell(8, 8), nn.Tanh(), nn.RNNCell(8, 8),
                          nn.Linear(8, 2))
    with pytest.warns(RuntimeWarning) as record:
        result = LSCPretrainer(stack, batch_size=32, seq_len=6, max_steps=60,
                               progress=False).run()
    sat_b, sat_a = result.saturation_before["all"], result.saturation_after["all"]
    saturated = sat_a > 0.1 and sat_a > sat_b + 0.05
    assert saturated == any("saturated" in str(w.message) for w in record)
    assert 0 <= sat_b <= 1 and 0 <= sat_a <= 1


# -- ALIF spiking stacks ----------------------------------------------------------------------


def _alif_stack(**kw):
    from recurrent_params import ALIF

    torch.manual_seed(0)
    # threshold 0.1: the triangular surrogate covers |v - A| < 0.1, wide enough for the radii
    # through the spikes of tiny layers to be measured without too much noise
    return nn.Sequential(ALIF(2, 6, threshold=0.1, **kw), ALIF(6, 6, threshold=0.1, **kw))


@pytest.mark.slow
def test_alif_stack_at_half_reports_the_decay_floor_of_its_time_transitions():
    stack = _alif_stack(alpha=0.8, rho=0.9, beta=1.0)
    A_before = [cell.A.detach().clone() for cell in stack]
    with pytest.warns(RuntimeWarning, match="cannot reach their target"):
        result = LSCPretrainer(stack, target=0.5, max_steps=60, batch_size=8, seq_len=10,
                               shuffle=0.0, grad_step=False, progress=False).run()
    for l in range(2):
        st = result.status[f"layer{l}.time"]
        # e_a of a neuron outside the surrogate's support is an eigenvector with eigenvalue
        # rho whatever the kernels: the radius and the floor are at least max(alpha, rho)
        assert not st["reached"] and st["floor"] >= 0.9 - 1e-6
        assert st["why"].startswith("floored") and "adaptation decay rho" in st["why"]
        assert result.radii_after[f"layer{l}.time"] >= 0.9 - 1e-6
        assert torch.equal(stack[l].A.detach(), A_before[l])  # left alone, not degenerated
        depth = result.status[f"layer{l}.depth"]
        assert depth["reached"] and depth["floor"] is None, depth
    assert result.radii_before["layer1.depth"] < 0.1 < 0.45 < result.radii_after["layer1.depth"]


@pytest.mark.slow
def test_alif_stack_runs_to_radius_one():
    stack = _alif_stack()
    result = LSCPretrainer(stack, target=1.0, max_steps=60, batch_size=16, seq_len=10,
                           progress=False).run()
    assert set(result.status) == {"layer0.time", "layer0.depth", "layer1.time", "layer1.depth"}
    for name, st in result.status.items():
        after = result.radii_after[name]
        assert st["reached"] == (abs(after - 1.0) <= 0.1), (name, st, after)
        if st["reached"]:
            assert st["why"] == "", st
        else:  # an ALIF time floor is below 1: a miss can only be the budget's
            assert st["why"].startswith("not within tolerance"), st
    # time: the adaptation decay rho = exp(-1/200) is already within tolerance of 1
    assert result.radii_before["layer0.time"] == pytest.approx(math.exp(-1 / 200), abs=1e-6)
    # depth: from almost nothing (few neurons near threshold) to about 1; above the encoder
    # the radius passes through the lower layer's surrogate derivative and stays noisy
    assert result.radii_before["layer0.depth"] < 0.1 and result.radii_before["layer1.depth"] < 0.1
    assert abs(result.radii_after["layer0.depth"] - 1.0) < 0.1
    assert result.radii_after["layer1.depth"] > 0.5
