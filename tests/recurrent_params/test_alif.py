"""ALIF: the equations against a float64 loop, step == sequence bit for bit, binary spikes,
refractory period, surrogate gradients against an independent autograd.Function, gradcheck of
the differentiable paths, stacks, torch.compile, devices and input errors."""

import copy
import math

import pytest
import torch
from torch import nn

from recurrent_params import ALIF, FastSigmoid, Triangular, assign_

DT = torch.float64


def _cell(refractory=0, surrogate="triangular", d_in=3, n=5, **kw):
    kw = {"alpha": torch.linspace(0.6, 0.9, n), "rho": torch.linspace(0.7, 0.97, n),
          "beta": torch.linspace(0.0, 2.0, n), "threshold": 0.7, **kw}
    return ALIF(d_in, n, refractory=refractory, surrogate=surrogate, input_gain=3.0, **kw)


def _ref_loop(cell, x, refractory):
    """The documented equations, one sample at a time, in plain float64 Python-level torch."""
    alpha, rho, beta, th = cell.alpha, cell.rho, cell.beta, cell.threshold
    B, L, _ = x.shape
    n = cell.d_hidden
    zs = torch.zeros(B, L, n, dtype=x.dtype)
    for b in range(B):
        v = torch.zeros(n, dtype=x.dtype)
        a = torch.zeros(n, dtype=x.dtype)
        r = torch.zeros(n, dtype=x.dtype)
        z = torch.zeros(n, dtype=x.dtype)
        for t in range(L):
            v = alpha * v + (1 - alpha) * (cell.B @ x[b, t] + cell.A @ z) - th * z
            a = rho * a + (1 - rho) * z
            if refractory:
                r = torch.where(z > 0, torch.full_like(r, refractory), (r - 1).clamp(min=0))
            z = ((v - th - beta * a) > 0).to(x.dtype) * (r == 0).to(x.dtype)
            zs[b, t] = z
    return zs, v, a, r


@pytest.mark.parametrize("refractory", [0, 2])
@pytest.mark.parametrize("surrogate", ["triangular", "fast_sigmoid"])
def test_sequence_matches_float64_loop_of_the_equations(refractory, surrogate):
    cell = _cell(refractory, surrogate).to(DT)
    x = torch.rand(3, 30, 3, dtype=DT)
    with torch.no_grad():
        z, s = cell(x)
    z_ref, v, a, r = _ref_loop(cell, x, refractory)
    assert 0.05 < z.mean() < 0.6  # the test exercises spikes, resets and adaptation
    torch.testing.assert_close(z, z_ref, rtol=0, atol=0)
    torch.testing.assert_close(s[-1, :5], v)
    torch.testing.assert_close(s[-1, 5:10], a)
    if refractory:
        torch.testing.assert_close(s[-1, 10:], r)


@pytest.mark.parametrize("refractory", [0, 3])
@pytest.mark.parametrize("dtype", [torch.float32, DT])
def test_step_mode_equals_sequence_mode_exactly(refractory, dtype):
    cell = _cell(refractory).to(dtype)
    x = torch.rand(4, 25, 3, dtype=dtype)
    z_seq, s_seq = cell(x)
    s = None
    zs = []
    for t in range(x.shape[1]):
        z_t, s = cell.step(x[:, t].contiguous(), s)
        zs.append(z_t)
    assert torch.equal(torch.stack(zs, 1), z_seq)
    assert torch.equal(s, s_seq)
    # streaming: two halves carry the state exactly
    z1, s1 = cell(x[:, :11])
    z2, s2 = cell(x[:, 11:], s1)
    assert torch.equal(torch.cat([z1, z2], 1), z_seq) and torch.equal(s2, s_seq)


