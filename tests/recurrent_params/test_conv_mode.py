"""Convolution mode (``mode="fft"``) of the linear time-invariant cells: agreement with the
scan and the step mode in float64 (outputs, last state, every parameter's gradient, through
the parametrizations), ``torch.func`` (functional_call, vmap over stacked models, grad) and
errors for bad modes."""

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from recurrent_params import LRU, S4D, DenseRNN, DiagonalRNN, ExpMag, assign_
from recurrent_params.cells._conv import causal_conv, doubling_powers

D_IN, N, D_OUT = 3, 6, 2
TOL = dict(rtol=1e-10, atol=1e-12)


def _diag_expmag():
    cell = DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, r_max=0.99, normalization="iid")
    parametrize.register_parametrization(cell, "lam", ExpMag())
    return cell


def _diag_real_signs():
    # negative and zero eigenvalues: no logarithm is taken, the powers stay exact
    cell = DiagonalRNN(D_IN, N, D_OUT, complex=False)
    assign_(cell, "lam", torch.tensor([-0.9, -0.5, 0.0, 0.3, 0.8, 0.999]))
    return cell


def _dense_unit():
    cell = DenseRNN(D_IN, N, D_OUT)
    with torch.no_grad():  # spectral radius exactly 0.999: the long-memory regime
        cell.A.mul_(0.999 / torch.linalg.eigvals(cell.A).abs().max())
    return cell


CELLS = {
    "dense": lambda: DenseRNN(D_IN, N, D_OUT),
    "dense-radius-0.999": _dense_unit,
    "diag-real": lambda: DiagonalRNN(D_IN, N, D_OUT, complex=False, r_min=0.5),
    "diag-real-signs": _diag_real_signs,
    "diag-complex-iid": lambda: DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, normalization="iid"),
    "diag-complex-learned": lambda: DiagonalRNN(D_IN, N, D_OUT, normalization="learned"),
    "diag-expmag-iid": _diag_expmag,
    "diag-real-expmag-learned": lambda: _real_expmag_learned(),
    "lru": lambda: LRU(D_IN, N, r_min=0.9, r_max=0.999),
    "lru-plain": lambda: LRU(D_IN, N, parametrization=None, normalization=None),
    "lru-1d": lambda: LRU(1, N, r_min=0.99),
    "s4d": lambda: S4D(D_IN, 3),
}


def _real_expmag_learned():
    cell = DiagonalRNN(D_IN, N, D_OUT, complex=False, r_min=0.5, normalization="learned")
    parametrize.register_parametrization(cell, "lam", ExpMag())
    return cell


@pytest.fixture(params=sorted(CELLS))
def cell(request):
    torch.manual_seed(0)
    return CELLS[request.param]().double()


def _run(cell, mode, x, h0):
    cell.mode = mode
    return cell(x, h0)


def _steps(cell, x, h0):
    state = cell.initial_state(x.shape[0]) if h0 is None else h0
    ys = []
    for x_t in x.unbind(1):
        y_t, state = cell.step(x_t, state)
        ys.append(y_t)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("L", [1, 2, 37, 300])
@pytest.mark.parametrize("with_h0", [False, True])
def test_fft_equals_scan_and_step(cell, L, with_h0):
    x = torch.randn(4, L, cell.d_input, dtype=torch.float64)
    h0 = torch.randn(4, cell.d_state, dtype=cell.state_dtype) if with_h0 else None
    with torch.no_grad():
        y_fft, h_fft = _run(cell, "fft", x, h0)
        y_scan, h_scan = _run(cell, "scan", x, h0)
        y_step, h_step = _steps(cell, x, h0)
    assert y_fft.shape == (4, L, cell.d_output) and h_fft.shape == (4, cell.d_state)
    assert h_fft.dtype == cell.state_dtype
    for y, h in ((y_scan, h_scan), (y_step, h_step)):
        torch.testing.assert_close(y_fft, y, **TOL)
        torch.testing.assert_close(h_fft, h, **TOL)


