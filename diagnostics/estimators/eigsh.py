r"""Extreme eigenpairs of a symmetric linear operator: block Lanczos (torch) or ARPACK (scipy)."""

from __future__ import annotations

from typing import Any

import torch

from diagnostics.estimators._lanczos import WHICH, lanczos_eigsh
from diagnostics.estimators.operator import (
    as_scipy_operator,
    check_symmetric,
    column_product,
    describe,
)

__all__ = ["Eigenpairs", "eigsh"]

_METHODS = ("lanczos", "scipy")


class Eigenpairs(tuple):
    """``(values, vectors)``, unpacked like a pair, with the solver's report in ``info``.

    Attributes:
        values: ``(k,)`` eigenvalues, best first.
        vectors: ``(P, k)`` unit eigenvectors, column ``i`` for ``values[i]``.
        info: ``method``, ``num_matvecs`` and ``converged``; Lanczos adds ``basis_size`` and
            ``max_residual`` (the largest relative residual
            $\\|A v_i - \\theta_i v_i\\| / \\max_j|\\theta_j|$ of the returned pairs).
    """

    info: dict

    def __new__(cls, values: torch.Tensor, vectors: torch.Tensor, info: dict) -> Eigenpairs:
        pair = super().__new__(cls, (values, vectors))
        pair.info = info
        return pair

    def __getnewargs__(self) -> tuple:  # pickling and copying keep the info
        return (self[0], self[1], self.info)

    @property
    def values(self) -> torch.Tensor:
        """Eigenvalues ``(k,)``, best first."""
        return self[0]

    @property
    def vectors(self) -> torch.Tensor:
        """Unit eigenvectors ``(P, k)``."""
        return self[1]


def _scipy_eigsh(operator: Any, n: int, k: int, which: str, tol: float | None, seed: int,
                 dtype: torch.dtype, device: torch.device) -> Eigenpairs:
    import numpy as np
    from scipy.sparse.linalg import eigsh as arpack_eigsh

    if not 1 <= k < n:
        raise ValueError(f"method='scipy' needs 1 <= k < {n}, got k={k}")
    scipy_op = as_scipy_operator(operator)
    count = [0]

    def matvec(x):
        count[0] += 1
        return scipy_op.matvec(x)

    counted = type(scipy_op)((n, n), matvec=matvec, rmatvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    values, vectors = arpack_eigsh(counted, k=k, which=which, v0=v0,
                                   tol=0.0 if tol is None else tol)
    order = np.argsort(-np.abs(values) if which == "LM" else
                       (values if which == "SA" else -values))
    values = torch.as_tensor(values[order].copy(), dtype=dtype, device=device)
    vectors = torch.as_tensor(vectors[:, order].copy(), dtype=dtype, device=device)
    return Eigenpairs(values, vectors,
                      {"method": "scipy", "num_matvecs": count[0], "converged": True})


def eigsh(
    operator: Any,
    k: int = 6,
    *,
    which: str = "LA",
    method: str = "lanczos",
    block_size: int = 1,
    tol: float | None = None,
    max_dim: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Eigenpairs:
    r"""Top-``k`` eigenpairs of a symmetric operator.

    ``method="lanczos"`` (default) runs block Lanczos on the operator's device and dtype:
    every new block of the Krylov basis $Q$ is orthogonalised twice against the whole basis
    (full reorthogonalisation: no ghost eigenvalues), the projected matrix $T = Q^\top A Q$ is
    filled from the computed inner products, and the basis grows until the wanted Ritz pairs
    $(\theta_i, Q s_i)$ have residuals $\|A Q s_i - \theta_i Q s_i\| \le$
    ``tol`` $\max_j|\theta_j|$, or reaches ``max_dim``. ``method="scipy"`` runs
    ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos, ARPACK) on
    :func:`~diagnostics.estimators.as_scipy_operator`, float64 on the CPU.

    The operator must be symmetric: a dense matrix is checked entry by entry, an operator that
    does not declare ``is_symmetric = True`` with two random probes (two products), and a
    non-symmetric one raises a ``ValueError`` (its Lanczos "eigenvalues" would be wrong without
    a word). **NaN is an error**: a matrix or a product holding NaN or Inf (for a
    :class:`~diagnostics.HessianOperator`, NaN or Inf in the loss, the parameters or the
    batch) raises a ``ValueError`` naming it.

    Args:
        operator: a symmetric operator (see :mod:`diagnostics.estimators.operator`).
        k: number of eigenpairs.
        which: ``"LA"`` (largest algebraic), ``"LM"`` (largest magnitude) or ``"SA"``
            (smallest algebraic).
        method: ``"lanczos"`` or ``"scipy"``.
        block_size: vectors per Lanczos block (one product of that many columns per
            iteration; for a Hessian they are vmapped and cost far less per vector).
        tol: relative residual tolerance; Lanczos default ``1e-8`` in float64, ``1e-4``
            otherwise; scipy default machine precision.
        max_dim: largest Lanczos basis (default ``min(P, max(20 k, 100 + 2 k))``).
        seed: seed of the random starting block (drawn on the CPU: the same on every rank).
        progress: show a tqdm bar (Lanczos).

    Returns:
        :class:`Eigenpairs`: unpacks as ``(values, vectors)``, ``(k,)`` best first and
        ``(P, k)`` unit columns; convergence details in ``.info``.

    References:
        Golub & Underwood, "The block Lanczos method for computing eigenvalues", Mathematical
        Software III, 1977; Lehoucq, Sorensen & Yang, "ARPACK Users' Guide", SIAM, 1998.

    Examples:
        >>> import torch
        >>> A = torch.diag(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64))
        >>> values, vectors = eigsh(A, 2)
        >>> values
        tensor([5., 3.], dtype=torch.float64)
        >>> eigsh(A, 1).info["converged"]
        True
    """
    n, dtype, device = describe(operator)
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    check_symmetric(operator, seed=seed)
    if method == "scipy":
        return _scipy_eigsh(operator, n, k, which, tol, seed, dtype, device)
    gen = torch.Generator().manual_seed(seed)
    values, vectors, details = lanczos_eigsh(
        column_product(operator, finite=True), n, k, which=which, block_size=block_size,
        tol=tol, max_dim=max_dim, dtype=dtype, device=device, generator=gen, progress=progress,
    )
    return Eigenpairs(values, vectors, {"method": "lanczos", **details})
