"""The lag Gram loss: ``lag_gram`` against its definition, ``kernel_half_mse`` against the half
MSE of explicitly convolved errors and of real students against the teacher (values and every
parameter's gradient, float64), shared Grams, and errors."""

import pytest
import torch
from torch.func import functional_call, grad

from recurrent_params.experiments.lag_gram import kernel_half_mse, lag_gram
from recurrent_params.experiments.teacher import make_teacher
from recurrent_params.experiments.teacher_student import STUDENTS, half_mse

TOL = dict(rtol=1e-10, atol=1e-10)


def _gram_by_definition(x):
    B, L, d = x.shape
    G = torch.zeros(L, d, L, d, dtype=x.dtype)
    for k in range(L):
        for k2 in range(L):
            for t in range(max(k, k2), L):
                G[k, :, k2, :] += x[:, t - k, :].T @ x[:, t - k2, :]
    return G.reshape(L * d, L * d)


def _convolve(E, x):
    """``y[b, t] = sum_k E[k] x[b, t - k]`` by a Python loop: ``(B, L, d_out)``."""
    L = x.shape[1]
    return torch.stack([sum(x[:, t - k] @ E[k].T for k in range(t + 1)) for t in range(L)], 1)


@pytest.mark.parametrize("d", [1, 3])
def test_lag_gram_matches_its_definition(d):
    torch.manual_seed(d)
    x = torch.randn(2, 5, 9, d, dtype=torch.float64)
    G = lag_gram(x)
    assert G.shape == (2, 9 * d, 9 * d)
    for i in range(2):
        torch.testing.assert_close(G[i], _gram_by_definition(x[i]), **TOL)
    assert bool((torch.linalg.eigvalsh(G) > -1e-9).all())  # positive semi-definite


@pytest.mark.parametrize("d_in,d_out", [(1, 1), (2, 3)])
def test_kernel_half_mse_is_the_half_mse_of_the_convolved_error(d_in, d_out):
    torch.manual_seed(0)
    x = torch.randn(6, 11, d_in, dtype=torch.float64)
    E = torch.randn(11, d_out, d_in, dtype=torch.float64, requires_grad=True)
    direct = 0.5 * (_convolve(E, x) ** 2).mean()
    via_gram = kernel_half_mse(E, lag_gram(x), 6 * 11)
    torch.testing.assert_close(via_gram, direct, **TOL)
    g1, = torch.autograd.grad(direct, E)
    g2, = torch.autograd.grad(via_gram, E)
    torch.testing.assert_close(g2, g1, **TOL)


@pytest.mark.parametrize("name", ["dense", "lru", "block2", "diag-exp-gamma", "diag-realimag"])
def test_students_loss_and_gradients_equal_running_them(name):
    """The experiment's loss: a student's half MSE against the teacher on a batch, through
    impulse responses and the Gram, equals running both on the batch, in value and in the
    gradient of every stored parameter (through ExpMag, learned gamma, RealImag, BlockMask)."""
    torch.manual_seed(1)
    teacher = make_teacher(0.9, 10, seed=0, dtype=torch.float64)
    student = STUDENTS[name](12, 0.9).double()
    student.mode = "scan"
    B, L = 4, 25
    x = torch.randn(B, L, 1, dtype=torch.float64)
    y = teacher(x)
    target = teacher.impulse_response(L)
    G = lag_gram(x)
    params = dict(student.named_parameters())

    def direct(p):
        return half_mse(functional_call(student, p, (x,))[0], y)

    def via_gram(p):
        return kernel_half_mse(_impulse(student, p, L) - target, G, B * L)

    torch.testing.assert_close(via_gram(params), direct(params), **TOL)
    g_direct, g_gram = grad(direct)(params), grad(via_gram)(params)
    for k in params:
        torch.testing.assert_close(g_gram[k], g_direct[k], rtol=1e-9, atol=1e-10, msg=k)


class _Impulse(torch.nn.Module):
    def __init__(self, cell, length):
        super().__init__()
        self.cell, self.length = cell, length

    def forward(self):
        return self.cell.impulse_response(self.length)


def _impulse(student, params, length):
    return functional_call(_Impulse(student, length),
                           {f"cell.{k}": v for k, v in params.items()}, ())


def test_one_gram_shared_by_several_models_without_copies():
    torch.manual_seed(2)
    x = torch.randn(3, 4, 10, 1, dtype=torch.float64)  # 3 seeds
    E = torch.randn(3, 5, 10, 1, 1, dtype=torch.float64)  # 5 models per seed
    shared = kernel_half_mse(E, lag_gram(x)[:, None], 40)
    assert shared.shape == (3, 5)
    for s in range(3):
        for m in range(5):
            torch.testing.assert_close(shared[s, m], 0.5 * (_convolve(E[s, m], x[s]) ** 2).mean(),
                                       **TOL)


def test_errors():
    with pytest.raises(ValueError, match="batch, length, d_in"):
        lag_gram(torch.randn(5, 3))
    with pytest.raises(TypeError, match="real floating-point"):
        lag_gram(torch.ones(2, 3, 1, dtype=torch.int64))
    with pytest.raises(TypeError, match="real floating-point"):
        lag_gram(torch.ones(2, 3, 1, dtype=torch.complex64))
    with pytest.raises(ValueError, match="non-finite"):
        lag_gram(torch.tensor([[[1.0], [float("nan")]]]))
    G = lag_gram(torch.randn(2, 4, 1))
    with pytest.raises(ValueError, match="must be"):
        kernel_half_mse(torch.randn(5, 1, 1), G, 8)
    with pytest.raises(ValueError, match="L, d_out, d_in"):
        kernel_half_mse(torch.randn(4, 1), G, 8)
    with pytest.raises(ValueError, match="count"):
        kernel_half_mse(torch.randn(4, 1, 1), G, 0)