def _grads(cell, mode, x, h0):
    cell.zero_grad(set_to_none=True)
    cell.mode = mode
    x = x.clone().requires_grad_()
    h0 = None if h0 is None else h0.clone().requires_grad_()
    y, h = cell(x, h0)
    w = torch.linspace(-1, 1, y.shape[1], dtype=y.dtype)[:, None]
    loss = (w * y).square().sum() + (h * torch.arange(1.0, h.shape[1] + 1)).abs().square().sum()
    loss.backward()
    out = {name: p.grad for name, p in cell.named_parameters()}
    out["x"] = x.grad
    if h0 is not None:
        out["h0"] = h0.grad
    return out


@pytest.mark.parametrize("with_h0", [False, True])
def test_gradients_of_every_parameter_agree(cell, with_h0):
    x = torch.randn(3, 41, cell.d_input, dtype=torch.float64)
    h0 = torch.randn(3, cell.d_state, dtype=cell.state_dtype) if with_h0 else None
    g_fft = _grads(cell, "fft", x, h0)
    g_scan = _grads(cell, "scan", x, h0)
    assert set(g_fft) == set(g_scan)
    names = {n for n, _ in cell.named_parameters()}
    if isinstance(cell, LRU) and cell.normalization == "learned":
        assert any("gamma_log" in n for n in names)  # the learned gamma is among them
    for name in g_fft:
        assert g_fft[name] is not None, name
        assert torch.isfinite(g_fft[name]).all(), name
        torch.testing.assert_close(g_fft[name], g_scan[name], **TOL, msg=name)


@pytest.mark.parametrize("make", [lambda: LRU(2, 3, r_min=0.5), lambda: DenseRNN(2, 3, 2)])
def test_gradcheck_fft_mode(make):
    torch.manual_seed(1)
    cell = make().double()
    cell.mode = "fft"
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, cell.d_state, dtype=cell.state_dtype, requires_grad=True)

    def last(x, h):
        h = cell(x, h)[1]
        return torch.view_as_real(h) if h.is_complex() else h

    assert torch.autograd.gradcheck(lambda x, h: cell(x, h)[0], (x, h0))
    assert torch.autograd.gradcheck(last, (x, h0))


def test_float32_agreement_long_memory():
    torch.manual_seed(0)
    cell = LRU(1, 64, r_min=0.99)  # the teacher-student student, float32
    x = torch.randn(8, 300, 1)
    y_scan, h_scan = _run(cell, "scan", x, None)
    y_fft, h_fft = _run(cell, "fft", x, None)
    torch.testing.assert_close(y_fft, y_scan, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h_fft, h_scan, rtol=1e-4, atol=1e-4)


def test_causal_conv_against_direct_sum():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    K = torch.randn(9, 4, 3, dtype=torch.float64)
    ref = torch.stack(
        [sum(x[:, t - k] @ K[k].T for k in range(t + 1)) for t in range(9)], 1
    )  # (2, 9, 4)
    torch.testing.assert_close(causal_conv(x, K), ref, **TOL)
    Kd = torch.randn(9, 3, dtype=torch.float64)
    ref_d = torch.stack([sum(x[:, t - k] * Kd[k] for k in range(t + 1)) for t in range(9)], 1)
    torch.testing.assert_close(causal_conv(x, Kd), ref_d, **TOL)
    with pytest.raises(ValueError, match="kernel of length 9"):
        causal_conv(x, K[:5])


def test_doubling_powers_are_matrix_powers():
    A = torch.randn(4, 4, dtype=torch.float64) / 2
    X = torch.randn(4, 2, dtype=torch.float64)
    for n in (1, 2, 3, 8, 13):
        P = doubling_powers(X, A, n, torch.matmul)
        ref = torch.stack([torch.linalg.matrix_power(A, k) @ X for k in range(n)])
        torch.testing.assert_close(P, ref, **TOL)