def test_spikes_are_exactly_binary_and_state_shapes():
    cell = _cell()
    z, s = cell(torch.rand(8, 40, 3))
    assert z.shape == (8, 40, 5) and s.shape == (8, 10) and cell.d_state == 10
    assert set(z.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(cell.spikes(s), z[:, -1])
    assert _cell(refractory=1).d_state == 15


def test_refractory_period_spacing_closed_form():
    # a neuron driven far above threshold spikes whenever it may: every n_ref + 1 steps
    for n_ref in (1, 2, 4):
        cell = ALIF(1, 1, alpha=0.5, rho=0.5, beta=0.0, refractory=n_ref)
        assign_(cell, "B", torch.tensor([[100.0]]))
        assign_(cell, "A", torch.tensor([[0.0]]))
        z, _ = cell(torch.ones(1, 12, 1))
        expected = torch.tensor([float(t % (n_ref + 1) == 0) for t in range(12)])
        torch.testing.assert_close(z[0, :, 0].detach(), expected)


def test_adaptation_raises_the_threshold_by_beta_one_minus_rho_per_spike():
    cell = ALIF(1, 1, alpha=0.5, rho=0.8, beta=2.0, threshold=1.0)
    assign_(cell, "B", torch.tensor([[10.0]]))
    assign_(cell, "A", torch.tensor([[0.0]]))
    _, s1 = cell(torch.ones(1, 1, 1))  # spikes at step 0
    _, s2 = cell(torch.ones(1, 2, 1))
    v, a, _ = cell.split_state(s2)
    torch.testing.assert_close(a, torch.tensor([[0.2]]))  # (1 - rho) * z
    torch.testing.assert_close(v, torch.tensor([[0.5 * 5.0 + 0.5 * 10.0 - 1.0]]))  # reset by 1
    assert s1.shape == (1, 2)


# -- surrogate gradients -----------------------------------------------------------------------


class _RefSpike(torch.autograd.Function):
    """An independent spike: Heaviside forward, a hand-written pseudo-derivative backward."""

    @staticmethod
    def forward(ctx, u, kind, k, g):
        ctx.save_for_backward(u)
        ctx.kind, ctx.k, ctx.g = kind, k, g
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        if ctx.kind == "triangular":
            psi = ctx.g * torch.clamp(1 - ctx.k * u.abs(), min=0)
        else:
            psi = ctx.g / (1 + ctx.k * u.abs()) ** 2
        return grad * psi, None, None, None


@pytest.mark.parametrize("cls, formula", [
    (Triangular, lambda u, k, g: g * max(0.0, 1 - k * abs(u))),
    (FastSigmoid, lambda u, k, g: g / (1 + k * abs(u)) ** 2),
])
@pytest.mark.parametrize("k, g", [(1.0, 0.3), (4.0, 1.0), (0.5, 0.05)])
def test_surrogate_derivative_is_its_formula_in_every_ad_mode(cls, formula, k, g):
    sur = cls(sharpness=k, dampening=g)
    u = torch.linspace(-3, 3, 121, dtype=DT)
    expected = torch.tensor([formula(float(ui), k, g) for ui in u], dtype=DT)
    torch.testing.assert_close(sur.derivative(u), expected)
    uu = u.clone().requires_grad_()
    z = sur(uu)
    assert torch.equal(z.detach(), (u > 0).to(DT))  # exact Heaviside forward
    torch.testing.assert_close(torch.autograd.grad(z.sum(), uu)[0], expected)  # reverse
    _, tangent = torch.func.jvp(sur, (u,), (torch.ones_like(u),))  # forward mode
    torch.testing.assert_close(tangent, expected)
    jac = torch.func.jacrev(sur)(u)  # torch.func, through vmap
    torch.testing.assert_close(jac, torch.diag(expected))
    # the primitive is smooth and its derivative is psi (float64 finite differences)
    away = u[(k * u.abs() - 1).abs() > 1e-3][::7].clone().requires_grad_()
    assert torch.autograd.gradcheck(sur.primitive, (away,))
    assert float(sur.primitive(torch.zeros((), dtype=DT))) == 0.0


def test_surrogate_shape_parameters():
    tri, fs = Triangular(sharpness=2.0, dampening=0.5), FastSigmoid(sharpness=2.0, dampening=0.5)
    zero = torch.zeros(1)
    assert float(tri.derivative(zero)) == 0.5 == float(fs.derivative(zero))  # height gamma
    assert float(tri.derivative(torch.tensor([0.5]))) == 0.0  # support |u| < 1/k
    half = (math.sqrt(2) - 1) / 2.0  # fast sigmoid: half height at (sqrt 2 - 1)/k
    torch.testing.assert_close(fs.derivative(torch.tensor([half])), torch.tensor([0.25]))
    # areas gamma/k and 2 gamma/k from the primitives
    torch.testing.assert_close(tri.primitive(torch.tensor(1e3)) - tri.primitive(torch.tensor(-1e3)),
                               torch.tensor(0.25))
    big = torch.tensor(1e7, dtype=DT)
    torch.testing.assert_close(fs.primitive(big) - fs.primitive(-big),
                               torch.tensor(0.5, dtype=DT), atol=1e-6, rtol=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sharpness"):
            Triangular(sharpness=bad)
        with pytest.raises(ValueError, match="dampening"):
            FastSigmoid(dampening=bad)


@pytest.mark.parametrize("refractory", [0, 2])
@pytest.mark.parametrize("surrogate", ["triangular", "fast_sigmoid"])
def test_surrogate_gradients_reach_the_input_and_match_an_independent_bptt(refractory,
                                                                            surrogate):
    cell = _cell(refractory, surrogate).to(DT)
    x = torch.rand(2, 20, 3, dtype=DT, requires_grad=True)
    w = torch.randn(2, 20, 5, dtype=DT)
    z, s = cell(x)
    loss = (w * z).sum() + s.square().sum()
    gx, gA, gB = torch.autograd.grad(loss, (x, cell.A, cell.B))
    assert gx.abs().sum() > 0 and gx[:, 0].abs().sum() > 0  # reaches the first input step

    # independent BPTT: the equations with a custom autograd.Function for the spike
    xr = x.detach().clone().requires_grad_()
    A = cell.A.detach().clone().requires_grad_()
    B = cell.B.detach().clone().requires_grad_()
    alpha, rho, beta, th = cell.alpha, cell.rho, cell.beta, cell.threshold
    k, g = cell.surrogate.sharpness, cell.surrogate.dampening
    v = torch.zeros(2, 5, dtype=DT)
    a = torch.zeros_like(v)
    r = torch.zeros_like(v)

    def spike(v, a, r):
        return _RefSpike.apply((v - th - beta * a) / th, surrogate, k, g) * (r == 0).to(DT)

    zs = []
    for t in range(20):
        z_prev = spike(v, a, r)
        v = alpha * v + (1 - alpha) * (xr[:, t] @ B.T + z_prev @ A.T) - th * z_prev
        a = rho * a + (1 - rho) * z_prev
        if refractory:
            r = torch.where(z_prev > 0, torch.full_like(r, refractory), (r - 1).clamp(min=0))
        zs.append(spike(v, a, r))
    state = torch.cat([v, a] + ([r] if refractory else []), -1)
    loss_ref = (w * torch.stack(zs, 1)).sum() + state.square().sum()
    refs = torch.autograd.grad(loss_ref, (xr, A, B))
    for got, ref in zip((gx, gA, gB), refs):
        torch.testing.assert_close(got, ref)


def test_gradcheck_of_the_differentiable_paths():
    # With a very sharp surrogate no neuron is inside its support, so the gradient is that of
    # the membrane / adaptation / reset equations with the (exact) spikes held fixed, which
    # finite differences see too.
    torch.manual_seed(3)
    cell = _cell(surrogate=Triangular(sharpness=1e6)).to(DT)
    x = 2 * torch.rand(2, 12, 3, dtype=DT)
    with torch.no_grad():
        z, _ = cell(x)
        states = []
        s = None
        for t in range(12):
            _, s = cell.step(x[:, t], s)
            states.append(cell.scaled_distance(s))
    assert z.sum() > 3  # spikes, resets and recurrent input are exercised
    assert torch.stack(states).abs().min() > 1e-4  # finite differences never flip a spike
    A0, B0 = cell.A.detach().clone(), cell.B.detach().clone()

    def functional(x, A, B):
        return torch.func.functional_call(cell, {"A": A, "B": B}, (x,))

    x.requires_grad_()
    A = A0.clone().requires_grad_()
    B = B0.clone().requires_grad_()
    assert torch.autograd.gradcheck(functional, (x, A, B), eps=1e-7, atol=1e-6)


# -- modules, devices, compile ------------------------------------------------------------------


def test_in_a_sequential_stack_with_other_modules():
    from diagnostics import model_transitions

    stack = nn.Sequential(nn.Linear(4, 6), ALIF(6, 8), nn.Dropout(0.0), ALIF(8, 8),
                          nn.Linear(8, 2))
    names = [t.name for t in model_transitions(stack, torch.rand(3, 10, 4))]
    assert names == ["layer0.time", "layer0.depth", "layer1.time", "layer1.depth", "decoder"]


def test_state_dict_deepcopy_and_dtype_moves():
    cell = _cell(refractory=2)
    x = torch.rand(2, 9, 3)
    z, s = cell(x)
    other = _cell(refractory=2)
    other.load_state_dict(cell.state_dict())
    assert torch.equal(other(x)[0], z)
    assert torch.equal(copy.deepcopy(cell)(x)[1], s)
    d = copy.deepcopy(cell).double()
    assert d.alpha.dtype == DT and d.initial_state(2).dtype == DT
    z64, _ = d(x.double())
    assert z64.dtype == DT
    assert "refractory=2" in repr(cell) and "Triangular" in repr(cell)


def test_on_device(device):
    cell = _cell(refractory=1).to(device)
    x = torch.rand(2, 15, 3, device=device)
    z, s = cell(x)
    zc = _cell(refractory=1).cpu()
    zc.load_state_dict({k: v.cpu() for k, v in cell.state_dict().items()})
    z_cpu, _ = zc(x.cpu())
    assert z.device.type == device.type and s.device.type == device.type
    assert torch.equal(z.cpu(), z_cpu)  # binary spikes agree across devices at this size
    z.sum().backward()
    assert cell.B.grad is not None and cell.B.grad.device.type == device.type


@pytest.mark.slow
def test_torch_compile_matches_eager(device):
    cell = _cell(refractory=1).to(device)
    x = torch.rand(2, 4, 3, device=device)
    z, s = cell(x)
    compiled = torch.compile(cell)  # inductor
    zc, sc = compiled(x)
    assert torch.equal(zc, z)
    torch.testing.assert_close(sc, s)
    weights = torch.arange(5.0, device=device)
    xg = x.clone().requires_grad_()
    (compiled(xg)[0] * weights).sum().backward()
    xe = x.clone().requires_grad_()
    (cell(xe)[0] * weights).sum().backward()
    assert xe.grad.abs().sum() > 0
    torch.testing.assert_close(xg.grad, xe.grad)


# -- errors ------------------------------------------------------------------------------------


def test_input_errors():
    cell = ALIF(3, 4)
    with pytest.raises(ValueError, match=r"\(batch, length, 3\)"):
        cell(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        cell.step(torch.zeros(2, 5, 3))
    with pytest.raises(TypeError, match="dtype"):
        cell(torch.zeros(2, 5, 3, dtype=DT))
    with pytest.raises(ValueError, match="NaN"):
        cell(torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        cell.step(torch.zeros(2, 3), torch.full((2, 8), float("inf")))
    with pytest.raises(ValueError, match=r"state of shape \(2, 8\)"):
        cell(torch.zeros(2, 5, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="length >= 1"):
        cell(torch.zeros(2, 0, 3))


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"alpha": torch.tensor([0.5, 0.5, 1.2, 0.5])}, "alpha"), ({"rho": -0.1}, "rho"),
    ({"rho": 1.5}, "rho"), ({"beta": -1.0}, "beta"), ({"alpha": torch.ones(3) * 0.5}, "shape"),
    ({"threshold": 0.0}, "threshold"), ({"threshold": float("inf")}, "threshold"),
    ({"refractory": -1}, "refractory"), ({"refractory": 1.5}, "refractory"),
    ({"surrogate": "sigmoid"}, "surrogate"), ({"sharpness": 0.0}, "sharpness"),
    ({"input_gain": -1.0}, "input_gain"),
])
def test_invalid_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ALIF(3, 4, **kwargs)


def test_invalid_sizes_and_surrogate_type():
    with pytest.raises(ValueError, match="d_hidden"):
        ALIF(3, 0)
    with pytest.raises(ValueError, match="d_input"):
        ALIF(2.5, 4)
    with pytest.raises(TypeError, match="surrogate"):
        ALIF(3, 4, surrogate=3)
