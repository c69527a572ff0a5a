"""differentiable_spectral_radius: the value of eigvals, the gradient of the dominant eigenvalue
(autograd-exact where that is defined), finite where eigenvalues repeat (issue 21)."""

import pytest
import torch
from torch import nn

from diagnostics import differentiable_spectral_radius, spectral_radius
from optim import LSCPretrainer


def _autograd_reference(m):
    m = m.detach().clone().requires_grad_(True)
    torch.linalg.eigvals(m).abs().amax(-1).sum().backward()
    return m.grad


def _grad(m):
    m = m.detach().clone().requires_grad_(True)
    differentiable_spectral_radius(m).sum().backward()
    return m.grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradient_equals_autograd_through_eigvals_on_simple_spectra(dtype):
    gen = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 7, 20):
        m = torch.randn(6, n, n, dtype=dtype, generator=gen)
        torch.testing.assert_close(differentiable_spectral_radius(m),
                                   torch.linalg.eigvals(m).abs().amax(-1), rtol=1e-12, atol=0)
        torch.testing.assert_close(_grad(m), _autograd_reference(m), rtol=0, atol=1e-8)


def test_gradient_equals_torch_func_grad():
    m = torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = torch.func.grad(lambda a: torch.linalg.eigvals(a).abs().amax(-1))(m)
    torch.testing.assert_close(_grad(m), ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradient_matches_finite_differences(dtype):
    gen = torch.Generator().manual_seed(2)
    m = torch.randn(3, 9, 9, dtype=dtype, generator=gen)
    e = torch.randn(3, 9, 9, dtype=dtype, generator=gen)
    h = 1e-6
    fd = (differentiable_spectral_radius(m + h * e)
          - differentiable_spectral_radius(m - h * e)) / (2 * h)
    # PyTorch's convention: d rho = Re sum conj(G) dM
    directional = (_grad(m).conj() * e).real.sum((-2, -1))
    # the radii are independent per matrix, so the batch gradient splits per row
    torch.testing.assert_close(directional, fd, rtol=1e-6, atol=1e-9)


def test_real_matrix_with_dominant_conjugate_pair():
    m = torch.tensor([[0.0, 2.0, 0.1], [-0.5, 0.0, 0.3], [0.0, 0.0, 0.2]], dtype=torch.float64)
    vals = torch.linalg.eigvals(m)
    assert vals.abs().topk(2).values.diff().abs().item() == 0  # a tie, broken by the formula
    torch.testing.assert_close(_grad(m), _autograd_reference(m), rtol=0, atol=1e-10)


def _degenerate():  # float64 closed forms
    j = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 2.0]], dtype=torch.float64)
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    b = torch.tensor([0.3, 0.7, -1.0], dtype=torch.float64)
    return {k: (m.double(), g.double()) for k, (m, g) in {
        # closed forms: the gradient of the mean modulus of the tied eigenvalues
        "identity": (torch.eye(3), torch.eye(3, dtype=torch.float64) / 3),
        "diag221": (torch.diag(torch.tensor([2.0, 2.0, 1.0])),
                    torch.diag(torch.tensor([0.5, 0.5, 0.0]))),
        "jordan": (j, torch.eye(3, dtype=torch.float64) / 3),
        "jordan_negative": (-j, -torch.eye(3, dtype=torch.float64) / 3),
        # rank 1 (a width-1 input): lam = b.a is simple, left eigenvector b, right a, and
        # d|lam| / dM = sign(lam) b a^T / (b.a)
        "rank1": (torch.outer(a, b), torch.outer(b, a) / (b @ a).abs()),
        "zero": (torch.zeros(3, 3), torch.zeros(3, 3)),
        "nilpotent": (torch.triu(torch.ones(3, 3), 1), torch.zeros(3, 3)),
    }.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(_degenerate()))
def test_degenerate_matrices_give_the_closed_form_gradient(name, dtype):
    m, expected = _degenerate()[name]
    m = m.to(dtype)
    # the autograd of eigvals cannot do these (singular eigenvector matrix or NaN)
    g = _grad(m)
    assert torch.isfinite(g).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(g, expected.to(dtype), rtol=0, atol=tol)


def test_rank1_gradient_matches_finite_differences():
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    b = torch.tensor([0.3, 0.7, -1.0], dtype=torch.float64)
    m = torch.outer(a, b)
    e = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    h = 1e-7
    fd = (differentiable_spectral_radius(m + h * e)
          - differentiable_spectral_radius(m - h * e)) / (2 * h)
    torch.testing.assert_close((_grad(m) * e).sum(), fd, rtol=1e-6, atol=1e-9)


def test_repeated_semisimple_gradient_is_the_mean_of_the_tied_directional_derivatives():
    # rho(diag(2,2,1) + h E) = 2 + h max(E00, E11) + O(h^2): the mean of the two one-sided
    # derivatives along E and -E is (E00 + E11) / 2, which is <G, E>
    e = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    m = torch.diag(torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64))
    g = _grad(m)
    torch.testing.assert_close((g * e).sum(), (e[0, 0] + e[1, 1]) / 2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_semisimple_cluster_gives_the_mean_over_its_eigenspace(dtype):
    # 25 eigenvalues 1 (saturated forget gates, as in issue 21's LSTM time Jacobian) among 40
    # smaller ones: rho(Q diag(d) Q^T) has the gradient Q_25 Q_25^T / 25, the projector onto
    # the eigenspace over its dimension (a high power of M - I underflows: not used)
    gen = torch.Generator().manual_seed(7)
    q = torch.linalg.qr(torch.randn(65, 65, dtype=torch.float64, generator=gen))[0]
    d = torch.cat([torch.ones(25, dtype=torch.float64),
                   torch.rand(40, dtype=torch.float64, generator=gen) - 0.5])
    m = (q * d) @ q.T
    expected = q[:, :25] @ q[:, :25].T / 25
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(_grad(m.to(dtype)), expected.to(dtype), rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64,
                                   torch.complex128])
