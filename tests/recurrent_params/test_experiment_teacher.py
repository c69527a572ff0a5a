"""The teacher of the curse-of-memory experiments and loading it into every student cell."""

import pytest
import torch

from recurrent_params import LRU, DenseRNN, DiagonalRNN, ExpMag
from recurrent_params.experiments.teacher import load_teacher, make_teacher, teacher_data

DT = torch.float64


def _loop(teacher, x):
    """Slow reference: the teacher recurrence as a Python loop."""
    h = torch.zeros(x.shape[0], teacher.d_state, dtype=DT)
    ys = []
    for t in range(x.shape[1]):
        h = h @ teacher.A.T + x[:, t] @ teacher.B.T
        ys.append(h @ teacher.C.T + x[:, t] @ teacher.D.T)
    return torch.stack(ys, 1)


def test_teacher_eigenvalues_and_outputs():
    teacher = make_teacher(0.99, d_state=10, seed=3)
    lam = teacher.eigenvalues
    assert bool(((lam.abs() >= 0.99) & (lam.abs() < 1)).all())
    # real matrix: eigenvalues closed under conjugation
    torch.testing.assert_close(torch.sort(lam.imag).values, torch.sort(-lam.imag).values)
    x, y = teacher_data(teacher, 3, 40, seed=0)
    torch.testing.assert_close(y, _loop(teacher, x), rtol=1e-12, atol=1e-12)
    assert x.std() > 0.5 and x.dtype == DT
    # the magnitude map nu0 + (1 - nu0) tanh(|l|) of the Gaussian draw
    gen = torch.Generator().manual_seed(3)
    a0 = torch.randn(10, 10, dtype=DT, generator=gen) / 10**0.5
    expected = 0.99 + 0.01 * torch.tanh(torch.linalg.eigvals(a0).abs())
    torch.testing.assert_close(torch.sort(lam.abs()).values, torch.sort(expected).values)
    assert teacher.D.shape == (1, 1) and float(teacher.D.abs()) > 0
    no_d = make_teacher(0.99, d_state=10, seed=3, feedthrough=False)
    assert float(no_d.D.abs()) == 0 and torch.equal(no_d.A, teacher.A)
    with pytest.raises(ValueError, match="nu0"):
        make_teacher(1.0)


def _students():
    plain = DiagonalRNN(1, 10, 1)
    exp_lam = DiagonalRNN(1, 10, 1, normalization="iid")
    direct = DiagonalRNN(1, 10, 1, normalization="learned-direct")
    torch.nn.utils.parametrize.register_parametrization(exp_lam, "lam", ExpMag())
    return {
        "dense": DenseRNN(1, 10, 1),
        "diagonal": plain,
        "diagonal-expmag-iid": exp_lam,
        "diagonal-learned-direct": direct,
        "lru": LRU(1, 10),
        "lru-wider": LRU(1, 16),
        "dense-wider": DenseRNN(1, 13, 1),
    }


@pytest.mark.parametrize("kind", list(_students()))
def test_loaded_student_reproduces_teacher(kind):
    teacher = make_teacher(0.99, d_state=10, seed=1)
    student = _students()[kind].double()
    load_teacher(student, teacher)
    x, y = teacher_data(teacher, 8, 300, seed=2)
    out, _ = student(x)
    torch.testing.assert_close(out, y, rtol=0, atol=1e-10)
    loss = 0.5 * ((out.detach() - y) ** 2).mean()
    assert float(loss) < 1e-24


def test_load_teacher_errors():
    teacher = make_teacher(0.9, d_state=10)
    with pytest.raises(ValueError, match="at least 10"):
        load_teacher(DenseRNN(1, 4, 1).double(), teacher)
    with pytest.raises(TypeError, match="real"):
        load_teacher(DiagonalRNN(1, 10, 1, complex=False).double(), teacher)
    with pytest.raises(ValueError, match="d_input"):
        load_teacher(DenseRNN(2, 10, 1).double(), teacher)
