r"""Estimators that take any symmetric linear operator: Hutchinson and block Lanczos.

They only multiply: an operator is anything with ``shape == (P, P)`` and ``A @ V`` for a
matrix ``V`` of ``k`` columns ``(P, k)`` (a dense tensor, a :class:`~diagnostics.HessianOperator`,
or a later Gauss-Newton or Fisher operator), plus, optionally, ``dtype``, ``device`` and a
``hvp(rows)`` method taking row blocks ``(k, P)`` (used when present, it saves two
transposes). Whatever an operator does inside its product (vmapped HVPs, a reduction over
the ranks of a process group) they inherit unchanged; with a product that returns the same
values on every rank, they return the same values on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from diagnostics._lanczos import lanczos_eigsh

__all__ = ["HutchinsonEstimate", "hutchinson", "eigsh"]


@dataclass
class HutchinsonEstimate:
    r"""Hutchinson estimates of $\mathrm{diag}\,H$ and $\|H\|_F^2$ from the same probes.

    With Rademacher probes $z_k$ ($k = 1..m$), $u_k = z_k \odot H z_k$ and
    $f_k = \|H z_k\|^2$: $\hat d = \frac1m\sum_k u_k$ estimates $\mathrm{diag}\,H$ and
    $\hat F = \frac1m \sum_k f_k$ estimates $\|H\|_F^2$, both without bias. The plug-in
    $\|\hat d\|^2$ is biased upward by $(\|H\|_F^2 - \|\mathrm{diag}\,H\|^2)/m$; the debiased
    $\widehat{D} = (m\|\hat d\|^2 - \hat F)/(m - 1)$ is unbiased, and the diagonal mass
    $\hat r = \sqrt{\max(\widehat D, 0)/\hat F}$ carries a jackknife (leave-one-probe-out)
    standard error.

    Attributes:
        diag: estimate of the diagonal, shape ``(P,)``.
        diag_stderr: per-coordinate standard error of ``diag``, shape ``(P,)``.
        frobenius_sq: estimate of $\|H\|_F^2$.
        frobenius_sq_stderr: its standard error.
        diag_norm_sq: debiased estimate of $\|\mathrm{diag}\,H\|_2^2$ (may be negative when the
            diagonal is negligible).
        diagonal_mass: $\hat r$.
        diagonal_mass_stderr: jackknife standard error of $\hat r$.
        num_probes: $m$.
    """

    diag: torch.Tensor
    diag_stderr: torch.Tensor
    frobenius_sq: float
    frobenius_sq_stderr: float
    diag_norm_sq: float
    diagonal_mass: float
    diagonal_mass_stderr: float
    num_probes: int

    def __repr__(self) -> str:
        return (
            f"HutchinsonEstimate(num_probes={self.num_probes}, "
            f"frobenius_sq={self.frobenius_sq:.4g} ± {self.frobenius_sq_stderr:.2g}, "
            f"diagonal_mass={self.diagonal_mass:.4f} ± {self.diagonal_mass_stderr:.4f})"
        )

    def to_dict(self) -> dict:
        """Scalars only (the diagonal itself stays a tensor attribute)."""
        return {
            "frobenius_sq": self.frobenius_sq,
            "frobenius_sq_stderr": self.frobenius_sq_stderr,
            "diag_norm_sq": self.diag_norm_sq,
            "diagonal_mass": self.diagonal_mass,
            "diagonal_mass_stderr": self.diagonal_mass_stderr,
            "num_probes": self.num_probes,
        }


def _describe(operator: Any) -> tuple[int, torch.dtype, torch.device]:
    shape = getattr(operator, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"expected a square operator with a shape (P, P), got "
                         f"{type(operator).__name__} with shape {shape}")
    dtype = getattr(operator, "dtype", torch.float64)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"the operator's dtype must be a real torch dtype, got {dtype}")
    device = torch.device(getattr(operator, "device", "cpu"))
    return int(shape[0]), dtype, device


def _row_product(operator: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``rows (k, P) -> rows of A v`` through ``hvp`` when the operator has one, else ``@``."""
    hvp = getattr(operator, "hvp", None)
    if callable(hvp):
        return lambda rows: hvp(rows, progress=False)
    return lambda rows: (operator @ rows.T).T


def _progress(iterable, enabled: bool, desc: str, total: int):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, disable=None)  # off if no TTY