def test_mixed_batch_is_finite_and_agrees_where_simple(dtype):
    gen = torch.Generator().manual_seed(5)
    simple = torch.randn(4, 4, generator=gen, dtype=torch.float64).to(dtype)
    batch = torch.stack([simple, torch.eye(4).to(dtype), torch.zeros(4, 4, dtype=dtype),
                         torch.triu(torch.ones(4, 4), 1).to(dtype),
                         torch.diag(torch.tensor([3.0, 3.0, -1.0, 0.0])).to(dtype),
                         torch.outer(torch.arange(1.0, 5.0), torch.ones(4)).to(dtype)])
    batch = batch.reshape(2, 3, 4, 4)  # any leading shape
    m = batch.clone().requires_grad_(True)
    rho = differentiable_spectral_radius(m)
    assert rho.shape == (2, 3) and rho.dtype == m.real.dtype
    rho.sum().backward()
    assert m.grad.dtype == dtype and torch.isfinite(torch.view_as_real(m.grad)
                                                    if m.is_complex() else m.grad).all()
    tol = 1e-4 if dtype in (torch.float32, torch.complex64) else 1e-10
    torch.testing.assert_close(m.grad[0, 0], _autograd_reference(simple), rtol=0, atol=tol)
    torch.testing.assert_close(m.grad[0, 1], torch.eye(4, dtype=dtype) / 4, rtol=0, atol=tol)
    torch.testing.assert_close(m.grad[0, 2], torch.zeros(4, 4, dtype=dtype))


def test_homogeneity_holds_for_every_gradient_including_fallbacks():
    # rho(cM) = c rho(M) implies <G, M> = rho, whichever branch produced G
    gen = torch.Generator().manual_seed(6)
    v = torch.randn(5, 5, dtype=torch.float64, generator=gen)
    jordan = torch.diag(torch.full((5,), 1.5, dtype=torch.float64)) + torch.diag(
        torch.ones(4, dtype=torch.float64), 1)
    similar = v @ jordan @ torch.linalg.inv(v)  # numerically defective, eigenvalues split
    batch = torch.stack([similar, jordan, torch.randn(5, 5, dtype=torch.float64, generator=gen),
                         torch.eye(5, dtype=torch.float64)])
    g = _grad(batch)
    assert torch.isfinite(g).all()
    torch.testing.assert_close((g * batch).sum((-2, -1)), differentiable_spectral_radius(batch),
                               rtol=1e-6, atol=1e-9)


def test_without_gradients_it_is_eigvals():
    m = torch.randn(3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(differentiable_spectral_radius(m),
                                   torch.linalg.eigvals(m).abs().amax(-1))


def test_bad_inputs_are_named():
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        differentiable_spectral_radius(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="square"):
        differentiable_spectral_radius(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="floating"):
        differentiable_spectral_radius(torch.eye(2, dtype=torch.int64))


def test_spectral_radius_of_a_transition_with_a_defective_zero_eigenvalue():
    # the exact path of spectral_radius on a Jacobian with a simple dominant eigenvalue 2 and
    # a zero eigenvalue in a 3x3 Jordan block (a nilpotent part, as saturated or rank-deficient
    # Jacobians have), on which the backward of eigvals raises "input matrix is singular";
    # left and right eigenvectors of 2: u = (1, 1/2, 1/4, 1/8) and v = e_1, u^T v = 1
    w = torch.tensor([[2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0],
                      [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    r = spectral_radius(lambda s: s @ w.T, torch.zeros(3, 4), method="exact")
    r.sum().backward()
    expected = torch.zeros(4, 4)
    expected[:, 0] = 3 * torch.tensor([1.0, 0.5, 0.25, 0.125])  # 3 samples times u v^T
    torch.testing.assert_close(w.grad, expected)


def test_lsc_steps_on_a_width1_lstm_with_a_defective_depth_jacobian():
    # issue 21: the pre-trainer's loss.backward() raised "torch.linalg.solve: (Batch element
    # 0): The solver failed because the input matrix is singular" (through eigvals) on this
    # 2-layer LSTM with a width-1 input, whose layer-1 depth Jacobian is D W with W below
    # (only the output gate reads h0): a simple eigenvalue 2 D_11 and a defective 0
    torch.manual_seed(0)
    n = 4
    lstm = nn.LSTM(1, n, num_layers=2, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l1.zero_()
        lstm.weight_ih_l1[3 * n:] = torch.tensor([[2.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                  [0, 0, 0, 0]])
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    x = torch.randn(8, 6, 1, generator=torch.Generator().manual_seed(0))
    pre = LSCPretrainer(lstm, inputs=[x], target=1.0, max_steps=3, progress=False)
    result = pre.run(2)  # paused: the model keeps the weights of the last gradient step
    assert len(result.history) == 2 and result.reason.startswith("paused")
    for k, v in lstm.state_dict().items():
        assert torch.isfinite(v).all(), k
    # the gradient steps moved the layer-1 input kernel (its radius is far below the target)
    assert not torch.equal(lstm.weight_ih_l1, before["weight_ih_l1"])
