"""``RecurrentCell.impulse_response``: the closed-form kernel of every linear time-invariant
cell against the outputs of its own step mode on unit impulses (float64), its gradients
against the gradients of the outputs, the baby-step/giant-step kernels against plain powers at
lengths around powers of two, and errors."""

import pytest
import torch
from torch.func import functional_call, grad

from recurrent_params import LRU
from recurrent_params.cells._conv import dense_kernel, diagonal_kernel
from tests.recurrent_params.test_conv_mode import CELLS, D_IN

TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture(params=sorted(CELLS))
def cell(request):
    torch.manual_seed(0)
    return CELLS[request.param]().double()


def _impulse_outputs(cell, length):
    """Output of the step mode to a unit impulse on each input: ``(length, d_out, d_in)``."""
    x = torch.zeros(cell.d_input, length, cell.d_input, dtype=torch.float64)
    x[torch.arange(cell.d_input), 0, torch.arange(cell.d_input)] = 1.0
    state, ys = cell.initial_state(cell.d_input), []
    for x_t in x.unbind(1):
        y_t, state = cell.step(x_t, state)
        ys.append(y_t)
    return torch.stack(ys, 1).permute(1, 2, 0)  # (L, d_out, d_in)


@pytest.mark.parametrize("length", [1, 2, 7, 16, 17, 50])
def test_impulse_response_is_the_step_mode_response_to_impulses(cell, length):
    R = cell.impulse_response(length)
    assert R.shape == (length, cell.d_output, cell.d_input) and R.dtype == torch.float64
    torch.testing.assert_close(R, _impulse_outputs(cell, length), **TOL)


def test_impulse_response_convolves_to_the_forward_outputs(cell):
    torch.manual_seed(1)
    x = torch.randn(3, 20, cell.d_input, dtype=torch.float64)
    R = cell.impulse_response(20)
    y = torch.stack([sum(x[:, t - k] @ R[k].T for k in range(t + 1)) for t in range(20)], 1)
    torch.testing.assert_close(y, cell(x)[0], **TOL)


def test_impulse_response_gradients_match_the_outputs(cell):
    """The gradient of a loss of the kernel equals the gradient of the same loss written
    through the step-mode outputs, for every parameter (through the parametrizations)."""
    torch.manual_seed(2)
    L = 12
    W = torch.randn(L, cell.d_output, cell.d_input, dtype=torch.float64)
    params = dict(cell.named_parameters())

    def through_kernel(p):
        return (_call(cell, p, lambda c: c.impulse_response(L)) * W).sum()

    def through_steps(p):
        return (_call(cell, p, lambda c: _impulse_outputs(c, L)) * W).sum()

    g1, g2 = grad(through_kernel)(params), grad(through_steps)(params)
    for k in params:
        torch.testing.assert_close(g1[k], g2[k], **TOL, msg=k)


class _Apply(torch.nn.Module):
    def __init__(self, cell, fn):
        super().__init__()
        self.cell, self.fn = cell, fn

    def forward(self):
        return self.fn(self.cell)


def _call(cell, params, fn):
    return functional_call(_Apply(cell, fn), {f"cell.{k}": v for k, v in params.items()}, ())


@pytest.mark.parametrize("length", [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 300])
def test_baby_giant_kernels_equal_plain_powers(length):
    torch.manual_seed(3)
    n = 5
    A = torch.randn(n, n, dtype=torch.float64) / n**0.5
    B = torch.randn(n, 2, dtype=torch.float64)
    C = torch.randn(3, n, dtype=torch.float64)
    powers = [torch.eye(n, dtype=torch.float64)]
    for _ in range(length - 1):
        powers.append(A @ powers[-1])
    torch.testing.assert_close(dense_kernel(A, B, C, length),
                               torch.stack([C @ P @ B for P in powers]), **TOL)
    torch.testing.assert_close(dense_kernel(A, B[:, :1], C, length),
                               torch.stack([C @ P @ B[:, :1] for P in powers]), **TOL)
    lam = torch.polar(torch.rand(n, dtype=torch.float64), 6 * torch.rand(n, dtype=torch.float64))
    Bc, Cc = B.to(lam.dtype) * 1j + 0.5, C.to(lam.dtype) - 0.3j
    expected = torch.stack([(Cc @ torch.diag(lam**k) @ Bc).real for k in range(length)])
    torch.testing.assert_close(diagonal_kernel(lam, Bc, Cc, length), expected, **TOL)


def test_impulse_response_errors():
    cell = LRU(D_IN, 4)
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="positive int"):
            cell.impulse_response(bad)


def test_a_cell_without_a_kernel_says_it_is_not_time_invariant():
    from recurrent_params.cells._base import RecurrentCell

    class Gated(RecurrentCell):
        d_input = d_state = d_output = 1
        is_complex = False

        def __init__(self):
            super().__init__()
            self.D = torch.nn.Parameter(torch.zeros(1, 1))

    with pytest.raises(TypeError, match="not linear time-invariant"):
        Gated().impulse_response(4)
