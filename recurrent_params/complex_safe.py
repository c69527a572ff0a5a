"""A module base class whose dtype conversions keep complex tensors complex.

On torch 2.13, ``module.to(torch.float64)`` casts a complex parameter to float64 and silently
drops its imaginary part (only a warning is printed), and ``module.double()`` leaves it
complex64. Modules of this package that hold complex tensors inherit from
:class:`ComplexSafeModule`, which routes every conversion of a complex tensor through its real
view: ``.to(torch.float64)`` and ``.double()`` give complex128, ``.float()`` and
``.to(torch.float32)`` give complex64, and device moves are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["ComplexSafeModule"]


def _complex_safe(fn: Callable[[torch.Tensor], torch.Tensor]):
    """Wrap a tensor conversion so that complex tensors are converted through their real view."""

    def convert(t: torch.Tensor) -> torch.Tensor:
        if not t.is_complex():
            return fn(t)
        as_real = fn(torch.view_as_real(t))  # (..., 2), real
        if as_real.is_complex():  # the conversion asked for a complex dtype: apply it directly
            return fn(t)
        if not as_real.is_floating_point():  # e.g. an integer cast: leave the tensor alone
            return t
        return torch.view_as_complex(as_real.contiguous())

    return convert


class ComplexSafeModule(nn.Module):
    """``nn.Module`` whose ``to``/``double``/``float``/``half`` keep complex tensors complex.

    Only the tensors held directly by this module (and by children that also inherit from it)
    are protected; parametrization originals are real by construction in this package.

    Examples:
        >>> import torch
        >>> class Cell(ComplexSafeModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lam = torch.nn.Parameter(torch.tensor([0.5 + 0.25j]))
        >>> Cell().to(torch.float64).lam
        Parameter containing:
        tensor([0.5000+0.2500j], dtype=torch.complex128, requires_grad=True)
    """

    def _apply(self, fn, recurse=True):
        return super()._apply(_complex_safe(fn), recurse)
