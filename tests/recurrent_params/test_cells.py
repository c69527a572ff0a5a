"""Contract tests for every cell: float64 loop of its equations, step == sequence, streaming,
gradcheck, state_dict / deepcopy, dtype moves and input errors."""

import copy
import math

import pytest
import torch
from torch.nn.utils import parametrize

from recurrent_params import LRU, S4D, DenseRNN, DiagonalRNN, ExpMag, assign_, input_gamma

D_IN, N, D_OUT = 3, 5, 2



def _dense_ref(cell, x, h):
    ys = []
    for x_t in x:  # x: (L, d_in), h: (N,)
        h = cell.A @ h + cell.B @ x_t
        ys.append(cell.C @ h + cell.D @ x_t)
    return torch.stack(ys), h


def _diag_ref(cell, x, h):
    lam = cell.lam
    B = cell.B.to(lam.dtype) if lam.is_complex() else cell.B  # gamma(lam) already applied
    ys = []
    for x_t in x:
        h = lam * h + B @ x_t.to(B.dtype)
        skip = cell.D * x_t if cell.D.dim() == 1 else cell.D @ x_t
        ys.append((cell.C.to(h.dtype) @ h).real + skip)
    return torch.stack(ys), h


def _s4d_ref(cell, x, h):
    lam, dB = cell.discretize()  # (H, N)
    h = h.reshape(lam.shape)
    ys = []
    for x_t in x:  # (H,)
        h = lam * h + dB * x_t[:, None]
        ys.append(2 * (cell.C * h).sum(-1).real + cell.D * x_t)
    return torch.stack(ys), h.reshape(-1)


def _diag_expmag():
    cell = DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, r_max=0.99, normalization="iid")
    parametrize.register_parametrization(cell, "lam", ExpMag())
    return cell


CELLS = {
    "dense": (lambda: DenseRNN(D_IN, N, D_OUT), _dense_ref),
    "diag-complex": (lambda: DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, r_max=0.99), _diag_ref),
    "diag-real": (lambda: DiagonalRNN(D_IN, N, D_OUT, complex=False, r_min=0.5), _diag_ref),
    "diag-learned": (
        lambda: DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, normalization="learned"),
        _diag_ref,
    ),
    "diag-learned-direct": (
        lambda: DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, normalization="learned-direct"),
        _diag_ref,
    ),
    "diag-real-correlated": (
        lambda: DiagonalRNN(D_IN, N, D_OUT, complex=False, normalization="correlated", rho=0.5),
        _diag_ref,
    ),
    "diag-expmag-iid": (_diag_expmag, _diag_ref),
    "lru": (lambda: LRU(D_IN, N, r_min=0.5, r_max=0.99), _diag_ref),
    "lru-plain": (lambda: LRU(D_IN, N, parametrization=None, normalization=None), _diag_ref),
    "dense-fft": (lambda: DenseRNN(D_IN, N, D_OUT, mode="fft"), _dense_ref),
    "diag-complex-fft": (
        lambda: DiagonalRNN(D_IN, N, D_OUT, r_min=0.5, normalization="learned", mode="fft"),
        _diag_ref,
    ),
    "diag-real-fft": (lambda: DiagonalRNN(D_IN, N, D_OUT, complex=False, mode="fft"), _diag_ref),
    "lru-fft": (lambda: LRU(D_IN, N, r_min=0.5, r_max=0.99, mode="fft"), _diag_ref),
    "s4d-lin-fft": (lambda: S4D(D_IN, 4), _s4d_ref),
    "s4d-inv-scan": (lambda: S4D(D_IN, 4, init="inv", mode="scan"), _s4d_ref),
    "s4d-plain": (lambda: S4D(D_IN, 4, parametrization=None), _s4d_ref),
}


@pytest.fixture(params=sorted(CELLS))
def cell_case(request):
    make, ref = CELLS[request.param]
    cell = make().double()
    cell.factory = make
    return cell, ref


def _x(cell, B=2, L=7):
    return torch.randn(B, L, cell.d_input, dtype=cell.real_dtype)


