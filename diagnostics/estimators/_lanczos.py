"""Block Lanczos with full reorthogonalisation for a symmetric operator given by a matmat."""

from __future__ import annotations

from collections.abc import Callable

import torch

from diagnostics._progress import progress_bar

__all__ = ["WHICH", "lanczos_eigsh", "select_ritz"]

WHICH = ("LA", "LM", "SA")


def select_ritz(values: torch.Tensor, k: int, which: str) -> torch.Tensor:
    """Indices of the ``k`` wanted Ritz values, best first (``values`` ascending)."""
    if which == "LA":
        order = torch.argsort(values, descending=True)
    elif which == "SA":
        order = torch.argsort(values)
    elif which == "LM":
        order = torch.argsort(values.abs(), descending=True)
    else:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    return order[:k]


def _orthonormal_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """QR of the rows of ``x`` (b, n): returns ``q`` (b, n) with orthonormal rows and ``r``."""
    q, r = torch.linalg.qr(x.T)  # (n, b), (b, b)
    return q.T, r


def lanczos_eigsh(
    matmat: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    k: int,
    *,
    which: str = "LA",
    block_size: int = 1,
    tol: float | None = None,
    max_dim: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Top-``k`` eigenpairs of a symmetric operator by block Lanczos.

    Every new block is orthogonalised twice against the whole basis (full
    reorthogonalisation, so no ghost eigenvalues), and the projected matrix is filled from the
    computed inner products rather than from the three-term recurrence alone. The basis grows
    until the ``k`` wanted Ritz pairs have residual norms below ``tol * max|theta|`` or it
    reaches ``max_dim`` (at most ``n``, where the result is exact).

    Args:
        matmat: maps a block ``(b, n)`` of row vectors to ``(b, n)``, rows ``H v``.
        n: operator size.
        k: number of eigenpairs.
        which: ``"LA"`` largest algebraic, ``"LM"`` largest magnitude, ``"SA"`` smallest.
        block_size: vectors per block (one ``matmat`` call each iteration).
        tol: relative residual tolerance; default ``1e-8`` (float64) or ``1e-4``.
        max_dim: largest basis; default ``min(n, max(20 k, 100 + 2 k))`` rounded to blocks.
        dtype: dtype of the basis (that of the operator).
        device: device of the basis.
        generator: random generator of the starting block.
        progress: show a tqdm bar over iterations.

    Returns:
        ``(values, vectors, info)``: values ``(k,)`` best first, vectors ``(n, k)`` with unit
        columns, ``info`` with ``num_matvecs``, ``basis_size``, ``max_residual``, ``converged``.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if tol is None:
        tol = 1e-8 if dtype == torch.float64 else 1e-4
    if max_dim is None:
        max_dim = max(20 * k, 100 + 2 * k)
    max_dim = min(n, max(max_dim, k))
    b = min(block_size, n)

    basis = torch.zeros(max_dim + b, n, dtype=dtype, device=device)  # (m_max, n)
    proj = torch.zeros(max_dim + b, max_dim + b, dtype=torch.float64)  # projected matrix T
    start = torch.randn(b, n, dtype=dtype, generator=generator, device="cpu").to(device)
    block, _ = _orthonormal_rows(start)
    m = 0  # basis vectors whose images are known
    basis[:b] = block
    num_matvecs = 0
    info = {"num_matvecs": 0, "basis_size": 0, "max_residual": float("inf"), "converged": False}

    bar = progress_bar(None, progress, "Lanczos", max_dim)  # None when off
    values = vectors = None
    try:
        while m < max_dim:
            width = min(b, max_dim - m)
            block = basis[m : m + width]  # (w, n)
            w = matmat(block)  # (w, n)
            num_matvecs += width
            known = basis[: m + width]  # (m + w, n)
            coeff = w @ known.T  # (w, m + w)
            w = w - coeff @ known
            again = w @ known.T
            w = w - again @ known
            coeff = coeff + again
            proj[: m + width, m : m + width] = coeff.T.to(torch.float64).cpu()
            m += width
            if bar is not None:
                bar.update(width)

            # next block from the residual; a (near) invariant subspace restarts at random
            nxt, r = _orthonormal_rows(w)
            scale = max(float(proj[:m, :m].abs().max()), torch.finfo(dtype).tiny)
            restarted = False
            if m < max_dim:
                diag_r = r.diagonal().abs()
                small = max(1e-2 * tol, 1e3 * torch.finfo(dtype).eps) * scale
                if bool((diag_r <= small).any()):
                    # (near) invariant subspace: complete the block with directions orthogonal
                    # to the basis; the coupling is then measured, not taken from the QR
                    bad = diag_r <= small
                    fresh = nxt.clone()
                    noise = torch.randn(width, n, dtype=dtype, generator=generator).to(device)
                    fresh[bad] = noise[bad]
                    for _ in range(2):
                        fresh = fresh - (fresh @ basis[:m].T) @ basis[:m]
                    nxt, _ = _orthonormal_rows(fresh)
                    r = nxt @ w.T  # (w, w)
                    restarted = True  # the Krylov space was invariant: look for more copies
                nw = min(width, max_dim - m)
                basis[m : m + nw] = nxt[:nw]
                proj[m : m + nw, m - width : m] = r[:nw].to(torch.float64).cpu()
            tm = proj[:m, :m]
            tm = 0.5 * (tm + tm.T)
            if m < k:
                continue
            theta, s = torch.linalg.eigh(tm)  # ascending
            idx = select_ritz(theta, k, which)
            # residual of a Ritz pair: the part of H Q s outside span(Q) = r @ s_last_block
            s_last = s[m - width : m][:, idx]  # (w, k)
            resid = (r.to(torch.float64).cpu() @ s_last).norm(dim=0)  # (k,)
            max_res = float(resid.max()) / max(float(theta.abs().max()), 1e-300)
            values, svec = theta[idx], s[:, idx]
            info.update(max_residual=max_res)
            if (max_res <= tol and not restarted) or m >= max_dim:
                break
    finally:
        if bar is not None:
            bar.close()
    vectors = basis[:m].T @ svec.to(dtype=dtype, device=device)  # (n, k)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    info.update(num_matvecs=num_matvecs, basis_size=m, converged=info["max_residual"] <= tol
                or m >= n)
    return values.to(dtype=dtype, device=device), vectors, info
