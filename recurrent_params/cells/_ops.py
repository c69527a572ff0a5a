"""Private complex-aware matrix helpers shared by the diagonal cells."""

from __future__ import annotations

import torch


def input_proj(x: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``x @ B.T`` for real ``x (..., d_in)``, real or complex ``B (N, d_in)``: ``(..., N)``."""
    if B.is_complex():
        return torch.complex(x @ B.real.T, x @ B.imag.T)  # (..., N)
    return x @ B.T


def real_output(h: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """``Re(h @ C.T)`` for ``h (..., N)`` and ``C (d_out, N)``, without a complex matmul."""
    if not h.is_complex():
        return h @ (C.real if C.is_complex() else C).T
    if not C.is_complex():
        return h.real @ C.T
    return h.real @ C.real.T - h.imag @ C.imag.T  # (..., d_out)
