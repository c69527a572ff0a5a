"""Transition radii: exact vs matrix-free, the non-square rule, classic inits, model adapters."""

import numpy as np
import pytest
import torch
from torch import nn

from diagnostics import Driver, Transition, model_transitions, spectral_radius, transition_radii
from recurrent_params import LRU, DenseRNN, DiagonalRNN


def _batched_linear(s, A):  # row b: A_b s_b
    return torch.einsum("bij,bj->bi", A, s)


def _numpy_radius(A):
    return np.array([np.abs(np.linalg.eigvals(a)).max() for a in A])


@pytest.mark.parametrize("shape", [(6, 6), (5, 9), (9, 5), (40, 40), (70, 50)])
@pytest.mark.parametrize("method", ["exact", "matrix_free"])
def test_radius_matches_numpy_with_square_restriction(shape, method):
    m, n = shape
    A = torch.randn(4, m, n, dtype=torch.float64) / n**0.5
    point = torch.randn(4, n, dtype=torch.float64)
    got = spectral_radius(_batched_linear, point, (A,), method=method, tol=1e-10,
                          max_restarts=100, krylov_dim=30,
                          generator=torch.Generator().manual_seed(0))
    k = min(m, n)
    expected = _numpy_radius(A[:, :k, :k].numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7)


def test_matrix_free_gradient_equals_exact_gradient():
    torch.manual_seed(1)
    W = torch.randn(30, 30, dtype=torch.float64, requires_grad=True)
    point = torch.randn(3, 30, dtype=torch.float64)

    def fn(s):
        return torch.tanh(s @ W.T)

    grads = []
    for method in ("exact", "matrix_free"):
        W.grad = None
        r = spectral_radius(fn, point, method=method, krylov_dim=30)
        r.sum().backward()
        grads.append(W.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-9)


def test_exact_gradient_matches_finite_differences():
    torch.manual_seed(2)
    W = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    point = torch.randn(2, 5, dtype=torch.float64)
    E = torch.randn(5, 5, dtype=torch.float64)

    def radius(w):
        return spectral_radius(lambda s: torch.tanh(s @ w.T), point, method="exact").sum()

    radius(W).backward()
    h = 1e-6
    fd = (radius(W.detach() + h * E) - radius(W.detach() - h * E)) / (2 * h)
    torch.testing.assert_close((W.grad * E).sum(), fd, rtol=1e-5, atol=1e-8)


def test_orthogonal_linear_ffn_has_radius_one():
    net = nn.Sequential(*[nn.Linear(32, 32, bias=False) for _ in range(4)])
    for m in net:
        nn.init.orthogonal_(m.weight)
    for method in ("exact", "matrix_free"):
        radii = transition_radii(net, method=method, batch_size=4)
        assert list(radii) == ["linear0", "linear1", "linear2", "linear3"]
        for r in radii.values():
            assert r == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "init, act, expected",
    [("glorot", nn.Identity, 1.04), ("he", nn.ReLU, 1.05), ("orthogonal", nn.Identity, 1.000)],
)
def test_classic_ffn_initialisations_satisfy_lsc(init, act, expected):
    """REFERENCE section 3, width 128: Glorot+linear 1.04, He+ReLU 1.05, orthogonal exactly 1."""
    torch.manual_seed(0)
    n = 128
    layers = []
    for _ in range(10):
        lin = nn.Linear(n, n, bias=False)
        {"glorot": nn.init.xavier_normal_, "he": nn.init.kaiming_normal_,
         "orthogonal": nn.init.orthogonal_}[init](lin.weight)
        layers += [lin, act()]
    net = nn.Sequential(*layers).double()
    radii = transition_radii(net, batch_size=4, method="exact",
                             generator=torch.Generator().manual_seed(0))
    mean = sum(radii.values()) / len(radii)
    assert mean == pytest.approx(expected, abs=0.05 if init != "orthogonal" else 1e-6)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_rnn_transitions_follow_torch_cells(cls, batch_first):
    torch.manual_seed(0)
    rnn = cls(3, 5, num_layers=2, batch_first=batch_first).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    inputs = x if batch_first else x.transpose(0, 1)
    trans = {t.name: t for t in model_transitions(rnn, inputs)}
    assert set(trans) == {"layer0.time", "layer0.depth", "layer1.time", "layer1.depth"}
    cell_cls = {nn.RNN: nn.RNNCell, nn.GRU: nn.GRUCell, nn.LSTM: nn.LSTMCell}[cls]
    cell = cell_cls(5, 5).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(rnn, f"{name}_l1"))
    t = trans["layer1.time"]
    out = t.fn(t.point, *t.context)
    if cls is nn.LSTM:
        h, c = t.point.chunk(2, -1)
        h2, c2 = cell(t.context[0], (h, c))
        torch.testing.assert_close(out, torch.cat([h2, c2], -1))
        assert t.point.shape == (4, 10)
    else:
        torch.testing.assert_close(out, cell(t.context[0], t.point))
    # the states are those torch's own module reaches: the last step of layer 1 is its output
    y, _ = rnn(inputs)
    y = y if batch_first else y.transpose(0, 1)
    assert torch.isfinite(y).all()


