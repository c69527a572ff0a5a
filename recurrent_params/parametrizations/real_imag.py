"""Store a complex tensor as two real originals (real and imaginary parts)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RealImag"]


class RealImag(nn.Module):
    r"""Complex tensor from two real originals: $z = a + i\,b$.

    Register it on a complex parameter so that what the module stores (and what optimisers,
    ``state_dict`` and ``module.to(dtype)`` see) is real:
    ``parametrize.register_parametrization(module, "B", RealImag())`` replaces the complex
    ``B`` by ``parametrizations.B.original0`` (real part) and ``original1`` (imaginary part).

    Examples:
        >>> import torch
        >>> from torch.nn.utils import parametrize
        >>> m = torch.nn.Linear(1, 1)
        >>> m.B = torch.nn.Parameter(torch.tensor([1.0 + 2.0j]))
        >>> _ = parametrize.register_parametrization(m, "B", RealImag())
        >>> m.parametrizations.B.original1
        Parameter containing:
        tensor([2.], requires_grad=True)
        >>> m.B
        tensor([1.+2.j], grad_fn=<ComplexBackward0>)
    """

    def original_names(self, count: int) -> tuple[str, ...]:
        """Readable names of the two originals."""
        return ("re", "im")

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """Combine the two real originals into one complex tensor."""
        if real.is_complex() or imag.is_complex():
            raise ValueError(
                "RealImag expects two real originals but got a complex tensor; it may have been "
                "registered on top of another parametrization that already returns complex values"
            )
        return torch.complex(real, imag)

    def right_inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a complex tensor into its real and imaginary parts."""
        if not z.is_complex():
            raise ValueError(f"RealImag expects a complex tensor, got dtype {z.dtype}")
        return z.real.clone(), z.imag.clone()
