"""Private: the Krylov pieces of the matrix-free radii (:mod:`diagnostics.radii`).

Restarted Arnoldi on a batch of operators (classical Gram-Schmidt twice), and the low-rank
factors of the radius's gradient with respect to the small projected matrix, so that the chain
rule back to the model needs a few second-order products instead of one per Krylov vector.
"""

from __future__ import annotations

import torch

from diagnostics.transitions._layer import check_finite as _check_finite

__all__ = ["arnoldi", "low_rank"]


def _norm(w: torch.Tensor) -> torch.Tensor:
    """The Euclidean norms of the rows of ``w`` (B, n)."""
    return torch.linalg.vector_norm(w, 2, 1)


def _orthonormalize(w: torch.Tensor, Q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical Gram-Schmidt twice: w (B, n) against the rows of Q (B, j, n)."""
    h = torch.bmm(Q, w.unsqueeze(-1)).squeeze(-1)  # (B, j)
    w = w - torch.bmm(h.unsqueeze(1), Q).squeeze(1)
    h2 = torch.bmm(Q, w.unsqueeze(-1)).squeeze(-1)
    w = w - torch.bmm(h2.unsqueeze(1), Q).squeeze(1)
    return w, h + h2


def arnoldi(matvec, u0: torch.Tensor, krylov_dim: int, max_restarts: int, tol: float,
             generator: torch.Generator | None, name: str = "the transition",
             final_radius: bool = True, want_vector: bool = False):
    """Restarted Arnoldi on a batch of operators; returns (radii (B,), basis (B, n, m),
    Hessenberg matrix (B, m + 1, m) of the last pass, dominant Ritz vectors (B, n) or None).

    The last pass that may run (``max_restarts`` reached, or ``m == n``) needs no Ritz
    vectors unless ``want_vector``: its radii come from ``eigvals``, or are not computed at
    all (``None``) with ``final_radius=False`` (the caller takes them from the returned
    matrix). With ``want_vector`` the real and imaginary parts of the dominant Ritz vector
    are returned summed (a real vector of its invariant plane: a start vector for the next
    call).
    """
    batch, n = u0.shape
    m = min(krylov_dim, n)
    v = u0 / u0.norm(dim=1, keepdim=True)
    eps = torch.finfo(u0.dtype).eps
    radius, Q = None, None
    passes = max(1, max_restarts)
    for attempt in range(passes):
        Q = u0.new_zeros(batch, m + 1, n)  # basis vectors as rows (contiguous slices)
        H = u0.new_zeros(batch, m + 1, m)
        Q[:, 0] = v
        for j in range(m):
            w = matvec(Q[:, j])  # (B, n)
            # (linalg.vector_norm, not Tensor.norm: the same kernel without the Python
            # dispatch of torch.functional.norm, a few % of the step at this size)
            scale = _norm(w).clamp_min(1e-300)
            w, h = _orthonormalize(w, Q[:, : j + 1])
            H[:, : j + 1, j] = h
            hn = _norm(w)  # (B,)
            broke = hn <= 1e3 * eps * scale  # invariant subspace found: exact Ritz values
            if j + 1 < n and bool(broke.any()):
                r = torch.randn(batch, n, generator=generator).to(u0)
                r, _ = _orthonormalize(r, Q[:, : j + 1])
                r, _ = _orthonormalize(r, Q[:, : j + 1])
                w = torch.where(broke[:, None], r, w)
                hn = torch.where(broke, torch.zeros_like(hn), hn)
                Q[:, j + 1] = w / w.norm(dim=1, keepdim=True).clamp_min(1e-300)
            else:
                torch.div(w, hn[:, None].clamp_min(1e-300), out=Q[:, j + 1])
            H[:, j + 1, j] = hn
        _check_finite(H, f"the Arnoldi matrix of {name}")
        last = attempt == passes - 1 or m == n  # no restart can follow
        if last and not want_vector:  # no Ritz vectors needed
            if final_radius:
                radius = torch.linalg.eigvals(H[:, :m, :m]).abs().amax(-1)
            break
        vals, vecs = torch.linalg.eig(H[:, :m, :m])  # (B, m), (B, m, m)
        idx = vals.abs().argmax(-1)  # (B,)
        rows = torch.arange(batch, device=u0.device)
        radius = vals[rows, idx].abs()  # (B,)
        y = vecs[rows, :, idx]  # (B, m)
        if last:
            break
        resid = H[:, m, m - 1].abs() * y[:, -1].abs()  # ||M x - theta x|| for the Ritz pair
        if bool((resid <= tol * radius.clamp_min(eps)).all()):
            break
        # restart from a random combination of the leading Ritz vectors (not the top one
        # alone), so that an eigenvalue of nearly the same modulus is not filtered out
        p = max(1, m // 3)
        top = vals.abs().argsort(-1, descending=True)[:, :p]  # (B, p)
        coef = torch.randn(batch, p, generator=generator).to(u0).abs() + 0.5
        phase = torch.rand(batch, p, generator=generator).to(u0) * 6.283185307179586
        coef = torch.polar(coef, phase)  # (B, p) complex
        Y = torch.gather(vecs, 2, top[:, None, :].expand(batch, m, p))  # (B, m, p)
        x = torch.einsum("bmn,bmp,bp->bn", Q[:, :m].to(vecs.dtype), Y, coef.to(vecs.dtype))
        v = x.real
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)
    ritz = None
    if want_vector:
        x = torch.bmm(y.unsqueeze(1), Q[:, :m].to(y.dtype)).squeeze(1)  # (B, n)
        ritz = x.real + x.imag
    return radius, Q[:, :m].transpose(1, 2), H, ritz


#: columns of the randomized range of d rho / dH tried before a full SVD (a simple dominant
#: eigenvalue gives rank 1 or 2, a tie of two complex pairs rank 4)
_RANGE_COLUMNS = 4


def low_rank(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)``, ``(B, m, r)`` each, with ``G = a b^T`` to rounding (``r`` as small as found).

    First a randomized range (``G Omega`` with a fixed Gaussian ``Omega`` of
    ``_RANGE_COLUMNS`` columns, orthonormalised: exact whenever ``rank G`` is at most that,
    checked), else the SVD truncated below ``m eps sigma_1``.
    """
    m = G.shape[-1]
    eps = torch.finfo(G.dtype).eps
    norm = torch.linalg.matrix_norm(G)  # (B,)
    p = min(m, _RANGE_COLUMNS)
    omega = torch.randn(m, p, generator=torch.Generator().manual_seed(0)).to(G)
    P = torch.linalg.qr(G @ omega)[0]  # (B, m, p)
    PtG = P.transpose(1, 2) @ G  # (B, p, m)
    if bool((torch.linalg.matrix_norm(G - P @ PtG) <= m * eps * norm).all()):
        # G Omega has the rank of G: the trailing columns of P beyond it carry rows of
        # P^T G at rounding level; keep the leading ones that matter in some sample
        sig = torch.linalg.vector_norm(PtG, dim=2) > m * eps * norm[:, None]  # (B, p)
        r = max(1, int((torch.arange(1, p + 1, device=G.device) * sig).amax()))
        return P[:, :, :r], PtG[:, :r].transpose(1, 2)
    U, S, Vh = torch.linalg.svd(G)  # (B, m, m), (B, m), (B, m, m)
    keep = S > m * eps * S[:, :1]
    r = max(1, int(keep.sum(1).max()))
    return U[:, :, :r] * (S[:, None, :r] * keep[:, None, :r]), Vh[:, :r].transpose(1, 2)