def test_rnn_states_match_torch_forward():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    x = torch.randn(3, 7, 3, dtype=torch.float64)
    y, _ = rnn(x)
    gen = torch.Generator().manual_seed(5)
    trans = {t.name: t for t in model_transitions(rnn, x, gen)}
    # one time step for the whole batch, drawn first; the prefix runs through torch's kernel
    t_idx = int(torch.randint(0, 7, (1,), generator=torch.Generator().manual_seed(5)))
    depth = trans["layer1.depth"]  # point = h of layer 0 at t (the columns of c are zero)
    t = trans["layer1.time"]
    h_next = t.fn(t.point, *t.context)[:, :4]
    torch.testing.assert_close(h_next, y[:, t_idx])
    assert depth.point.shape == (3, 4)


def test_lstm_depth_radius_equals_the_reference_square_jacobian():
    """Reference: d[h, c]^l / d[h, c]^{l-1} (2w x 2w, zero c columns); ours: d[h,c]^l / dh^{l-1}
    restricted to its leading w x w block. Same spectral radius (float64, torch.func)."""
    torch.manual_seed(1)
    rnn = nn.LSTM(3, 5, num_layers=2, batch_first=True).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    depth = {t.name: t for t in model_transitions(rnn, x, torch.Generator().manual_seed(2))}[
        "layer1.depth"]
    h_below, prev = depth.point, depth.context[0]
    c_below = torch.randn_like(h_below)  # any c^{l-1}: the layer above never reads it

    def square(hc, prev_b):  # [h, c]^{l-1} -> [h, c]^l for one sample
        h = hc[:5]
        return depth.fn(h[None], prev_b[None])[0]

    ref = []
    for b in range(4):
        J = torch.func.jacrev(square)(torch.cat([h_below[b], c_below[b]]), prev[b])  # (10, 10)
        ref.append(torch.linalg.eigvals(J).abs().max())
    ours = spectral_radius(depth.fn, depth.point, depth.context, method="exact")
    torch.testing.assert_close(ours, torch.stack(ref))


def test_cell_stacks_with_mixing_layers_and_decoder():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Linear(2, 6), nn.LSTMCell(6, 8), nn.Tanh(), nn.GRUCell(8, 8),
                          nn.RNNCell(8, 8), nn.Linear(8, 3))
    radii = transition_radii(stack, batch_size=5, seq_len=4)
    assert list(radii) == ["layer0.time", "layer0.depth", "layer1.time", "layer1.depth",
                           "layer2.time", "layer2.depth", "decoder"]
    assert all(np.isfinite(list(radii.values())))


