"""diagnostics.estimators: any operator in, the HessianOperator's shorthands the same numbers,
symmetry and NaN checks, convergence reported in the result, probes drawn once."""

import pickle

import pytest
import torch

from diagnostics import (
    Eigenpairs,
    FunctionOperator,
    HessianOperator,
    LinearOperator,
    eigsh,
    hessian_diagonality,
    hutchinson,
)
from diagnostics.estimators import as_scipy_operator, check_symmetric, rademacher
from tests.diagnostics._models import DT, mse, quadratic, spd_with_spectrum


def test_shorthands_are_the_estimators():
    a = spd_with_spectrum(torch.linspace(0.1, 3.0, 15, dtype=DT))
    op = HessianOperator(*quadratic(a), chunk_size=4, progress=False)
    assert isinstance(op, LinearOperator) and isinstance(a, LinearOperator)
    v1, w1 = op.eigsh(3, seed=2)
    v2, w2 = eigsh(op, 3, seed=2)
    torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    torch.testing.assert_close(w1, w2, rtol=0, atol=0)
    # same probes through a dense matrix and through the operator: same estimates
    e_op, e_dense = op.hutchinson(12, seed=3), hutchinson(a, 12, seed=3, chunk_size=4)
    torch.testing.assert_close(e_op.diag, e_dense.diag, rtol=1e-12, atol=1e-12)
    assert e_op.frobenius_sq == pytest.approx(e_dense.frobenius_sq, rel=1e-12)


def test_eigenpairs_carry_convergence_info():
    a = torch.diag(torch.arange(1.0, 31.0, dtype=DT))
    pairs = eigsh(a, 2)
    assert isinstance(pairs, Eigenpairs) and len(pairs) == 2
    torch.testing.assert_close(pairs.values, torch.tensor([30.0, 29.0], dtype=DT))
    assert pairs.vectors.shape == (30, 2)
    assert pairs.info["method"] == "lanczos" and pairs.info["converged"]
    assert pairs.info["max_residual"] <= 1e-8 and pairs.info["num_matvecs"] >= 2
    sc = eigsh(a, 2, method="scipy")
    torch.testing.assert_close(sc.values, pairs.values, rtol=1e-10, atol=0)
    assert sc.info["method"] == "scipy" and sc.info["num_matvecs"] > 0
    assert not hasattr(HessianOperator(*quadratic(a), progress=False), "last_lanczos_info")
    again = pickle.loads(pickle.dumps(pairs))
    assert isinstance(again, Eigenpairs) and again.info == pairs.info
    torch.testing.assert_close(again.values, pairs.values)


def test_non_symmetric_input_is_refused():
    # Lanczos on [[1, 2], [0, 1]] returned 2, which is no eigenvalue (issue 21)
    with pytest.raises(ValueError, match="symmetric"):
        eigsh(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=DT), 1)
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, dtype=DT, generator=g)
    undeclared = FunctionOperator(lambda v: m @ v, 6)
    with pytest.raises(ValueError, match="u'Av - v'Au"):
        eigsh(undeclared, 1)
    sym = m + m.T
    values, _ = eigsh(FunctionOperator(lambda v: sym @ v, 6), 2)  # probe check passes
    torch.testing.assert_close(values, torch.linalg.eigvalsh(sym).flip(0)[:2], rtol=1e-8,
                               atol=0)
    check_symmetric(sym + 1e-14 * torch.randn(6, 6, dtype=DT, generator=g))  # round-off is fine


