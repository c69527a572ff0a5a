"""Set the effective value of a (possibly parametrized) tensor of a module."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["assign_"]


@torch.no_grad()
def assign_(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Make ``getattr(module, name)`` equal ``value``, in place and without autograd.

    A parametrized tensor is set through its parametrizations' ``right_inverse`` (so an
    ``ExpMag``-parametrized ``lam`` receives the new eigenvalues, not a new ``nu``); a plain
    parameter or buffer is overwritten with ``copy_`` so that optimisers keep tracking it.

    Args:
        module: the module that owns the tensor.
        name: attribute name, e.g. ``"lam"`` or ``"B"``.
        value: the new value; its shape must match the current one.

    Raises:
        TypeError: ``value`` is not a tensor.
        ValueError: if the shapes differ or ``name`` is not a tensor of ``module``, or the
            parametrization cannot reach ``value`` (e.g. an input matrix ``B`` normalised by
            $\\gamma(\\lambda) = 0$ at $|\\lambda| = 1$).

    Examples:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 1, bias=False)
        >>> assign_(layer, "weight", torch.tensor([[1.0, 2.0]]))
        >>> layer.weight.data
        tensor([[1., 2.]])
    """
    current = getattr(module, name, None)
    if not isinstance(current, torch.Tensor):
        raise ValueError(f"{type(module).__name__} has no tensor named {name!r}")
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"cannot assign {name!r}: expected a tensor of shape {tuple(current.shape)}, "
            f"got {type(value).__name__}"
        )
    if current.shape != value.shape:
        raise ValueError(
            f"cannot assign {name!r}: expected shape {tuple(current.shape)}, "
            f"got {tuple(value.shape)}"
        )
    if value.is_complex() and not current.is_complex():
        raise ValueError(
            f"cannot assign {name!r}: it is real ({current.dtype}) and the value is complex "
            f"({value.dtype}); the imaginary part would be dropped"
        )
    if parametrize.is_parametrized(module, name):
        setattr(module, name, value.to(device=current.device))
    else:
        current.copy_(value)