def test_sequence_matches_float64_loop_of_the_equations(cell_case):
    cell, ref = cell_case
    x = _x(cell)
    h0 = torch.randn(2, cell.d_state, dtype=cell.state_dtype)
    y, h = cell(x, h0)
    assert y.shape == (2, 7, cell.d_output) and h.shape == (2, cell.d_state)
    with torch.no_grad():
        for b in range(2):
            y_ref, h_ref = ref(cell, x[b], h0[b])
            torch.testing.assert_close(y[b], y_ref, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(h[b], h_ref, rtol=1e-10, atol=1e-12)


def test_step_mode_agrees_with_sequence_mode(cell_case):
    cell, _ = cell_case
    x = _x(cell)
    y, h = cell(x)
    state = cell.initial_state(2)
    ys = []
    for x_t in x.unbind(1):
        y_t, state = cell.step(x_t, state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, 1), y)
    torch.testing.assert_close(state, h)


def test_streaming_two_halves_equals_one_run(cell_case):
    cell, _ = cell_case
    x = _x(cell, L=10)
    y, h = cell(x)
    y1, h1 = cell(x[:, :4])
    y2, h2 = cell(x[:, 4:], h1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    torch.testing.assert_close(h2, h)


def test_gradcheck(cell_case):
    cell, _ = cell_case
    x = _x(cell, B=2, L=5).requires_grad_()
    h0 = torch.randn(2, cell.d_state, dtype=cell.state_dtype, requires_grad=True)
    names, values = zip(*[(n, p.detach().requires_grad_()) for n, p in cell.named_parameters()])

    def f(x, h0, *ps):
        y, h = torch.func.functional_call(cell, dict(zip(names, ps)), (x, h0))
        return y, h

    assert torch.autograd.gradcheck(f, (x, h0, *values))


def test_state_dict_and_deepcopy_round_trip(cell_case):
    cell, _ = cell_case
    make = cell.factory
    x = _x(cell)
    fresh = make().double()
    fresh.load_state_dict(cell.state_dict())
    torch.testing.assert_close(fresh(x)[0], cell(x)[0])
    torch.testing.assert_close(copy.deepcopy(cell)(x)[0], cell(x)[0])


def test_dtype_moves_keep_complex_and_initial_state(cell_case):
    cell, _ = cell_case
    f32 = copy.deepcopy(cell).float()
    assert f32.real_dtype == torch.float32
    s = f32.initial_state(3)
    assert s.shape == (3, f32.d_state) and not s.any()
    assert s.dtype == (torch.complex64 if f32.is_complex else torch.float32)
    back = f32.to(torch.float64)
    assert back.state_dtype == (torch.complex128 if back.is_complex else torch.float64)
    assert all(not p.is_complex() or p.dtype == torch.complex128 for p in back.parameters())
    y, _ = back(_x(back))
    assert y.dtype == torch.float64
    assert f"d_state={cell.d_state}" in repr(cell)


def test_errors_name_expected_and_received(cell_case):
    cell, _ = cell_case
    name = type(cell).__name__.replace("Parametrized", "")
    d_in = cell.d_input
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape .*{d_in}\), got"):
        cell(torch.randn(2, 4, D_IN + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 3\), got \(3,\)"):
        cell.step(torch.randn(D_IN, dtype=torch.float64))
    with pytest.raises(TypeError, match="expected input dtype torch.float64, got torch.float32"):
        cell(torch.randn(2, 4, D_IN))
    with pytest.raises(ValueError, match=rf"expected state of shape \(2, {cell.d_state}\), got"):
        cell(_x(cell), torch.zeros(2, cell.d_state + 1, dtype=cell.state_dtype))
    with pytest.raises(TypeError, match="expected state dtype"):
        cell(_x(cell), torch.zeros(2, cell.d_state, dtype=torch.float32))
    with pytest.raises(ValueError, match="expected input on cpu, got meta"):
        cell(torch.randn(2, 4, D_IN, dtype=torch.float64, device="meta"))


def test_cells_on_device(cell_case, device):
    cell, _ = cell_case
    x = _x(cell)
    y, h = cell(x)
    moved = copy.deepcopy(cell).to(device)
    y_d, h_d = moved(x.to(device))
    torch.testing.assert_close(y_d.cpu(), y)


def test_diagonal_rnn_lam_is_plain_and_ring_initialised():
    cell = DiagonalRNN(2, 400, 1, r_min=0.4, r_max=0.9, max_phase=1.0)
    assert isinstance(cell.lam, torch.nn.Parameter) and cell.lam.is_complex()
    r, theta = cell.lam.detach().abs(), cell.lam.detach().angle()
    assert 0.4 <= r.min() and r.max() <= 0.9 and 0 <= theta.min() and theta.max() <= 1.0
    # |lam|^2 uniform on [0.16, 0.81]: mean 0.485
    assert abs((r**2).mean().item() - 0.485) < 0.03
    real = DiagonalRNN(2, 4, 1, complex=False)
    assert not real.lam.is_complex() and not real.is_complex


def test_constructor_errors():
    with pytest.raises(ValueError, match="normalization must be one of"):
        DiagonalRNN(1, 2, 1, normalization="batch")
    with pytest.raises(ValueError, match=r"0 <= r_min <= r_max <= 1, got r_min=0.5, r_max=1.5"):
        DiagonalRNN(1, 2, 1, r_min=0.5, r_max=1.5)
    with pytest.raises(ValueError, match="d_state a positive int, got 0"):
        DenseRNN(1, 0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense", "diag-complex", "lru", "lru-fft", "s4d-lin-fft"])
def test_torch_compile(name):
    # the diagonal cells graph-break around linear_scan (torch.compiler.disable); S4D in FFT
    # mode compiles into two graphs, split at the input's non-finite check; the LRU in FFT
    # mode compiles too
    cell = CELLS[name][0]()
    x = torch.randn(2, 6, D_IN)
    compiled = torch.compile(cell)
    y = compiled(x)[0]
    torch.testing.assert_close(y, cell(x)[0])
    params = list(cell.parameters())
    grads = torch.autograd.grad(y.square().sum(), params)
    expected = torch.autograd.grad(cell(x)[0].square().sum(), params)
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_diagonal_rnn_normalization_is_registered_on_B():
    cell = DiagonalRNN(2, 6, 1, r_min=0.5, r_max=0.99, normalization="iid")
    raw = torch.complex(*(cell.parametrizations.B.original0, cell.parametrizations.B.original1))
    gamma = torch.sqrt(1 - cell.lam.detach().abs() ** 2)
    torch.testing.assert_close(cell.B, gamma[:, None] * raw)
    torch.testing.assert_close(cell.gamma(), input_gamma(cell.lam.detach(), "iid"))
    target = torch.randn(6, 2, dtype=torch.complex64)
    assign_(cell, "B", target)  # sets the effective matrix
    torch.testing.assert_close(cell.B, target)


def test_iid_normalization_gives_unit_stationary_variance():
    # E[h^2] = gamma^2 / (1 - lam^2) = 1 for i.i.d. unit inputs (curse-of-memory closed form)
    cell = DiagonalRNN(1, 2, 1, complex=False, normalization="iid").double()
    assign_(cell, "lam", torch.tensor([0.9, 0.99], dtype=torch.float64))
    assign_(cell, "B", torch.ones(2, 1, dtype=torch.float64) * cell.gamma()[:, None].detach())
    raw = cell.parametrizations.B.original
    torch.testing.assert_close(raw, torch.ones_like(raw))
    x = torch.randn(4000, 600, 1, dtype=torch.float64)
    with torch.no_grad():
        _, h = cell(x)
    ones = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(h.pow(2).mean(0), ones, rtol=0.08, atol=0)


def test_user_registered_expmag_on_diagonal_rnn():
    cell = DiagonalRNN(1, 4, 1, r_min=0.5, r_max=0.9)
    lam0 = cell.lam.detach().clone()
    parametrize.register_parametrization(cell, "lam", ExpMag())
    torch.testing.assert_close(cell.lam, lam0)
    nu = cell.parametrizations.lam.original0
    torch.testing.assert_close(torch.exp(-torch.exp(nu)), lam0.abs())


def test_lru_paper_parametrization_and_removal():
    cell = LRU(d_model=2, d_state=16, r_min=0.4, r_max=0.95, max_phase=math.pi / 4)
    lam = cell.lam.detach()
    assert parametrize.is_parametrized(cell, "lam")
    originals = cell.parametrizations.lam
    nu, theta_log = originals.original0, originals.original1
    torch.testing.assert_close(torch.exp(-torch.exp(nu)), lam.abs())
    torch.testing.assert_close(torch.exp(theta_log), lam.angle())
    assert 0.4 - 1e-6 <= lam.abs().min() and lam.abs().max() <= 0.95 + 1e-6
    assert lam.angle().min() >= 0 and lam.angle().max() <= math.pi / 4 + 1e-6
    torch.testing.assert_close(cell.gamma(), torch.sqrt(1 - lam.abs() ** 2))
    gamma_log = cell.parametrizations.B[1].gamma_log
    assert gamma_log.requires_grad and gamma_log.shape == (16,)
    assert cell.B.shape == (16, 2) and cell.C.shape == (2, 16) and cell.D.shape == (2,)
    parametrize.remove_parametrizations(cell, "lam")
    assert isinstance(cell.lam, torch.nn.Parameter)
    torch.testing.assert_close(cell.lam.detach(), lam)
    plain = LRU(2, 4, parametrization=None)
    assert isinstance(plain.lam, torch.nn.Parameter) and plain.lam.is_complex()


def test_errors_name_the_cell_not_the_parametrized_subclass():
    from recurrent_params import DiagonalRNN

    cell = DiagonalRNN(2, 4, 3)  # B and C are parametrized, so its class is swapped by torch
    assert type(cell).__name__ == "ParametrizedDiagonalRNN"
    with pytest.raises(ValueError, match=r"^DiagonalRNN: expected input of shape"):
        cell(torch.randn(2, 5, 3))


# -- dtypes a cell runs in, and constructor settings (issue 21) --------------------------------

COMPLEX_CELLS = {
    "s4d": lambda: S4D(2, 3),
    "lru": lambda: LRU(2, 3),
    "diag-complex": lambda: DiagonalRNN(2, 3, 2),
}


@pytest.mark.parametrize("name", sorted(COMPLEX_CELLS))
@pytest.mark.parametrize("convert", ["half", "bfloat16", "to"])
def test_complex_cells_refuse_half_and_bfloat16_and_stay_usable(name, convert):
    cell = COMPLEX_CELLS[name]()
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    with pytest.raises(TypeError, match=r"float32 or float64.*torch\.(float16|bfloat16)"):
        if convert == "to":
            cell.to(torch.bfloat16)
        else:
            getattr(cell, convert)()
    # refused before anything was converted: the cell is whole and still runs in float32
    for k, v in cell.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k]), k
    y, _ = cell(torch.randn(2, 4, 2))
    assert y.dtype == torch.float32
    cell.double()  # the supported conversions still work
    assert cell(torch.randn(2, 4, 2, dtype=torch.float64))[0].dtype == torch.float64


