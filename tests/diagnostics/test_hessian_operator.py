"""HessianOperator against torch.func.hessian in float64 on small models."""

import pytest
import torch
from torch.func import hessian

from diagnostics import HessianOperator
from tests.diagnostics._models import (
    DT,
    TinyComplexRNN,
    complex_rnn_reference,
    mlp,
    mse,
    quadratic,
    spd_with_spectrum,
)


def _mlp_problem():
    model = mlp()
    x, y = torch.randn(9, 3, dtype=DT), torch.randn(9, 2, dtype=DT)
    return model, x, y


def _mlp_reference(model, x, y):
    shapes = [p.shape for p in model.parameters()]

    def f(theta):
        ws, i = [], 0
        for s in shapes:
            ws.append(theta[i : i + s.numel()].reshape(s))
            i += s.numel()
        w1, b1, w2, b2 = ws
        return mse(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)

    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return hessian(f)(theta)


@pytest.fixture
def complex_rnn_problem():
    model = TinyComplexRNN(3)
    x = torch.randn(4, 6, dtype=DT)
    y = torch.randn(4, 6, dtype=DT)
    return model, x, y


def test_dense_matches_torch_func_hessian_mlp():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), chunk_size=7, progress=False)
    torch.testing.assert_close(op.dense(), _mlp_reference(model, x, y), rtol=1e-10, atol=1e-12)
    assert op.num_hvps == op.num_params == 26
    assert op.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert op.offsets["2.weight"] == (16, 24)


@pytest.mark.parametrize("parametrized_c", [False, True])
def test_complex_parameters_enter_through_real_view(parametrized_c):
    model = TinyComplexRNN(3, parametrized_c=parametrized_c)
    x, y = torch.randn(4, 6, dtype=DT), torch.randn(4, 6, dtype=DT)
    op = HessianOperator(model, mse, (x, y), progress=False)
    theta = op.flat_parameters()
    ref = hessian(complex_rnn_reference(model, x, y))(theta)
    torch.testing.assert_close(op.dense(), ref, rtol=1e-10, atol=1e-12)
    blocks = {b.name: b for b in op.blocks}
    assert blocks["lam"].is_complex and blocks["lam"].real_shape == (3, 2)
    if parametrized_c:
        assert "parametrizations.C.original0" in blocks
    # unflatten gives back the parameters
    torch.testing.assert_close(op.unflatten(theta)["lam"], model.lam.detach())


@pytest.mark.parametrize("backend", ["reverse-over-reverse", "autograd"])
def test_backends_agree(backend, complex_rnn_problem):
    model, x, y = complex_rnn_problem
    ref = HessianOperator(model, mse, (x, y), progress=False)
    other = HessianOperator(model, mse, (x, y), backend=backend, progress=False)
    v = torch.randn(3, ref.num_params, dtype=DT)
    torch.testing.assert_close(other.hvp(v), ref.hvp(v), rtol=1e-10, atol=1e-12)
    assert other.backend == backend


def test_matvec_shapes_and_errors():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), progress=False)
    h = _mlp_reference(model, x, y)
    v = torch.randn(op.num_params, dtype=DT)
    torch.testing.assert_close(op @ v, h @ v)
    m = torch.randn(op.num_params, 2, dtype=DT)
    torch.testing.assert_close(op @ m, h @ m)
    with pytest.raises(ValueError, match="length 26"):
        op.hvp(torch.randn(5, dtype=DT))
    with pytest.raises(ValueError, match="unknown parameter"):
        HessianOperator(model, mse, (x, y), param_names=["nope"])
    with pytest.raises(ValueError, match="pair"):
        HessianOperator(model, mse, x)
    mixed = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1).double())
    with pytest.raises(TypeError, match="one real dtype"):
        HessianOperator(mixed, mse, (x, y))


def test_param_names_restricts_to_a_sub_block():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), param_names=["2.weight", "2.bias"], progress=False)
    full = _mlp_reference(model, x, y)
    torch.testing.assert_close(op.dense(), full[16:, 16:], rtol=1e-10, atol=1e-12)


def test_no_hidden_eval_and_no_leftover_grad():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.0),
                                torch.nn.Linear(4, 1)).to(DT)
    model.train()
    x, y = torch.randn(5, 3, dtype=DT), torch.randn(5, 1, dtype=DT)
    op = HessianOperator(model, mse, (x, y), progress=False)
    op.dense()
    op.eigsh(2)
    op.hutchinson(4)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("block_size", [1, 4])