@pytest.mark.parametrize("make", [lambda: LRU(1, 8, r_min=0.9), lambda: DenseRNN(1, 8, 1)])
def test_vmap_over_stacked_models_equals_separate_calls(make):
    torch.manual_seed(0)
    models = [make().double() for _ in range(3)]
    for m in models:
        m.mode = "fft"
    # torch.func.stack_module_state refuses parametrized modules (parametrize makes one class
    # per instance), so stack the named parameters by hand
    named = [dict(m.named_parameters()) for m in models]
    params = {k: torch.stack([p[k].detach() for p in named]) for k in named[0]}
    buffers = {}
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.randn(3, 5, 40, 1, dtype=torch.float64)  # one batch per model
    h0 = torch.randn(3, 5, models[0].d_state, dtype=models[0].state_dtype)

    def f(p, b, x, h0):
        return torch.func.functional_call(base, (p, b), (x, h0))

    y, h = torch.func.vmap(f)(params, buffers, x, h0)
    for i, m in enumerate(models):
        y_i, h_i = m(x[i], h0[i])
        torch.testing.assert_close(y[i], y_i, **TOL)
        torch.testing.assert_close(h[i], h_i, **TOL)

    def loss(p, b, x):
        y, _ = torch.func.functional_call(base, (p, b), (x,))
        return 0.5 * y.square().mean()

    grads = torch.func.vmap(torch.func.grad(loss))(params, buffers, x)
    for i, m in enumerate(models):
        m.zero_grad()
        loss({k: v for k, v in m.named_parameters()}, {}, x[i]).backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[name][i], p.grad, **TOL, msg=name)


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: DenseRNN(2, 3, 2, **kw),
        lambda **kw: DiagonalRNN(2, 3, 2, **kw),
        lambda **kw: LRU(2, 3, **kw),
        lambda **kw: S4D(2, 3, **kw),
    ],
)
def test_bad_mode_is_a_clear_error(make):
    name = type(make()).__name__.removeprefix("Parametrized")
    with pytest.raises(ValueError, match=rf"^{name}: mode must be one of \('fft', 'scan'\)"):
        make(mode="conv")
    cell = make()
    with pytest.raises(ValueError, match="mode must be one of"):
        cell.mode = "FFT"
    cell.mode = "fft"
    assert cell.mode == "fft" and "mode='fft'" in repr(cell)


def test_default_modes():
    # chosen on the measurements of benchmarks/conv.py (docs/benchmarks.md)
    assert DiagonalRNN(1, 2, 1).mode == "scan"
    assert LRU(1, 2).mode == "scan"
    assert DenseRNN(1, 2, 1).mode == "scan"
    assert S4D(1, 2).mode == "fft"


# -- non-finite input: the FFT mode stays causal by running those sequences on the scan -------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("with_h0", [False, True])
def test_fft_mode_is_causal_on_nonfinite_input(cell, bad, with_h0):
    x = torch.randn(3, 40, cell.d_input, dtype=torch.float64)
    h0 = torch.randn(3, cell.d_state, dtype=cell.state_dtype) if with_h0 else None
    xb = x.clone()
    xb[0, 17, 0] = bad  # one entry of one sequence
    with torch.no_grad():
        y_scan, h_scan = _run(cell, "scan", xb, h0)
        y_clean, h_clean = _run(cell, "fft", x, h0)
        y, h = _run(cell, "fft", xb, h0)
    # before the bad step: the clean output; the other sequences: the clean FFT output
    torch.testing.assert_close(y[0, :17], y_clean[0, :17], **TOL)
    torch.testing.assert_close(y[1:], y_clean[1:], rtol=0, atol=0)
    torch.testing.assert_close(h[1:], h_clean[1:], rtol=0, atol=0)
    # from the bad step on: exactly what the scan mode gives (NaN/inf where it has them)
    assert not bool(torch.isfinite(y[0, 17:]).all())
    torch.testing.assert_close(y, y_scan, equal_nan=True, **TOL)
    torch.testing.assert_close(h, h_scan, equal_nan=True, **TOL)
    assert cell.mode == "fft"  # the fallback leaves the mode as it was


