"""Matrix-free radii: the warm start (``warm_start=``) and the low-rank radius gradient."""

import copy

import pytest
import torch
from torch import nn

from diagnostics import Transition, spectral_radius, transition_radii
from optim import LSCPretrainer


def _orthogonal(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]


def _dominant(n=60, seed=0):
    """A = V diag(2, values in [0, 0.9]) V^-1: radius 2, left eigenvector known."""
    g = torch.Generator().manual_seed(seed)
    V = torch.randn(n, n, generator=g, dtype=torch.float64) + 3 * torch.eye(n, dtype=torch.float64)
    lam = torch.cat([torch.tensor([2.0], dtype=torch.float64),
                     0.9 * torch.rand(n - 1, generator=g, dtype=torch.float64)])
    A = V @ torch.diag(lam) @ torch.linalg.inv(V)
    left = torch.linalg.inv(V)[0]  # left eigenvector of 2: left @ A = 2 left
    return A, left / left.norm()


def _transition(A, batch=3):
    point = torch.randn(batch, A.shape[0], dtype=torch.float64,
                        generator=torch.Generator().manual_seed(5))
    return Transition("lin", lambda s: s @ A.T, point, (), (), "time")


@pytest.mark.parametrize("grad", [False, True])
def test_warm_start_stores_the_dominant_ritz_vector_and_reuses_it(grad):
    A, left = _dominant()
    A = A.requires_grad_(grad)
    t = _transition(A)
    warm = {}
    with torch.set_grad_enabled(grad):
        first = transition_radii([t], method="matrix_free", krylov_dim=20, max_restarts=1,
                                 warm_start=warm, as_tensors=True,
                                 generator=torch.Generator().manual_seed(0))
    assert set(warm) == {"lin"} and warm["lin"].shape == (3, 60)
    # Arnoldi runs on J^T: its Ritz vector is the left eigenvector of J for the radius
    cos = (warm["lin"] @ left).abs() / warm["lin"].norm(dim=1)
    assert bool((cos > 1 - 1e-8).all())
    assert float(first["lin"].detach()) == pytest.approx(2.0, rel=1e-10)
    # warm: 3/4 of krylov_dim, started on the answer, still exact
    again = transition_radii([t], method="matrix_free", krylov_dim=20, max_restarts=1,
                             warm_start=warm, generator=torch.Generator().manual_seed(1))
    assert again["lin"] == pytest.approx(2.0, rel=1e-10)


def test_warm_start_ignores_a_vector_of_another_shape_and_drops_exact_transitions():
    A, _ = _dominant(n=40)
    t = _transition(A, batch=4)
    warm = {"lin": torch.ones(2, 40, dtype=torch.float64), "gone": torch.ones(1)}
    r = transition_radii([t], method="matrix_free", krylov_dim=40, warm_start=warm,
                         generator=torch.Generator().manual_seed(0))
    assert r["lin"] == pytest.approx(2.0, rel=1e-10)
    assert warm["lin"].shape == (4, 40) and "gone" in warm  # only measured names change
    transition_radii([t], method="exact", warm_start=warm)
    assert "lin" not in warm  # no Ritz vector on the exact path


def _rotation_blocks(radii_and_angles, n, seed):
    """Q blockdiag(r R(theta), ..., small) Q^T: complex pairs of given moduli."""
    D = torch.zeros(n, n, dtype=torch.float64)
    i = 0
    for r, th in radii_and_angles:
        c, s = torch.cos(torch.tensor(th)), torch.sin(torch.tensor(th))
        D[i:i + 2, i:i + 2] = r * torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        i += 2
    g = torch.Generator().manual_seed(seed)
    D[i:, i:] = 0.3 * torch.rand(n - i, n - i, generator=g, dtype=torch.float64).triu()
    Q = _orthogonal(n, seed)
    return Q @ D @ Q.T


@pytest.mark.parametrize("blocks", [
    [(1.5, 0.7)],  # a simple complex pair: d rho / dH of rank 2
    [(1.5, 0.7), (1.5, 1.9), (1.5, 2.6)],  # three tied pairs: rank 6, the SVD fallback
])
def test_matrix_free_gradient_equals_exact_gradient_for_complex_and_tied_radii(blocks):
    n = 24
    W = _rotation_blocks(blocks, n, seed=3).requires_grad_(True)
    point = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def fn(s):
        return s @ W.T

    grads, values = [], []
    for method in ("exact", "matrix_free"):
        W.grad = None
        r = spectral_radius(fn, point, method=method, krylov_dim=n,
                            generator=torch.Generator().manual_seed(0))
        r.sum().backward()
        grads.append(W.grad.clone())
        values.append(r.detach())
    torch.testing.assert_close(values[0], values[1], rtol=1e-10, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-9)


@pytest.mark.filterwarnings("ignore:LSC.*floor:RuntimeWarning")
def test_pretrainer_warm_start_resumes_exactly_and_is_emptied_by_a_shuffle():
    torch.manual_seed(0)
    base = nn.LSTM(3, 6, num_layers=2, batch_first=True)
    kwargs = dict(batch_size=8, seq_len=5, progress=False, seed=3, max_steps=10,
                  grad_step=True, shuffle_every=4, method="matrix_free", krylov_dim=8)
    full_model = copy.deepcopy(base)
    full = LSCPretrainer(full_model, **kwargs).run()
    first = LSCPretrainer(copy.deepcopy(base), **kwargs)
    first.run(num_steps=3)  # no shuffle yet: the warm vectors are held
    assert set(first.krylov_start) == {f"layer{l}.{k}" for l in (0, 1)
                                       for k in ("time", "depth")}
    ckpt = copy.deepcopy(first.state_dict())
    resumed_model = copy.deepcopy(base)
    second = LSCPretrainer(resumed_model, **kwargs)
    second.load_state_dict(ckpt)
    resumed = second.run()
    assert resumed.history == full.history
    for a, b in zip(full_model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    shuffled = LSCPretrainer(copy.deepcopy(base), **kwargs)
    shuffled.run(num_steps=4)  # the 4th step ends with a shuffle (shuffle_every=4)
    assert shuffled.krylov_start == {}


def test_warm_start_of_the_wrong_type_is_refused():
    A, _ = _dominant(n=10)
    with pytest.raises(TypeError, match="warm_start must be None or a dict"):
        transition_radii([_transition(A)], warm_start=[1, 2])
