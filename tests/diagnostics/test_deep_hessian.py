"""hessian_diagonality restricted to the recurrent parameters of one block of a deep stack
(``param_names=``), exact and matrix-free, against torch.func.hessian in float64."""

import pytest
import torch
from torch.func import functional_call, hessian

from diagnostics import HessianOperator, block_recurrent_parameters, hessian_diagonality
from recurrent_params import LRU, RecurrentStack

DT = torch.float64


def _setup():
    torch.manual_seed(0)
    model = RecurrentStack.of(lambda d: LRU(d, 4, r_min=0.5, r_max=0.95), depth=2, d_model=3,
                              d_input=2, d_output=3).double().eval()
    x = torch.randn(8, 6, 2, dtype=DT)
    y = torch.randint(0, 3, (8,))

    def loss_fn(out, target):
        return torch.nn.functional.cross_entropy(out[0], target)

    return model, x, y, loss_fn


def _brute_force(model, x, y, loss_fn, names):
    params = {n: p.detach() for n, p in model.named_parameters()}
    chosen = {n: params[n].detach() for n in names}

    def loss_of(sub):
        return loss_fn(functional_call(model, {**params, **sub}, (x,)), y)

    h = hessian(loss_of)(chosen)
    sizes = [chosen[n].numel() for n in names]
    rows = [torch.cat([h[a][b].reshape(sa, sb) for b, sb in zip(names, sizes)], 1)
            for a, sa in zip(names, sizes)]
    return torch.cat(rows, 0)  # (P, P) in the given order


def test_one_block_hessian_is_the_brute_force_one():
    model, x, y, loss_fn = _setup()
    names = list(block_recurrent_parameters(model, 1))  # nu, theta, gamma of block 1
    want = _brute_force(model, x, y, loss_fn, names)
    op = HessianOperator(model, loss_fn, (x, y), param_names=block_recurrent_parameters(model, 1),
                         progress=False)
    assert op.names == names and op.num_params == 12
    dense = op.dense()
    torch.testing.assert_close(dense, want, rtol=1e-9, atol=1e-12)
    assert not dense.requires_grad  # the parameters held fixed record no graph

    exact = hessian_diagonality(model, loss_fn, (x, y), k=2, method="exact",
                                param_names=names, progress=False)
    evals = torch.linalg.eigvalsh(want).flip(0)
    assert exact.num_params == 12
    assert exact.diagonal_mass == pytest.approx(float(want.diagonal().norm() / want.norm()),
                                                rel=1e-9)
    assert exact.top_eigenvalues == pytest.approx(evals[:2].tolist(), rel=1e-8)
    assert set(exact.block_masses) == set(names)

    free = hessian_diagonality(model, loss_fn, (x, y), k=2, method="matrix-free",
                               param_names=names, num_probes=400, progress=False)
    assert free.method == "matrix-free"
    assert free.top_eigenvalues == pytest.approx(evals[:2].tolist(), rel=1e-6)
    assert abs(free.diagonal_mass - exact.diagonal_mass) < 4 * free.diagonal_mass_stderr + 1e-3
    assert free.frobenius_norm == pytest.approx(float(want.norm()), rel=0.15)


def test_unknown_parameter_names_are_refused():
    model, x, y, loss_fn = _setup()
    with pytest.raises(ValueError, match="unknown parameter names"):
        hessian_diagonality(model, loss_fn, (x, y), param_names=["blocks.5.layer.lam"],
                            progress=False)