def test_fft_fallback_never_writes_the_mode(cell):
    """The scan for the non-finite rows is asked for by argument: a second thread using the
    same module meanwhile sees ``mode == "fft"`` throughout (it once flipped ``cell._mode``)."""
    cell.mode = "fft"
    seen = []
    inner = cell._sequence

    def spy(x, state, mode):
        seen.append((cell.mode, mode))
        return inner(x, state, mode)

    cell._sequence = spy
    x = torch.randn(3, 20, cell.d_input, dtype=torch.float64)
    x[1, 5, 0] = float("nan")
    with torch.no_grad():
        cell(x)
        cell(x[1:2])  # every row non-finite: all on the scan
    del cell._sequence
    assert {m for _, m in seen} == {"scan", "fft"}
    assert all(module_mode == "fft" for module_mode, _ in seen)


def test_fft_fallback_gradients_are_the_scan_modes():
    torch.manual_seed(0)
    cell = LRU(2, 4).double()
    cell.mode = "fft"
    x = torch.randn(2, 12, 2, dtype=torch.float64)
    xb = x.clone()
    xb[0, 6, 1] = float("nan")
    y, _ = cell(xb)
    y[:, :6].sum().backward()  # the steps before the NaN, in both sequences
    g = {k: p.grad.clone() for k, p in cell.named_parameters()}
    cell.zero_grad()
    cell.mode = "scan"
    cell(xb)[0][:, :6].sum().backward()
    for k, p in cell.named_parameters():  # NaN where autograd multiplies 0 by the NaN input
        torch.testing.assert_close(g[k], p.grad, equal_nan=True, **TOL, msg=k)


@pytest.mark.parametrize("mode", ["fft", "scan"])
def test_empty_batch_gives_empty_outputs(cell, mode):
    cell.mode = mode
    y, h = cell(torch.zeros(0, 7, cell.d_input, dtype=torch.float64))
    assert y.shape == (0, 7, cell.d_output) and h.shape == (0, cell.d_state)
    assert h.dtype == cell.state_dtype
    y_t, h_t = cell.step(torch.zeros(0, cell.d_input, dtype=torch.float64))
    assert y_t.shape == (0, cell.d_output) and h_t.shape == (0, cell.d_state)


def test_zero_length_is_a_clear_error(cell):
    cell.mode = "fft"
    with pytest.raises(ValueError, match=r"length >= 1, got input of shape \(2, 0, "):
        cell(torch.zeros(2, 0, cell.d_input, dtype=torch.float64))


def test_fft_nonfinite_check_is_skipped_inside_vmap_over_inputs():
    # vmap over the input: the data-dependent check cannot run; finite inputs are unaffected
    torch.manual_seed(0)
    cell = S4D(2, 3).double()
    x = torch.randn(4, 3, 9, 2, dtype=torch.float64)
    y = torch.func.vmap(lambda xi: cell(xi)[0])(x)
    for i in range(4):
        torch.testing.assert_close(y[i], cell(x[i])[0], **TOL)


def test_fft_overflowing_sum_of_finite_input_stays_on_the_fft():
    # the cheap check (a finite sum) fails on finite input whose sum overflows: the row check
    # then finds no bad sequence and the FFT runs as usual
    torch.manual_seed(0)
    cell = DenseRNN(1, 3, 1, mode="fft")
    x = torch.full((20, 2, 1), 1e37)  # finite in float32, sum 4e38 = inf
    assert torch.isfinite(x).all() and not torch.isfinite(x.sum())
    cell.mode = "scan"
    y_scan, _ = cell(x)
    cell.mode = "fft"
    cell._scan_on = lambda *a: pytest.fail("finite input was sent to the scan")
    y, _ = cell(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_scan, rtol=1e-4, atol=0)
