r"""The linear-operator protocol every estimator takes, and its adapters.

An **operator** $A$ of size $P$ is anything with

* ``shape == (P, P)``;
* ``A @ V``: the product with a vector ``(P,)`` or with a matrix ``(P, k)`` of ``k`` columns,
  returning the same shape;
* optionally ``dtype`` (a real floating torch dtype; default ``torch.float64``) and ``device``
  (default the CPU): the dtype and device of the vectors it is multiplied with;
* optionally ``is_symmetric`` (``True`` when symmetric by construction, which skips the probe
  check of :func:`check_symmetric`) and ``chunk_size`` (columns per product the estimators
  use by default).

A dense ``torch.Tensor`` qualifies, and so do :class:`~diagnostics.HessianOperator` and
:class:`FunctionOperator` (an operator from a product function, for preconditioned or
restricted views of another operator). Whatever an operator does inside its product
(vmapped Hessian-vector products, a reduction over the ranks of a process group) the
estimators inherit unchanged; with a product that returns the same values on every rank, they
return the same values on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "LinearOperator",
    "FunctionOperator",
    "describe",
    "column_product",
    "check_symmetric",
    "as_scipy_operator",
]


@runtime_checkable
class LinearOperator(Protocol):
    """What the estimators need from an operator (see :mod:`diagnostics.estimators.operator`)."""

    shape: tuple[int, int]

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor: ...


class FunctionOperator:
    r"""A linear operator given by its product with a block of columns.

    Args:
        matmat: ``V (P, k) -> A V (P, k)``.
        size: $P$.
        dtype: dtype of the vectors.
        device: device of the vectors.
        is_symmetric: declare $A = A^\top$ (skips the probe check of :func:`check_symmetric`).
        chunk_size: columns per product the estimators use by default.

    Examples:
        >>> import torch
        >>> A = FunctionOperator(lambda v: 2.0 * v, 3, dtype=torch.float64, is_symmetric=True)
        >>> A @ torch.ones(3, dtype=torch.float64)
        tensor([2., 2., 2.], dtype=torch.float64)
    """

    def __init__(
        self,
        matmat: Callable[[torch.Tensor], torch.Tensor],
        size: int,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        is_symmetric: bool = False,
        chunk_size: int = 32,
    ) -> None:
        if not callable(matmat):
            raise TypeError(f"matmat must be callable, got {type(matmat).__name__}")
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._matmat = matmat
        self.shape = (int(size), int(size))
        self.dtype = dtype
        self.device = torch.device(device)
        self.is_symmetric = is_symmetric
        self.chunk_size = chunk_size

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        if other.dim() == 1:
            return self._matmat(other[:, None])[:, 0]
        return self._matmat(other)

    def __repr__(self) -> str:
        return f"FunctionOperator(size={self.shape[0]}, dtype={self.dtype}, device={self.device})"


def describe(operator: Any) -> tuple[int, torch.dtype, torch.device]:
    """Check that ``operator`` follows the protocol and return ``(P, dtype, device)``.

    Raises:
        ValueError: the operator is not square (or has no ``shape``), or a dense tensor holds
            NaN or Inf.
        TypeError: no ``@`` product, or a dtype that is not a real floating dtype.
    """
    shape = getattr(operator, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"expected a square operator with a shape (P, P), got "
                         f"{type(operator).__name__} with shape {shape}")
    if not hasattr(operator, "__matmul__"):
        raise TypeError(f"the operator must support A @ V, got {type(operator).__name__}")
    dtype = getattr(operator, "dtype", torch.float64)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"the operator's dtype must be a real torch dtype, got {dtype}")
    device = torch.device(getattr(operator, "device", "cpu"))
    return int(shape[0]), dtype, device


def column_product(operator: Any, *, finite: bool = False
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``rows (k, P) -> rows (k, P)`` of $A v$, through the operator's ``@`` on columns.

    Args:
        operator: an operator (see the module docstring).
        finite: raise a ``ValueError`` when a product holds NaN or Inf (the eigensolvers need
            finite products; the Hutchinson estimates pass NaN through).
    """

    def product(rows: torch.Tensor) -> torch.Tensor:
        out = (operator @ rows.T).T
        if finite and not bool(torch.isfinite(out).all()):
            raise ValueError(
                "the operator's product holds NaN or Inf (for a HessianOperator: NaN or Inf in "
                "the loss, the parameters or the batch); eigenvalues need finite products"
            )
        return out

    return product


def check_symmetric(operator: Any, *, seed: int = 0) -> None:
    r"""Raise a ``ValueError`` unless ``operator`` is symmetric (and, if dense, finite).

    A dense tensor is checked entry by entry: NaN or Inf, then
    $\max|A - A^\top| \le \sqrt{\varepsilon}\,\max|A|$ ($\varepsilon$ the dtype's machine
    epsilon). An operator that sets ``is_symmetric = True`` is trusted. Any other operator is
    probed with two random vectors $u, v$ (two products): $|u^\top A v - v^\top A u| \le
    \sqrt{\varepsilon}\,(\|u\|\|Av\| + \|v\|\|Au\|)$, which catches a non-symmetric operator
    with probability one but cannot prove symmetry.

    Args:
        operator: an operator (see the module docstring).
        seed: seed of the probe vectors (drawn on the CPU: the same on every rank).
    """
    n, dtype, device = describe(operator)
    eps = torch.finfo(dtype).eps ** 0.5
    if isinstance(operator, torch.Tensor):
        if not bool(torch.isfinite(operator).all()):
            raise ValueError("the matrix holds NaN or Inf: its eigenvalues are undefined")
        gap = float((operator - operator.T).abs().max())
        if gap > eps * float(operator.abs().max()):
            raise ValueError(
                f"eigsh needs a symmetric matrix; max|A - A^T| = {gap:.3g} (relative to "
                f"max|A| = {float(operator.abs().max()):.3g}); for a general matrix use "
                "torch.linalg.eigvals"
            )
        return
    if getattr(operator, "is_symmetric", False):
        return
    gen = torch.Generator().manual_seed(seed)
    uv = torch.randn(2, n, dtype=dtype, generator=gen).to(device)  # (2, P)
    a_uv = column_product(operator, finite=True)(uv)  # (2, P): A u, A v
    u, v = uv
    au, av = a_uv
    gap = float((u @ av - v @ au).abs())
    scale = float(u.norm() * av.norm() + v.norm() * au.norm())
    if gap > eps * scale:
        raise ValueError(
            f"eigsh needs a symmetric operator; two random probes give u'Av - v'Au = {gap:.3g} "
            f"(scale {scale:.3g}); set is_symmetric=True on the operator only if it is"
        )


def as_scipy_operator(operator: Any):
    """A ``scipy.sparse.linalg.LinearOperator`` of ``operator`` (float64 numpy in and out).

    Products are computed in the operator's dtype and device; ``rmatvec`` is ``matvec`` (the
    operator is taken to be symmetric).
    """
    import numpy as np
    from scipy.sparse.linalg import LinearOperator as ScipyOperator

    n, dtype, device = describe(operator)
    product = column_product(operator, finite=True)

    def matmat(x):
        rows = torch.as_tensor(np.asarray(x, dtype=np.float64).T.copy(), dtype=dtype,
                               device=device)  # (k, P)
        return product(rows).T.to(torch.float64).cpu().numpy()

    def matvec(x):
        return matmat(np.asarray(x).reshape(-1, 1)).reshape(-1)

    return ScipyOperator((n, n), matvec=matvec, matmat=matmat, rmatvec=matvec,
                         dtype=np.float64)
