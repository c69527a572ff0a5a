"""Estimators that take any linear operator: Hutchinson, and eigensolvers for symmetric ones.

One concept per module:

* :mod:`~diagnostics.estimators.operator`: the protocol an operator follows (``shape``,
  ``A @ V``, optional ``dtype`` / ``device`` / ``is_symmetric`` / ``chunk_size``),
  :class:`FunctionOperator`, the symmetry check and the scipy adapter;
* :mod:`~diagnostics.estimators.probes`: the one random-probe draw (Rademacher);
* :mod:`~diagnostics.estimators.hutchinson`: diagonal and squared Frobenius norm;
* :mod:`~diagnostics.estimators.eigsh`: extreme eigenpairs (block Lanczos or scipy's ARPACK),
  the Lanczos iteration itself in a private module beside it.

A :class:`~diagnostics.HessianOperator` is one such operator; so is a dense tensor.
"""

from diagnostics.estimators.eigsh import Eigenpairs, eigsh
from diagnostics.estimators.hutchinson import HutchinsonEstimate, hutchinson
from diagnostics.estimators.operator import (
    FunctionOperator,
    LinearOperator,
    as_scipy_operator,
    check_symmetric,
)
from diagnostics.estimators.probes import rademacher

__all__ = [
    "LinearOperator",
    "FunctionOperator",
    "check_symmetric",
    "as_scipy_operator",
    "rademacher",
    "hutchinson",
    "HutchinsonEstimate",
    "eigsh",
    "Eigenpairs",
]
