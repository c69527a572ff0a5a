r"""Radii of transition derivatives: the quantity that the Local Stability Condition fixes.

For a transition $s \mapsto f(s)$ of a network (between layers, or between time steps of a
recurrent layer) and a batch of states $s_b$, the radius is

$$\bar\rho = \frac{1}{B}\sum_{b=1}^{B} \rho\big(M_b\big), \qquad
M_b = \frac{\partial f(s)_b}{\partial s_b},\qquad \rho(M) = \max_i |\mathrm{eig}_i(M)|.$$

**Non-square transitions** ($M_b \in \mathbb{R}^{m\times n}$, $m \ne n$, e.g. an encoder from
the input to the first state) use the *square restriction*: $\rho$ of the leading
$k\times k$ block $M_b[:k, :k]$ with $k=\min(m, n)$. It equals $\rho(M_b)$ when $M_b$ is square,
scales linearly when the driving tensor is scaled, and is the deterministic counterpart of
the random square sub-matrix used by the reference (whose sampling made the radii noisy).

Two paths compute $\rho(M_b)$, with the same value:

* ``"exact"``: the per-sample Jacobians by forward mode (``torch.func.jvp`` on the $k$ unit
  tangents, batched as replicated rows) and ``torch.linalg.eigvals``;
* ``"matrix_free"``: a restarted Arnoldi iteration on $M_b^\top$ (the same spectrum),
  batched over the samples, which never forms $M_b$: each product $M_b^\top v_b$ is a
  backward pass through one graph of the transition built per call. The radius is the
  largest Ritz value modulus of the Krylov basis $Q_b$ (Krylov dimension 32, at most 4
  restarts, relative residual $10^{-2}$ by default); with gradients enabled it is
  $\rho(Q_b^\top M_b Q_b)$, taken on Arnoldi's own projected matrix and differentiated through
  a few second-order products (one per nonzero singular value of
  $\partial\rho/\partial(Q_b^\top M_b Q_b)$, usually 2). ``transition_radii(...,
  warm_start=...)`` starts Arnoldi from given vectors (the previous pre-training step's Ritz
  vectors) with 3/4 of the Krylov dimension.

``"auto"`` picks the exact path when $k \le$ ``max_exact``.

Both paths take $\rho$ of their matrix with
:func:`~diagnostics.differentiable_spectral_radius`, whose gradient perturbs the dominant
eigenvalue only, so it stays defined when other eigenvalues repeat (a rank-1 Jacobian of a
width-1 input, zero eigenvalues) where the backward of ``torch.linalg.eigvals`` is singular.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import jvp

from diagnostics._arnoldi import arnoldi, low_rank
from diagnostics.distributed import ShardReducer, resolve_process_group, unwrap_model
from diagnostics.spectral_radius_grad import differentiable_spectral_radius
from diagnostics.transitions import (
    DEFAULT_SEQ_LEN,
    HALF_DTYPES,
    Transition,
    first_tensor,
    float32_map,
    gaussian_inputs,
    model_transitions,
)
from diagnostics.transitions._layer import check_finite as _check_finite

__all__ = ["spectral_radius", "transition_radii"]


def _restricted(fn: Callable[..., torch.Tensor], point: torch.Tensor,
                context: tuple[torch.Tensor, ...], k: int, width: int):
    """The square restriction ``g(u (B, k), *ctx) = fn([u, s_rest], *context)[:, :k]``
    (``width``: the output width of ``fn``; no slice is taken when it is ``k``)."""
    if k == point.shape[1]:
        if width == k:  # square: no slice node in the graph every product runs through
            return fn, tuple(context)
        return (lambda u, *ctx: fn(u, *ctx)[:, :k]), tuple(context)

    def g(u, rest, *ctx):
        return fn(torch.cat([u, rest], dim=1), *ctx)[:, :k]

    return g, (point[:, k:].detach(), *context)


#: rows per forward-mode call when Jacobian columns are batched as replicated rows
_MAX_ROWS = 1 << 14


def _apply_jvp(g, u: torch.Tensor, ctx: tuple, tangents: torch.Tensor) -> torch.Tensor:
    """``J_b t_{b,j}`` for tangents ``(B, k, c)``, batched as ``B*c`` replicated rows.

    Forward mode over replicated rows (no ``vmap``, whose fallbacks are slow for RNN cells);
    the result is differentiable in the tensors ``g`` reads. Returns ``(B, m, c)``.
    """
    batch, _, cols = tangents.shape
    per = max(1, _MAX_ROWS // max(cols, 1))
    outs = []
    for lo in range(0, batch, per):
        sl = slice(lo, lo + per)
        b = u[sl].shape[0]
        U = u[sl].repeat_interleave(cols, 0)  # (b*c, k)
        C = [c[sl].repeat_interleave(cols, 0) for c in ctx]
        T = tangents[sl].transpose(1, 2).reshape(b * cols, -1)  # (b*c, k)
        out = jvp(lambda v, C=C: g(v, *C), (U,), (T,))[1]  # (b*c, m)
        outs.append(out.reshape(b, cols, -1).transpose(1, 2))
    return torch.cat(outs, 0)


def _bilinear(g, u: torch.Tensor, ctx: tuple, left: torch.Tensor,
              right: torch.Tensor) -> torch.Tensor:
    """``sum_k left_{b,k}^T J_b right_{b,k}`` for ``(B, k, r)`` vectors, differentiable.

    Reverse over reverse: the ``r`` columns are batched as replicated rows, ``J^T left`` is
    one backward pass with ``create_graph=True``, dotted with ``right``. (Forward mode through
    ``torch.func.jvp`` costs several times more per row on CPU.) Returns ``(B,)``.
    """
    batch, _, cols = left.shape
    U = u.detach().repeat_interleave(cols, 0).requires_grad_(True)  # (B*r, k)
    C = [c.repeat_interleave(cols, 0) for c in ctx]
    with torch.enable_grad():
        out = g(U, *C)  # (B*r, k)
        if not out.requires_grad:
            return u.new_zeros(batch)
        L = left.transpose(1, 2).reshape(batch * cols, -1)
        R = right.transpose(1, 2).reshape(batch * cols, -1)
        jtl = torch.autograd.grad(out, U, L, create_graph=True, allow_unused=True)[0]
    if jtl is None:
        return u.new_zeros(batch)
    return (jtl * R).reshape(batch, -1).sum(1)


def _exact(g, u: torch.Tensor, ctx: tuple, name: str) -> torch.Tensor:
    k = u.shape[1]
    eye = torch.eye(k, dtype=u.dtype, device=u.device).expand(u.shape[0], k, k)
    jac = _apply_jvp(g, u, ctx, eye)  # (B, k, k)
    _check_finite(jac, f"the Jacobian of {name}")
    return differentiable_spectral_radius(jac)  # (B,)


#: weight of the random part of a warm start vector (against the unit previous Ritz vector)
_WARM_NOISE = 0.05
#: fraction of ``krylov_dim`` a warm-started Arnoldi pass runs with: at 3/4 the single pass is
#: as accurate as a cold one of the full dimension on an LSTM(256, 256, 5) (worst transition
#: 1.5e-2 relative vs 8.5e-3 cold; at 1/2 it was 4.9e-2, on the encoder), docs/benchmarks.md
_WARM_FRACTION = (3, 4)


def _matrix_free(g, u: torch.Tensor, ctx: tuple, krylov_dim: int, max_restarts: int,
                 tol: float, generator: torch.Generator | None, name: str,
                 start: torch.Tensor | None = None, want_vector: bool = False,
                 built: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Matrix-free radii ``(B,)`` and, with ``want_vector``, the dominant Ritz vectors.

    ``start`` (``(B, k)``, e.g. the Ritz vectors of the previous pre-training step) warm
    starts the iteration, which then runs with 3/4 of the Krylov dimension. ``built``:
    ``(leaf, g(leaf, *ctx))`` already computed with gradients at ``u`` (reused, not rebuilt).
    """
    u = u.detach()
    # Arnoldi on the transpose J^T (same spectrum): every product J_b^T v_b is one backward
    # pass through a graph built once, several times cheaper than re-running forward mode.
    if built is not None:
        ug, out = built
    else:
        with torch.enable_grad():
            ug = u.clone().requires_grad_(True)
            out = g(ug, *ctx)  # (B, k)

    def matvec(v):
        if not out.requires_grad:
            return torch.zeros_like(v)
        grad = torch.autograd.grad(out, ug, v, retain_graph=True, allow_unused=True)[0]
        return torch.zeros_like(v) if grad is None else grad

    u0 = torch.randn(u.shape, generator=generator).to(u)
    if start is not None:  # a unit warm vector plus a little of the random one
        tiny = torch.finfo(u.dtype).tiny
        start = start.detach().to(u)
        u0 = (start / start.norm(dim=1, keepdim=True).clamp_min(tiny)
              + _WARM_NOISE * u0 / u0.norm(dim=1, keepdim=True).clamp_min(tiny))
        krylov_dim = max(1, (krylov_dim * _WARM_FRACTION[0]) // _WARM_FRACTION[1])
    grad = torch.is_grad_enabled()
    with torch.no_grad():
        radius, Q, H, ritz = arnoldi(matvec, u0, krylov_dim, max_restarts, tol, generator,
                                      name, final_radius=not grad,
                                      want_vector=want_vector and not grad)
    if grad:
        radius, ritz = _projected_radius(g, u, ctx, Q, H, name)
    return radius, ritz


def _projected_radius(g, u: torch.Tensor, ctx: tuple, Q: torch.Tensor, H: torch.Tensor,
                      name: str) -> tuple[torch.Tensor, torch.Tensor]:
    r"""$\rho(Q^\top J Q)$, differentiable in the tensors ``g`` reads, for a few products.

    Arnoldi on $J^\top$ already gives $H = Q^\top J^\top Q$ (its Gram-Schmidt coefficients),
    so $\rho$ and $G = \partial\rho/\partial (Q^\top J Q)$ (the gradient of
    :func:`~diagnostics.differentiable_spectral_radius`, ties and all) are computed on the
    small $m\times m$ matrix $H^\top$ without the network. The chain rule through
    $(Q^\top J Q)_{ij} = q_i^\top J q_j$ then needs the gradient of
    $\sum_{ij} G_{ij}\, q_i^\top J q_j = \sum_k \sigma_k\,(Q a_k)^\top J\,(Q b_k)$ with
    $G = \sum_k \sigma_k a_k b_k^\top$ (`low_rank`): one second-order product
    (:func:`_bilinear`) per numerically nonzero singular value (2 for a simple complex pair,
    1 for a simple real one) instead of $m$ forward-mode JVPs for the whole projected
    matrix. The returned value is $\rho$; its gradient is exactly that of
    $\rho(Q^\top J Q)$ (the singular values dropped are below $m\,\epsilon\,\sigma_1$).

    Returns ``(rho (B,), ritz (B, k))``: the columns of $G$ span the real invariant subspace
    of the dominant eigenvalue(s) of $H$ ($G$ is the real part of $\bar u\,v^H$ up to a
    factor, with $H\bar u = \lambda\bar u$), so $Q$ times their sum weighted by the
    factors' norms is a vector of the dominant Ritz subspace, for free (a warm start).
    """
    Qd = Q.detach()  # (B, k, m)
    m = Qd.shape[2]
    Hm = H[:, :m, :m].transpose(1, 2).detach()  # Q^T J Q (to rounding)
    _check_finite(Hm, f"the projected Jacobian of {name}")
    with torch.enable_grad():
        leaf = Hm.clone().requires_grad_(True)
        rho = differentiable_spectral_radius(leaf)  # (B,)
        G = torch.autograd.grad(rho.sum(), leaf)[0]  # (B, m, m): d rho_b / d H_b
    rho = rho.detach()
    a, b = low_rank(G)  # G = a b^T
    left = Qd @ a  # (B, k, r)
    s = _bilinear(g, u, ctx, left, Qd @ b)  # (B,) = sum_ij G_ij (Q^T J Q)_ij
    ritz = (left * b.norm(dim=1, keepdim=True)).sum(-1)  # (B, k)
    return rho + (s - s.detach()), ritz


def spectral_radius(fn: Callable[..., torch.Tensor], point: torch.Tensor,
                    context: Sequence[torch.Tensor] = (), *, method: str = "auto",
                    max_exact: int = 128, krylov_dim: int = 32, max_restarts: int = 4,
                    tol: float = 1e-2, generator: torch.Generator | None = None,
                    name: str = "the transition") -> torch.Tensor:
    r"""Per-sample spectral radius of the Jacobian of a batched map at ``point``.

    ``fn(point, *context)`` maps ``(B, n) -> (B, m)`` with independent rows (see
    :class:`Transition`; it must accept any number of rows). Non-square Jacobians use the square
    restriction (leading $k\times k$ block, $k=\min(m,n)$; see the module docstring). The result
    is differentiable with respect to the tensors ``fn`` reads when gradients are enabled.

    Args:
        fn: the batched transition.
        point: ``(B, n)`` real states.
        context: further arguments of ``fn``, batched along dimension 0.
        method: ``"exact"``, ``"matrix_free"`` or ``"auto"`` (exact when $k \le$ ``max_exact``).
        max_exact: the largest size handled exactly by ``"auto"``.
        krylov_dim: Arnoldi subspace size (matrix-free).
        max_restarts: Arnoldi restarts at most (matrix-free); never loops longer.
        tol: relative residual at which the Arnoldi iteration stops (matrix-free).
        generator: random start vectors (matrix-free).
        name: how errors name the transition.

    Returns:
        ``(B,)`` radii, in the point's dtype; float32 for a float16 / bfloat16 point (torch
        has no 16-bit eigendecomposition: the map runs in 16 bits, seen through
        :func:`~diagnostics.transitions.float32_map`).

    Raises:
        FloatingPointError: when the point, the context, the map's output, the Jacobian or
            the radius is not finite (checked before any eigendecomposition).

    Examples:
        >>> import torch
        >>> A = torch.tensor([[0.0, 2.0], [-0.5, 0.0]])  # eigenvalues +-i
        >>> spectral_radius(lambda s: s @ A.T, torch.zeros(3, 2))
        tensor([1., 1., 1.])
    """
    return _radius_and_ritz(fn, point, context, method=method, max_exact=max_exact,
                            krylov_dim=krylov_dim, max_restarts=max_restarts, tol=tol,
                            generator=generator, name=name)[0]


def _radius_and_ritz(fn, point, context=(), *, method="auto", max_exact=128, krylov_dim=32,
                     max_restarts=4, tol=1e-2, generator=None, name="the transition",
                     start=None, want_vector=False):
    """:func:`spectral_radius`, plus the dominant Ritz vectors ``(B, k)`` of the matrix-free
    path when ``want_vector`` (else ``None``); ``start`` warm-starts that path when its
    shape is the restricted point's (see :func:`_matrix_free`)."""
    if point.ndim != 2:
        raise ValueError(f"point must be (batch, n), got shape {tuple(point.shape)}")
    if not point.is_floating_point():
        raise TypeError(f"point must be a real floating tensor, got {point.dtype}")
    if method not in ("auto", "exact", "matrix_free"):
        raise ValueError(f"method must be 'auto', 'exact' or 'matrix_free', got {method!r}")
    context = tuple(c.detach() for c in context)
    if point.dtype in HALF_DTYPES:  # no 16-bit eigvals / QR: the map seen through float32
        fn, point = float32_map(fn, point.dtype), point.float()
    _check_finite(point, f"the point of {name}")
    for i, c in enumerate(context):
        _check_finite(c, f"context tensor {i} of {name}")
    # the matrix-free path needs the graph of fn at the point; when the map is square (the
    # usual transition) that graph is built here, once, and serves both the checks below and
    # the Arnoldi products (one forward per transition instead of two)
    graph = method != "exact" and not (method == "auto" and point.shape[1] <= max_exact)
    with torch.set_grad_enabled(graph):
        leaf = point.detach().clone().requires_grad_(True) if graph else point
        out = fn(leaf, *context)
    if out.ndim != 2 or out.shape[0] != point.shape[0]:
        raise ValueError(f"fn must map (B, n) to (B, m); it returned shape {tuple(out.shape)} "
                         f"for a point of shape {tuple(point.shape)}")
    _check_finite(out, f"the output of {name}")
    width = out.shape[1]
    k = min(width, point.shape[1])
    built = (leaf, out) if graph and k == point.shape[1] == width else None
    del out  # a graph not reused is freed now
    g, ctx = _restricted(fn, point, context, k, width)
    u = point[:, :k].detach()
    if method == "exact" or (method == "auto" and k <= max_exact):
        radius, ritz = _exact(g, u, ctx, name), None
    else:
        radius, ritz = _matrix_free(g, u, ctx, krylov_dim, max_restarts, tol, generator, name,
                                    start=start if start is not None and
                                    start.shape == u.shape else None,
                                    want_vector=want_vector, built=built)
    _check_finite(radius, f"the radius of {name}")
    return radius, ritz


def _radii_tensors(transitions: Sequence[Transition],
                   warm_start: dict[str, torch.Tensor] | None = None,
                   **kwargs) -> dict[str, torch.Tensor]:
    out = {}
    for t in transitions:
        if t.name in out:
            raise ValueError(f"two transitions are named {t.name!r}")
        radius, ritz = _radius_and_ritz(
            t.fn, t.point, t.context, name=f"transition {t.name!r}",
            start=None if warm_start is None else warm_start.get(t.name),
            want_vector=warm_start is not None, **kwargs)
        out[t.name] = radius.mean()
        if warm_start is not None:
            if ritz is None:
                warm_start.pop(t.name, None)
            else:
                warm_start[t.name] = ritz.detach()
    return out


def transition_radii(model: nn.Module | Sequence[Transition],
                     inputs: torch.Tensor | None = None, *, batch_size: int = 64,
                     seq_len: int = DEFAULT_SEQ_LEN, method: str = "auto",
                     max_exact: int = 128, generator: torch.Generator | None = None,
                     as_tensors: bool = False, process_group: Any = None,
                     warm_start: dict[str, torch.Tensor] | None = None,
                     **kwargs: Any) -> dict[str, float] | dict[str, torch.Tensor]:
    r"""Mean radius of every transition of a model, ``{name: mean over the batch of rho(M_b)}``.

    Args:
        model: a supported model (``nn.Sequential`` FFN, ``nn.RNN/GRU/LSTM``, stacks of cells,
            or a model with ``lsc_transitions``), or a list of :class:`Transition`.
        inputs: a batch in the model's layout; standard Gaussian inputs of the inferred shape
            (``batch_size`` samples, ``seq_len`` steps for recurrent models) when omitted.
        batch_size: size of the Gaussian batch.
        seq_len: length of the Gaussian sequences.
        method: see :func:`spectral_radius`.
        max_exact: see :func:`spectral_radius`.
        generator: randomness for inputs, time steps and start vectors.
        as_tensors: return 0-d tensors (differentiable when gradients are enabled) instead of
            floats.
        process_group: ``None`` (the default group when :mod:`torch.distributed` is
            initialised, else none), a ``ProcessGroup`` or ``"local"``. With a group, each
            rank measures its own shard of ``inputs`` (or its own Gaussian draw: give each
            rank its own ``generator``) and every rank gets the shard-size weighted mean over
            the group, the radius of the concatenated batch (a collective call). Tensors
            returned with ``as_tensors`` are differentiable in this rank's term only; see
            :meth:`diagnostics.ShardReducer.weighted_means`.
        warm_start: ``None``, or a dict ``{transition name: (B, k) start vectors}`` read and
            updated in place, for a sequence of measurements of slowly changing weights (the
            LSC pre-trainer's steps). A matrix-free transition whose entry has the shape of
            its restricted point starts Arnoldi from it (plus a random part of weight
            0.05) and runs with 3/4 of ``krylov_dim``: a start near the dominant
            eigenvector needs a smaller Krylov space for the same accuracy (measured on an
            ``nn.LSTM(256, 256, 5)``: docs/benchmarks.md, "LSC pre-training"). Every
            matrix-free transition's entry is then set to its dominant Ritz vector (the sum
            of its real and imaginary parts); exact transitions' entries are removed.
        **kwargs: passed to :func:`spectral_radius` (``krylov_dim``, ``tol``...).

    Returns:
        ``{transition name: mean radius}``: Python floats, or 0-d tensors with
        ``as_tensors=True`` (float32 for a float16 / bfloat16 model, see
        :func:`spectral_radius`); names are ``linear<i>`` for an FFN and ``layer<l>.time`` /
        ``layer<l>.depth`` (/ ``decoder``) for recurrent stacks.

    Raises:
        TypeError: ``warm_start`` is neither ``None`` nor a dict.

    References:
        Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
        arXiv 2308.12075.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
        >>> for m in net:
        ...     _ = nn.init.orthogonal_(m.weight)
        >>> {k: round(v, 4) for k, v in transition_radii(net).items()}
        {'linear0': 1.0, 'linear1': 1.0}
    """
    if warm_start is not None and not isinstance(warm_start, dict):
        raise TypeError("warm_start must be None or a dict {transition name: start vectors}, "
                        f"got {type(warm_start).__name__}")
    if isinstance(model, nn.Module):
        model = unwrap_model(model)  # a DDP model: measure its .module
        if inputs is None:
            inputs = gaussian_inputs(model, batch_size, seq_len, generator,
                                     like=first_tensor(model))
        transitions = model_transitions(model, inputs, generator)
    else:
        transitions = list(model)
    with torch.set_grad_enabled(as_tensors and torch.is_grad_enabled()):
        radii = _radii_tensors(transitions, method=method, max_exact=max_exact,
                               generator=generator, warm_start=warm_start, **kwargs)
        group = resolve_process_group(process_group)
        if group is not None:  # shard-size weighted means over the group
            sizes = {t.name: int(t.point.shape[0]) for t in transitions}
            reducer = ShardReducer(max(sizes.values(), default=0), process_group=group,
                                   device=transitions[0].point.device if transitions else "cpu",
                                   check=(len(sizes),))
            radii = reducer.weighted_means(radii, sizes)
    if as_tensors:
        return radii
    return {k: float(v) for k, v in radii.items()}