def test_lanczos_top_eigenvalues_match_exact_spectrum(block_size, complex_rnn_problem):
    model, x, y = complex_rnn_problem
    op = HessianOperator(model, mse, (x, y), progress=False)
    exact, vecs = torch.linalg.eigh(op.dense())
    top = exact.flip(0)[:4]
    values, vectors = op.eigsh(4, block_size=block_size)
    torch.testing.assert_close(values, top, rtol=1e-6, atol=0)
    # eigenvectors up to sign (the top eigenvalues of this problem are simple)
    overlap = (vectors.T @ vecs.flip(1)[:, :4]).diagonal().abs()
    torch.testing.assert_close(overlap, torch.ones(4, dtype=DT), rtol=0, atol=1e-6)


def test_lanczos_wide_spectrum_and_which():
    # eigenvalues spread over 6 orders of magnitude plus negative ones (indefinite)
    spectrum = torch.cat([torch.logspace(0, -6, 12, dtype=DT), -torch.tensor([0.5, 2.0], dtype=DT),
                          torch.zeros(66, dtype=DT)])
    a = spd_with_spectrum(spectrum)
    op = HessianOperator(*quadratic(a), progress=False)
    la, _ = op.eigsh(10)
    torch.testing.assert_close(la, spectrum[:10], rtol=1e-6, atol=0)
    lm, _ = op.eigsh(2, which="LM")
    torch.testing.assert_close(lm, torch.tensor([-2.0, 1.0], dtype=DT), rtol=1e-6, atol=0)
    sa, _ = op.eigsh(1, which="SA")
    torch.testing.assert_close(sa, torch.tensor([-2.0], dtype=DT), rtol=1e-6, atol=0)
    sc, _ = op.eigsh(3, method="scipy")
    torch.testing.assert_close(sc, spectrum[:3], rtol=1e-6, atol=0)


def test_lanczos_degenerate_eigenvalues():
    # repeated top eigenvalue and an operator smaller than the default basis
    spectrum = torch.tensor([3.0, 3.0, 3.0, 1.0, 0.5, 0.1], dtype=DT)
    op = HessianOperator(*quadratic(spd_with_spectrum(spectrum)), progress=False)
    for bs in (1, 2):
        values, vectors = op.eigsh(4, block_size=bs)
        torch.testing.assert_close(values, spectrum[:4], rtol=1e-6, atol=0)
        torch.testing.assert_close(vectors.T @ vectors, torch.eye(4, dtype=DT), atol=1e-8,
                                   rtol=0)


def test_hutchinson_within_error_bars(complex_rnn_problem):
    model, x, y = complex_rnn_problem
    op = HessianOperator(model, mse, (x, y), progress=False)
    h = op.dense()
    est = op.hutchinson(300, seed=1)
    z = (est.diag - h.diagonal()).abs() / est.diag_stderr
    assert float(z.max()) < 4.5, z
    fro_sq = float((h * h).sum())
    assert abs(est.frobenius_sq - fro_sq) < 4 * est.frobenius_sq_stderr
    mass = float(h.diagonal().norm()) / fro_sq**0.5
    assert abs(est.diagonal_mass - mass) < 4 * est.diagonal_mass_stderr
    assert est.diagonal_mass_stderr < 0.1
    with pytest.deprecated_call(match="hutchinson"):  # deprecated forwarders, same numbers
        d, se = op.hutchinson_diagonal(300, seed=1)
    torch.testing.assert_close(d, est.diag)
    with pytest.deprecated_call(match="hutchinson"):
        f, fse = op.frobenius_norm_sq(300, seed=1)
    assert f == est.frobenius_sq and fse == est.frobenius_sq_stderr


def test_debiased_diagonal_norm_is_unbiased_where_plugin_is_not():
    a = spd_with_spectrum(torch.linspace(0.1, 2.0, 30, dtype=DT), seed=3)
    op = HessianOperator(*quadratic(a), chunk_size=64, progress=False)
    m = 5
    true = float((a.diagonal() ** 2).sum())
    fro = float((a * a).sum())
    debiased, plugin = [], []
    for seed in range(400):
        est = op.hutchinson(m, seed=seed)
        debiased.append(est.diag_norm_sq)
        plugin.append(float((est.diag**2).sum()))
    debiased, plugin = torch.tensor(debiased), torch.tensor(plugin)
    se = float(debiased.std() / len(debiased) ** 0.5)
    assert abs(float(debiased.mean()) - true) < 4 * se
    # plug-in bias (||H||_F^2 - ||diag H||^2) / m, far outside the error bar
    assert abs(float(plugin.mean()) - true - (fro - true) / m) < 4 * float(
        plugin.std() / len(plugin) ** 0.5)
    assert float(plugin.mean()) - true > 10 * se