@pytest.mark.parametrize("make", [lambda: DenseRNN(2, 3, 2), lambda: DiagonalRNN(2, 3, 2,
                                                                             complex=False)])
def test_real_cells_still_run_in_bfloat16(make):
    torch.manual_seed(0)
    cell = make()
    x = torch.randn(2, 5, 2)
    y32, _ = cell(x)
    y, _ = cell.bfloat16()(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y32, rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda v: DenseRNN(2, 4, 2, radius=v), "radius a finite number >= 0"),
        (lambda v: DiagonalRNN(2, 4, 2, max_phase=v), "max_phase a finite number >= 0"),
        (lambda v: LRU(2, 4, max_phase=v), "max_phase a finite number >= 0"),
        (lambda v: DiagonalRNN(2, 4, 2, r_min=v), "r_min"),
        (lambda v: LRU(2, 4, r_max=v), "r_max"),
        (lambda v: S4D(2, 4, dt_min=v), "dt_min a finite number > 0"),
        (lambda v: S4D(2, 4, dt_max=v), "dt_max a finite number > 0"),
    ],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_constructors_reject_nonfinite_and_negative_settings(make, match, value):
    with pytest.raises(ValueError, match=match):
        make(value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DenseRNN(2, True, 2),
        lambda: DiagonalRNN(2, 3.0, 2),
        lambda: LRU(True, 3),
        lambda: S4D(2, n_modes=False),
    ],
)
def test_sizes_must_be_ints_not_bools(make):
    with pytest.raises(ValueError, match="a positive int"):
        make()


def test_diagonal_rnn_complex_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="complex a bool, got 'no'"):
        DiagonalRNN(2, 3, 2, complex="no")


def test_dense_rnn_radius_zero_is_allowed_and_exact():
    cell = DenseRNN(2, 3, 2, radius=0)
    assert torch.equal(cell.A, torch.zeros(3, 3))
