"""The flat real vector of a module's parameters: where each tensor lives, and back again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ParameterBlock", "parameter_layout", "flatten_parameters", "unflatten_vector"]


@dataclass(frozen=True)
class ParameterBlock:
    """Where one parameter tensor lives in the flat vector of a :class:`HessianOperator`.

    Attributes:
        name: name in ``model.named_parameters()`` (e.g. ``parametrizations.B.original0``).
        start: first index in the flat vector.
        stop: one past the last index.
        shape: shape of the parameter itself.
        is_complex: the parameter is complex; its entries appear as ``view_as_real`` pairs,
            so the block has shape ``shape + (2,)``.
    """

    name: str
    start: int
    stop: int
    shape: tuple[int, ...]
    is_complex: bool

    @property
    def numel(self) -> int:
        """Number of real coordinates of the block."""
        return self.stop - self.start

    @property
    def real_shape(self) -> tuple[int, ...]:
        """Shape of the block as a real tensor."""
        return (*self.shape, 2) if self.is_complex else self.shape


def _real(p: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(p) if p.is_complex() else p


def parameter_layout(
    named: Sequence[tuple[str, torch.Tensor]],
) -> tuple[list[ParameterBlock], torch.dtype, torch.device]:
    """The blocks of ``(name, parameter)`` pairs in order, and their one real dtype and device.

    Raises:
        TypeError: a parameter is not floating point, or they do not share one real dtype.
        ValueError: they live on several devices.
    """
    dtypes, devices, blocks, offset = set(), set(), [], 0
    for name, p in named:
        real = _real(p)
        if not real.is_floating_point():
            raise TypeError(f"parameter {name!r} has non-floating dtype {p.dtype}")
        dtypes.add(real.dtype)
        devices.add(p.device)
        blocks.append(ParameterBlock(name, offset, offset + real.numel(), tuple(p.shape),
                                     p.is_complex()))
        offset += real.numel()
    if len(dtypes) > 1:
        raise TypeError(f"all parameters must share one real dtype, got {sorted(map(str, dtypes))}")
    if len(devices) > 1:
        raise ValueError(f"parameters live on several devices: {sorted(map(str, devices))}")
    return blocks, dtypes.pop(), devices.pop()


def flatten_parameters(named: Sequence[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """The detached flat real vector ``(P,)`` (complex entries as interleaved pairs)."""
    return torch.cat([_real(p).detach().reshape(-1) for _, p in named])


def unflatten_vector(vector: torch.Tensor, blocks: Sequence[ParameterBlock]
                     ) -> dict[str, torch.Tensor]:
    """Split a flat ``(P,)`` vector into ``name -> tensor`` (complex blocks as complex)."""
    out = {}
    for b in blocks:
        chunk = vector[b.start : b.stop].reshape(b.real_shape)
        # unlike view_as_complex, any offset or stride works
        out[b.name] = torch.complex(chunk[..., 0], chunk[..., 1]) if b.is_complex else chunk
    return out