def test_package_cell_time_radius_is_max_abs_lam():
    torch.manual_seed(0)
    stack = nn.ModuleList([LRU(4, 6), DiagonalRNN(4, 5, 4, complex=False), DenseRNN(4, 7, 2)])
    stack = stack.double()
    radii = transition_radii(stack, batch_size=3, seq_len=5)
    for l in (0, 1):
        top = float(stack[l].lam.detach().abs().max())
        assert radii[f"layer{l}.time"] == pytest.approx(top, rel=1e-10)
    A = stack[2].A.detach().numpy()
    assert radii["layer2.time"] == pytest.approx(np.abs(np.linalg.eigvals(A)).max(), rel=1e-10)


def test_package_cell_depth_jacobian_is_gamma_B_C():
    """Depth from an LRU state to the next LRU state: d h^1 / d h^0 = B^1 (Re C^0 .) exactly."""
    torch.manual_seed(0)
    stack = nn.ModuleList([LRU(3, 4), LRU(3, 4)]).double()
    t = {t.name: t for t in model_transitions(stack, torch.randn(2, 5, 3, dtype=torch.float64))}
    d = t["layer1.depth"]
    jac = torch.func.jacrev(lambda u: d.fn(u, *d.context).sum(0))(d.point).permute(1, 0, 2)
    C0, B1 = stack[0].C, stack[1].B  # (3, 4) complex, (4, 3) complex (gamma included)
    dy = torch.cat([C0.real, -C0.imag], dim=1)  # y = Re(C h) w.r.t. [Re h, Im h]: (3, 8)
    dh = torch.cat([B1.real, B1.imag], dim=0)  # [Re, Im] of B y: (8, 3)
    torch.testing.assert_close(jac[0], (dh @ dy).detach())


def test_user_protocol_and_unsupported_model_error():
    class Custom(nn.Module):
        lsc_input_shape = (3,)

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.eye(3) * 0.5)

        def lsc_transitions(self, x):
            return [Transition("mine", lambda s: s @ self.w.T, x, (), (Driver(self, "w"),))]

    assert transition_radii(Custom(), batch_size=2) == {"mine": pytest.approx(0.5)}
    with pytest.raises(TypeError, match="lsc_transitions"):
        transition_radii(nn.Conv1d(2, 2, 3))
    with pytest.raises(ValueError, match="bidirectional"):
        transition_radii(nn.GRU(2, 3, bidirectional=True))


def test_ffn_with_leading_flatten_and_image_inputs():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 12, bias=False))
    nn.init.orthogonal_(net[1].weight)
    radii = transition_radii(net, torch.randn(5, 3, 4))
    assert radii == {"linear1": pytest.approx(1.0, abs=1e-5)}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["exact", "matrix_free"])
def test_16_bit_models_get_the_float32_radii_to_their_precision(dtype, method):
    """torch has no 16-bit eigendecomposition: the products run in 16 bits, the Jacobian or
    the Arnoldi basis is float32; the radii are the float32 model's to 16-bit rounding, and
    differentiable in the 16-bit weights."""
    torch.manual_seed(0)
    net = nn.LSTM(6, 24, 2, batch_first=True)
    x = torch.randn(8, 7, 6)
    ref = transition_radii(net, x, method=method, krylov_dim=24,
                           generator=torch.Generator().manual_seed(0))
    low = net.to(dtype)
    got = transition_radii(low, x.to(dtype), method=method, krylov_dim=24, as_tensors=True,
                           generator=torch.Generator().manual_seed(0))
    assert set(got) == set(ref)
    for name, r in got.items():
        assert r.dtype == torch.float32
        assert abs(float(r.detach()) - ref[name]) <= 0.05 * ref[name] + 1e-3, name
    sum(got.values()).backward()
    grads = [p.grad for p in low.parameters()]
    assert all(g is not None and g.dtype == dtype and bool(torch.isfinite(g).all())
               for g in grads)
    assert any(bool(g.abs().sum() > 0) for g in grads)