def hutchinson(
    operator: Any,
    num_probes: int = 100,
    *,
    seed: int = 0,
    block: tuple[int, int] | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> HutchinsonEstimate:
    r"""Hutchinson estimates of $\mathrm{diag}\,A$ and $\|A\|_F^2$ from Rademacher probes.

    With probes $z_k \in \{-1, 1\}^P$ ($k = 1..m$), $\mathrm{diag}\,A \approx \frac1m
    \sum_k z_k \odot A z_k$ and $\|A\|_F^2 \approx \frac1m\sum_k \|A z_k\|^2$, both unbiased;
    the diagonal mass $\|\mathrm{diag}\,A\|_2/\|A\|_F$ comes from the debiased
    $\|\mathrm{diag}\,A\|^2$ estimate with a jackknife error bar (see
    :class:`HutchinsonEstimate`). The probes are drawn on the CPU from ``seed`` (the same on
    every rank of a process group), in blocks of ``chunk_size`` products.

    Args:
        operator: a symmetric operator (see the module docstring).
        num_probes: $m$ (at least 3 for the error bars).
        seed: seed of the probes.
        block: restrict the probes to the coordinates ``start:stop``; ``diag`` is then the
            diagonal of that block (zeros elsewhere) and ``frobenius_sq`` estimates
            $\|A_{:,b}\|_F^2$.
        chunk_size: probes per product; default the operator's ``chunk_size`` or 32.
        progress: show a tqdm bar.

    Returns:
        A :class:`HutchinsonEstimate`.

    Examples:
        >>> import torch
        >>> A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
        >>> est = hutchinson(A, 10)
        >>> est.diag  # exact for a diagonal matrix: z * (A z) = diag(A) when z_i^2 = 1
        tensor([1., 2., 3.], dtype=torch.float64)
        >>> est.frobenius_sq, est.diagonal_mass
        (14.0, 1.0)
    """
    if num_probes < 3:
        raise ValueError(f"num_probes must be >= 3 for error bars, got {num_probes}")
    n, dtype, device = _describe(operator)
    chunk = int(chunk_size or getattr(operator, "chunk_size", 32))
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    mask = None
    if block is not None:
        s, e = block
        if not 0 <= s < e <= n:
            raise ValueError(f"block must satisfy 0 <= start < stop <= {n}, got {block}")
        mask = torch.zeros(n, dtype=dtype, device=device)
        mask[s:e] = 1.0
    product = _row_product(operator)
    gen = torch.Generator().manual_seed(seed)
    us, fs = [], []
    starts = range(0, num_probes, chunk)
    for s in _progress(starts, progress and num_probes > chunk, "Hutchinson", len(starts)):
        b = min(chunk, num_probes - s)
        z = torch.randint(0, 2, (b, n), generator=gen).to(dtype) * 2 - 1
        z = z.to(device)  # (b, P)
        if mask is not None:
            z = z * mask
        hz = product(z)  # (b, P)
        us.append(z * hz)
        fs.append((hz * hz).sum(dim=1))
    u = torch.cat(us).to(torch.float64)  # (m, P)
    f = torch.cat(fs).to(torch.float64)  # (m,)
    m = num_probes
    diag = u.mean(0)
    diag_stderr = u.std(0, unbiased=True) / m**0.5
    fro = f.mean()
    fro_se = f.std(unbiased=True) / m**0.5

    def mass(total_u: torch.Tensor, total_f: torch.Tensor, count: int):
        d = total_u / count
        fr = total_f / count
        dn = (count * (d * d).sum(-1) - fr) / (count - 1)
        return dn, torch.sqrt(dn.clamp(min=0) / fr)

    dn, r = mass(u.sum(0), f.sum(), m)
    # jackknife over probes
    loo_u = u.sum(0, keepdim=True) - u  # (m, P)
    loo_f = f.sum() - f  # (m,)
    _, r_loo = mass(loo_u, loo_f, m - 1)
    r_se = ((m - 1) / m * ((r_loo - r_loo.mean()) ** 2).sum()) ** 0.5
    return HutchinsonEstimate(
        diag=diag.to(dtype), diag_stderr=diag_stderr.to(dtype),
        frobenius_sq=float(fro), frobenius_sq_stderr=float(fro_se), diag_norm_sq=float(dn),
        diagonal_mass=float(r), diagonal_mass_stderr=float(r_se), num_probes=m,
    )


def eigsh(
    operator: Any,
    k: int = 6,
    *,
    which: str = "LA",
    block_size: int = 1,
    tol: float | None = None,
    max_dim: int | None = None,
    seed: int = 0,
    progress: bool = False,
    info: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Top-``k`` eigenpairs of a symmetric operator by block Lanczos.

    Every new block of the Krylov basis $Q$ is orthogonalised twice against the whole basis
    (full reorthogonalisation: no ghost eigenvalues), the projected matrix
    $T = Q^\top A Q$ is filled from the computed inner products, and the basis grows until
    the wanted Ritz pairs $(\theta_i, Q s_i)$ have residuals
    $\|A Q s_i - \theta_i Q s_i\| \le$ ``tol`` $\max_j|\theta_j|$, or reaches ``max_dim``.

    Args:
        operator: a symmetric operator (see the module docstring).
        k: number of eigenpairs.
        which: ``"LA"`` (largest algebraic), ``"LM"`` (largest magnitude) or ``"SA"``
            (smallest algebraic).
        block_size: vectors per Lanczos block (one product per iteration).
        tol: relative residual tolerance; default ``1e-8`` in float64, ``1e-4`` otherwise.
        max_dim: largest basis (default ``min(P, max(20 k, 100 + 2 k))``).
        seed: seed of the random starting block (drawn on the CPU: the same on every rank).
        progress: show a tqdm bar.
        info: if given, filled with ``num_matvecs``, ``basis_size``, ``max_residual`` and
            ``converged``.

    Returns:
        ``(values, vectors)``: ``(k,)`` best first and ``(P, k)`` unit columns.

    Examples:
        >>> import torch
        >>> A = torch.diag(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64))
        >>> values, vectors = eigsh(A, 2)
        >>> values
        tensor([5., 3.], dtype=torch.float64)
    """
    n, dtype, device = _describe(operator)
    gen = torch.Generator().manual_seed(seed)
    values, vectors, details = lanczos_eigsh(
        _row_product(operator), n, k, which=which, block_size=block_size, tol=tol,
        max_dim=max_dim, dtype=dtype, device=device, generator=gen, progress=progress,
    )
    if info is not None:
        info.update(details)
    return values, vectors
