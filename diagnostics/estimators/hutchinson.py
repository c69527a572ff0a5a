r"""Hutchinson's estimator of the diagonal and the squared Frobenius norm of any linear operator.

The operator only has to multiply (see :mod:`diagnostics.estimators.operator`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from diagnostics._progress import progress_bar
from diagnostics.estimators.operator import column_product, describe
from diagnostics.estimators.probes import rademacher

__all__ = ["HutchinsonEstimate", "hutchinson"]


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

    Neither estimate needs symmetry. **NaN in gives NaN out**: a product holding NaN or Inf
    (for a :class:`~diagnostics.HessianOperator`, NaN or Inf in the loss, the parameters or
    the batch) makes the estimates NaN; no error is raised.

    Args:
        operator: any operator (see :mod:`diagnostics.estimators.operator`).
        num_probes: $m$ (at least 3 for the error bars).
        seed: seed of the probes.
        block: restrict the probes to the coordinates ``start:stop``; ``diag`` is then the
            diagonal of that block (zeros elsewhere) and ``frobenius_sq`` estimates
            $\|A_{:,b}\|_F^2$.
        chunk_size: probes per product; default the operator's ``chunk_size`` or 32.
        progress: show a tqdm bar.

    Returns:
        A :class:`HutchinsonEstimate`.

    References:
        Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian
        smoothing splines", Commun. Stat. Simul. Comput. 18(3), 1989; Bekas, Kokiopoulou &
        Saad, "An estimator for the diagonal of a matrix", Appl. Numer. Math. 57, 2007.

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
    n, dtype, device = describe(operator)
    chunk = int(chunk_size or getattr(operator, "chunk_size", 32))
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    if block is not None and not 0 <= block[0] < block[1] <= n:
        raise ValueError(f"block must satisfy 0 <= start < stop <= {n}, got {block}")
    product = column_product(operator)
    gen = torch.Generator().manual_seed(seed)
    us, fs = [], []
    starts = range(0, num_probes, chunk)
    for s in progress_bar(starts, progress and num_probes > chunk, "Hutchinson", len(starts)):
        z = rademacher(min(chunk, num_probes - s), n, generator=gen, dtype=dtype, device=device,
                       span=block)  # (b, P)
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