def test_runs_on_device(device):
    model = mlp().to(device)
    x = torch.randn(6, 3, dtype=DT, device=device)
    y = torch.randn(6, 2, dtype=DT, device=device)
    op = HessianOperator(model, mse, (x, y), progress=False)
    h = op.dense()
    assert h.device.type == device.type
    values, vectors = op.eigsh(2)
    assert values.device.type == device.type
    torch.testing.assert_close(values, torch.linalg.eigvalsh(h).flip(0)[:2], rtol=1e-6, atol=0)
    if device.type == "cpu":
        with pytest.raises(ValueError, match="device"):
            HessianOperator(model, mse, (x.to("meta"), y))


class _OldStyleSquare(torch.autograd.Function):
    """An autograd.Function without setup_context: torch.func refuses it, autograd does not."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class _OldStyleModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=DT))

    def forward(self, x):
        return (x * _OldStyleSquare.apply(self.w)).sum(-1)


def test_auto_backend_falls_back_with_a_warning():
    x = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=DT)
    model = _OldStyleModel()
    op = HessianOperator(model, mse, (x, torch.zeros(2, dtype=DT)), progress=False)
    with pytest.warns(RuntimeWarning, match="fell back"):
        h = op.dense()
    assert op.backend == "autograd"
    theta = op.flat_parameters()
    ref = hessian(lambda w: mse((x * w * w).sum(-1), torch.zeros(2, dtype=DT)))(theta)
    torch.testing.assert_close(h, ref)


def test_loss_at_is_the_operators_loss_and_torch_func_takes_its_hessian():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), progress=False)
    theta = op.flat_parameters()
    assert float(op.loss_at(theta)) == pytest.approx(op.loss(), rel=1e-14)
    torch.testing.assert_close(hessian(op.loss_at)(theta), _mlp_reference(model, x, y),
                               rtol=1e-10, atol=1e-12)
    moved = theta + 0.1  # any point, not only the operator's
    assert float(op.loss_at(moved)) != pytest.approx(op.loss())


def test_batched_products_says_whether_blocks_ran_under_vmap():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), progress=False)
    op.dense()
    assert op.batched_products is True
    x2 = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=DT)
    old = HessianOperator(_OldStyleModel(), mse, (x2, torch.zeros(2, dtype=DT)), progress=False)
    with pytest.warns(RuntimeWarning, match="fell back"):
        old.dense()
    assert old.batched_products is False and "looped" in repr(old)


def test_dense_cache_and_in_place_symmetrisation():
    model, x, y = _mlp_problem()
    op = HessianOperator(model, mse, (x, y), chunk_size=5, progress=False)
    raw = op.dense(symmetrize=False)
    sym = op.dense()
    assert op.num_hvps == 2 * op.num_params  # no cache by default
    torch.testing.assert_close(sym, 0.5 * (raw + raw.T), rtol=0, atol=0)
    torch.testing.assert_close(sym, sym.T, rtol=0, atol=0)
    op.dense(cache=True)
    before = op.num_hvps
    again = op.dense()
    again.zero_()  # the caller owns the result; the cache is untouched
    torch.testing.assert_close(op.dense(), sym, rtol=0, atol=0)
    assert op.num_hvps == before


def test_hutchinson_restricted_to_one_block(complex_rnn_problem):
    model, x, y = complex_rnn_problem
    op = HessianOperator(model, mse, (x, y), progress=False)
    h = op.dense()
    s, e = op.offsets["lam"]
    est = op.hutchinson(200, seed=2, block="lam")
    assert bool((est.diag[:s] == 0).all()) and bool((est.diag[e:] == 0).all())
    z = (est.diag[s:e] - h.diagonal()[s:e]).abs() / est.diag_stderr[s:e]
    assert float(z.max()) < 4.5
    column_block = float((h[:, s:e] ** 2).sum())  # ||H[:, b]||_F^2
    assert abs(est.frobenius_sq - column_block) < 4 * est.frobenius_sq_stderr
    with pytest.raises(ValueError, match="unknown block"):
        op.hutchinson(10, block="nope")
    with pytest.raises(ValueError, match=">= 3"):
        op.hutchinson(2)