def test_nan_is_an_error_for_eigsh_and_passes_through_hutchinson():
    a = torch.eye(3, dtype=DT)
    a[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        eigsh(a, 1)
    with pytest.raises(ValueError, match="NaN"):
        eigsh(FunctionOperator(lambda v: a @ v, 3, is_symmetric=True), 1)
    with pytest.raises(ValueError, match="NaN"):
        eigsh(FunctionOperator(lambda v: a @ v, 3, is_symmetric=True), 1, method="scipy")
    est = hutchinson(a, 4)
    assert torch.isnan(est.diag[0]) and est.frobenius_sq != est.frobenius_sq


def test_function_operator_and_scipy_adapter():
    a = spd_with_spectrum(torch.linspace(1.0, 2.0, 5, dtype=DT))
    op = FunctionOperator(lambda v: a @ v, 5, is_symmetric=True)
    x = torch.randn(5, 3, dtype=DT)
    torch.testing.assert_close(op @ x, a @ x)
    torch.testing.assert_close(op @ x[:, 0], a @ x[:, 0])
    lin = as_scipy_operator(op)
    torch.testing.assert_close(torch.as_tensor(lin.matvec(x[:, 0].numpy())), a @ x[:, 0])
    with pytest.raises(ValueError, match="size"):
        FunctionOperator(lambda v: v, 0)
    with pytest.raises(ValueError, match="square"):
        hutchinson(torch.zeros(2, 3, dtype=DT), 5)


def test_rademacher_probes_and_span():
    z = rademacher(50, 7, generator=torch.Generator().manual_seed(1))
    assert z.shape == (50, 7) and bool((z.abs() == 1).all())
    zs = rademacher(50, 7, generator=torch.Generator().manual_seed(1), span=(2, 5))
    torch.testing.assert_close(zs[:, 2:5], z[:, 2:5])  # the same stream, masked
    assert bool((zs[:, :2] == 0).all() and (zs[:, 5:] == 0).all())


def _linear_in_theta():
    model = torch.nn.Linear(2, 1).double()
    x, y = torch.randn(4, 2, dtype=DT), torch.zeros(4, 1, dtype=DT)
    return model, x, y


@pytest.mark.parametrize("method", ["exact", "matrix-free"])
def test_diagonality_of_a_zero_or_nan_hessian_is_a_clear_error(method):
    model, x, y = _linear_in_theta()
    with pytest.raises(ValueError, match="Hessian is zero"):  # used to raise IndexError
        hessian_diagonality(model, lambda o, t: (t**2).sum(), (x, y), k=1, method=method,
                            progress=False)
    with pytest.raises(ValueError, match="Hessian is zero"):  # linear in theta
        hessian_diagonality(model, lambda o, t: o.sum(), (x, y), k=1, method=method,
                            progress=False)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        hessian_diagonality(model, mse, (x, y), k=1, method=method, progress=False)


@pytest.mark.parametrize("method", ["exact", "matrix-free"])
def test_zero_diagonal_gives_nan_preconditioned_spectrum(method):
    a = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=DT)
    report = hessian_diagonality(*quadratic(a), k=1, method=method, num_probes=10,
                                 block_probes=0, progress=False)
    assert report.preconditioned_lambda_max != report.preconditioned_lambda_max
    assert any("diagonal is zero" in n for n in report.notes)
    assert report.top_eigenvalues == pytest.approx([1.0])


def test_matrix_free_report_carries_lanczos_convergence_and_exact_block_masses():
    # a diagonal A: Rademacher probes make every Hutchinson estimate exact
    a = torch.diag(torch.tensor([4.0, 1.0, 2.0, 0.5], dtype=DT))
    model, loss, batch = quadratic(a)
    report = hessian_diagonality(model, loss, batch, k=2, method="matrix-free", num_probes=6,
                                 block_probes=3, progress=False)
    assert report.convergence["top_eigenpairs"]["converged"]
    assert report.convergence["preconditioned"]["converged"]
    assert report.preconditioned_lambda_max == pytest.approx(1.0)
    assert report.block_masses == pytest.approx({"theta": 1.0})
    assert report.diagonal_mass == pytest.approx(1.0)
    with pytest.raises(ValueError, match="block_probes"):
        hessian_diagonality(model, loss, batch, k=1, method="matrix-free", block_probes=2,
                            progress=False)
