"""LSC pre-trainer reliability (issue 21): frozen tensors stay bit-identical, every option is
checked at construction, checkpoints and batches are checked with clear messages, half-precision
models are measured in float32, NaN is refused before LAPACK."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from diagnostics import Driver
from optim import LSCPretrainer
from optim.lsc import LSCOptions, rescale_, shuffle_
from optim.lsc.frozen import driver_tensors, is_frozen
from recurrent_params import LRU

FAST = dict(progress=False, max_steps=3, batch_size=8, seq_len=5)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _assert_frozen_kept(before, model, frozen_names):
    after = dict(model.named_parameters())
    for name in frozen_names:
        assert torch.equal(before[name], after[name].detach()), name  # bit-identical


def _moved(before, model, name) -> bool:
    return not torch.equal(before[name], dict(model.named_parameters())[name].detach())


def _run_paused_then_finished(pre, before, frozen):
    """Two steps (a pause keeps the current weights, so the free drivers have moved), then the
    rest of the run (which restores the best weights); the frozen tensors never change."""
    pre.run(num_steps=2)
    _assert_frozen_kept(before, pre.model, frozen)
    moved = {k for k in before if _moved(before, pre.model, k)}
    result = pre.run()
    _assert_frozen_kept(before, pre.model, frozen)
    return result, moved


# -- frozen tensors ---------------------------------------------------------------------------


@pytest.mark.parametrize("grad_step", [True, False])
def test_ffn_frozen_kernel_is_bit_identical(grad_step):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
    m[0].weight.requires_grad_(False)
    before = _snapshot(m)
    pre = LSCPretrainer(m, shuffle_every=1, grad_step=grad_step, **FAST)
    result, moved = _run_paused_then_finished(pre, before, ["0.weight"])
    assert "2.weight" in moved  # the free kernel is pre-trained
    assert result.frozen == ["0.weight"]
    assert result.status["linear0"]["driven"] is False
    assert result.status["linear0"]["why"].startswith("not driven")
    assert result.status["linear2"]["driven"] is True
    text = repr(result)
    assert "not driven (frozen drivers)" in text and "frozen, left alone: 0.weight" in text
    assert "NOT reached" not in text.splitlines()[2]  # linear0's row: not driven, not failing
    # the frozen transition leaves the loss: the history's loss is that of linear2 alone
    h = result.history[0]
    assert h["loss"] == pytest.approx((h["radii"]["linear2"] - 1.0) ** 2, rel=1e-5)


@pytest.mark.filterwarnings("ignore:LSC.*floor:RuntimeWarning")  # layer1.time: forget gates
def test_lstm_frozen_recurrent_kernel_is_bit_identical():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 6, num_layers=2, batch_first=True)
    lstm.weight_hh_l0.requires_grad_(False)
    before = _snapshot(lstm)
    pre = LSCPretrainer(lstm, shuffle_every=1, **FAST)
    in_optimizer = {id(p) for g in pre.optimizer.param_groups for p in g["params"]}
    assert id(lstm.weight_hh_l0) not in in_optimizer
    result, moved = _run_paused_then_finished(pre, before, ["weight_hh_l0"])
    assert {"weight_hh_l1", "weight_ih_l0", "weight_ih_l1"} <= moved
    assert result.frozen == ["weight_hh_l0"]
    assert result.status["layer0.time"]["driven"] is False
    assert all(result.status[k]["driven"] for k in result.status if k != "layer0.time")


def test_user_optimizer_over_frozen_tensors_does_not_move_them():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6))
    m[2].weight.requires_grad_(False)
    before = _snapshot(m)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=0.1)  # the frozen one included
    LSCPretrainer(m, optimizer=opt, shuffle_every=1, **FAST).run()
    _assert_frozen_kept(before, m, ["2.weight"])


def test_cell_stack_frozen_parametrized_drivers_are_bit_identical():
    torch.manual_seed(0)
    stack = nn.Sequential(LRU(4, 6), nn.GELU(), LRU(4, 6))
    stack[0].parametrizations.B.requires_grad_(False)  # the stored originals of B
    stack[2].parametrizations.lam.requires_grad_(False)
    frozen = [n for n, p in stack.named_parameters() if not p.requires_grad]
    assert frozen  # the originals behind the parametrizations
    before = _snapshot(stack)
    pre = LSCPretrainer(stack, shuffle_every=1, **FAST)
    result, moved = _run_paused_then_finished(pre, before, frozen)
    assert "0.parametrizations.lam.original0" in moved
    assert result.frozen == ["0.B", "2.lam"]
    assert result.status["layer0.depth"]["driven"] is False
    assert result.status["layer1.time"]["driven"] is False
    assert result.status["layer0.time"]["driven"] is True


def test_rescale_and_shuffle_leave_a_frozen_driver_alone():
    lin = nn.Linear(3, 3)
    lin.weight.requires_grad_(False)
    w = lin.weight.detach().clone()
    d = Driver(lin, "weight")
    assert is_frozen(d) and driver_tensors(d) == [lin.weight]
    rescale_(d, 2.0)
    assert shuffle_(d, torch.Generator().manual_seed(0)) is None
    assert torch.equal(lin.weight, w)
    buf = nn.Module()
    buf.register_buffer("A", torch.eye(2))
    assert is_frozen(Driver(buf, "A"))  # a buffer does not require grad: never moved


@pytest.mark.parametrize("grad_step", [True, False])
def test_all_frozen_model_is_refused(grad_step):
    m = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)).requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter of Sequential is frozen"):
        LSCPretrainer(m, grad_step=grad_step, **FAST)


def test_all_drivers_frozen_is_refused_and_nothing_moves():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    m[0].weight.requires_grad_(False)
    m[2].weight.requires_grad_(False)  # the biases still require grad
    before = _snapshot(m)
    with pytest.raises(ValueError, match=r"every driver of every transition is frozen.*"
                                         r"0\.weight.*2\.weight"):
        LSCPretrainer(m, **FAST).run()
    _assert_frozen_kept(before, m, list(before))


def test_model_without_parameters_is_refused():
    with pytest.raises(ValueError, match="has no parameters"):
        LSCPretrainer(nn.Sequential(), **FAST)


# -- options ----------------------------------------------------------------------------------

BAD_OPTIONS = [
    ("tolerance", -1.0, ValueError), ("tolerance", math.nan, ValueError),
    ("tolerance", 0.0, ValueError), ("target", math.inf, ValueError),
    ("target", -0.5, ValueError), ("target", "balanced", ValueError),
    ("target", {"linear0": math.inf}, ValueError), ("max_steps", -1, ValueError),
    ("max_steps", 1.5, TypeError), ("max_steps", True, TypeError),
    ("batch_size", 0, ValueError), ("seq_len", 0, ValueError), ("patience", 0, ValueError),
    ("shuffle", 1.5, ValueError), ("shuffle", math.nan, ValueError),
    ("shuffle_every", 0, ValueError), ("clip", (1.2, 1.5), ValueError),
    ("clip", (0.5,), TypeError), ("lr", -1e-3, ValueError), ("lr", math.inf, ValueError),
    ("weight_decay", -1.0, ValueError), ("lookahead", (0, 0.5), ValueError),
    ("lookahead", (6, 2.0), ValueError), ("lookahead", (6,), TypeError),
    ("saturation_threshold", 0.0, ValueError), ("method", "eig", ValueError),
    ("max_exact", -1, ValueError), ("krylov_dim", 0, ValueError),
    ("max_restarts", 0, ValueError), ("max_magnitude", 1.5, ValueError),
    ("max_magnitude", 0.0, ValueError), ("seed", -1, ValueError), ("seed", 0.5, TypeError),
    ("grad_step", "yes", TypeError), ("progress", 2, TypeError),
    ("input_shape", (0, 3), ValueError), ("input_shape", 3, TypeError),
]


@pytest.mark.parametrize("name,value,error", BAD_OPTIONS,
                         ids=[f"{n}={v!r}" for n, v, _ in BAD_OPTIONS])
def test_every_option_is_checked_at_construction(name, value, error):
    with pytest.raises(error, match=rf"LSCOptions\.{name.split()[0]}"):
        LSCOptions(**{name: value})
    with pytest.raises(error, match=rf"LSCOptions\.{name.split()[0]}"):
        LSCPretrainer(nn.Sequential(nn.Linear(2, 2)), **{name: value})


def test_options_normalise_numpy_and_integral_values():
    opts = LSCOptions(max_steps=np.int64(7), tolerance=np.float32(0.25), lookahead=[3, 0.5],
                      target={"linear0": 2}, grad_step=np.bool_(False), input_shape=[4])
    assert opts.max_steps == 7 and type(opts.max_steps) is int
    assert opts.tolerance == 0.25 and opts.lookahead == (3, 0.5)
    assert opts.target == {"linear0": 2.0} and opts.grad_step is False
    assert opts.input_shape == (4,)


def test_max_steps_zero_only_measures():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    before = _snapshot(m)
    result = LSCPretrainer(m, progress=False, max_steps=0).run()
    assert result.steps == 0 and not result.converged and result.history == []
    assert result.reason.startswith("max_steps=0")
    assert set(result.radii_before) == set(result.radii_after) == {"linear0", "linear2"}
    _assert_frozen_kept(before, m, list(before))


# -- checkpoints, batches ---------------------------------------------------------------------


def test_bad_checkpoint_names_the_missing_keys():
    pre = LSCPretrainer(nn.Sequential(nn.Linear(2, 2)), **FAST)
    with pytest.raises(ValueError, match=r"misses the keys \['model', 'best_state'"):
        pre.load_state_dict({"x": 1})
    with pytest.raises(TypeError, match="expects the dict of LSCPretrainer.state_dict"):
        pre.load_state_dict([1, 2])
    state = pre.state_dict()  # a real checkpoint still loads
    pre.load_state_dict(state)


def test_empty_and_misshapen_batches_name_the_expected_shape():
    lstm = nn.LSTM(3, 4, batch_first=False)
    with pytest.raises(ValueError, match=r"takes batches \(T, B, 3\) \(batch_first=False\)"):
        LSCPretrainer(lstm, torch.randn(5, 2, 2), **FAST).run()
    with pytest.raises(ValueError, match="has no sample"):
        LSCPretrainer(lstm, torch.randn(5, 0, 3), **FAST).run()
    with pytest.raises(ValueError, match="inputs is an empty list"):
        LSCPretrainer(lstm, [], **FAST)
    # a feed-forward network with a leading Flatten is not second-guessed: its own error names
    # the feature size
    flat = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    result = LSCPretrainer(flat, torch.randn(4, 2, 3), **FAST).run()
    assert set(result.radii_after) == {"linear1"}


# -- half precision, NaN ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_model_is_measured_in_float32(dtype):
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
    half = copy.deepcopy(ref).to(dtype)
    ref.to(dtype).float()  # the same (rounded) weights in float32
    r32 = LSCPretrainer(ref, progress=False, max_steps=0).run().radii_before
    r16 = LSCPretrainer(half, progress=False, max_steps=0).run().radii_before
    for k in r32:  # half-precision rounding of the inputs and the Jacobian only
        assert r16[k] == pytest.approx(r32[k], rel=3e-2), k
    # pre-training follows the float32 run of the same weights (no gradient step: the same
    # factors, shuffles and batches), within half-precision rounding
    h32 = LSCPretrainer(ref, progress=False, max_steps=8, grad_step=False).run().history
    h16 = LSCPretrainer(half, progress=False, max_steps=8, grad_step=False).run().history
    assert all(p.dtype == dtype for p in half.parameters())
    for a, b in zip(h32, h16, strict=True):
        for k in a["radii"]:
            assert b["radii"][k] == pytest.approx(a["radii"][k], rel=5e-2), (a["step"], k)


def test_float16_gradient_steps_stay_finite():
    """AdaBelief's eps=1e-16 is 0 in float16: the default optimiser then uses 2**-14."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh()).half()
    pre = LSCPretrainer(m, progress=False, max_steps=8)
    assert pre.optimizer.optimizer.defaults["eps"] == 2.0**-14
    result = pre.run()
    assert result.steps == 8
    assert all(bool(torch.isfinite(p).all()) and p.dtype == torch.float16
               for p in m.parameters())


def test_nan_input_or_weight_raises_before_lapack_and_moves_nothing():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    before = _snapshot(m)
    x = torch.randn(8, 4)
    x[3, 1] = math.nan
    with pytest.raises(FloatingPointError, match="an input batch contains NaN or inf"):
        LSCPretrainer(m, x, **FAST).run()
    _assert_frozen_kept(before, m, list(before))
    with torch.no_grad():
        m[2].weight[0, 0] = math.inf
    with pytest.raises(FloatingPointError, match="parameter '2.weight'.*NaN or inf"):
        LSCPretrainer(m, **FAST).run()
