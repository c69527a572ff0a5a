"""Private complex-aware matrix helpers shared by the diagonal cells.

Both helpers use one real matmul on interleaved (re, im) layouts instead of several matmuls
on strided ``.real``/``.imag`` views (which force copies): ``view_as_real`` of a contiguous
complex tensor is free, and so is ``view_as_complex`` of an interleaved real result.
"""

from __future__ import annotations

import torch


def input_proj(x: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``x @ B.T`` for real ``x (..., d_in)``, real or complex ``B (N, d_in)``: ``(..., N)``."""
    if not B.is_complex():
        return x @ B.T
    W = torch.stack([B.real, B.imag], dim=1).reshape(-1, B.shape[-1])  # (2N, d_in), interleaved
    out = x @ W.T  # (..., 2N) = re0, im0, re1, im1, ...
    return torch.view_as_complex(out.unflatten(-1, (-1, 2)))  # (..., N)


def real_output(h: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """``Re(h @ C.T)`` for ``h (..., N)`` and ``C (d_out, N)``, as one real matmul."""
    if not h.is_complex():
        return h @ (C.real if C.is_complex() else C).T
    if not C.is_complex():
        return h.real @ C.T
    W = torch.stack([C.real, -C.imag], dim=-1).flatten(-2)  # (d_out, 2N), interleaved
    hr = torch.view_as_real(h if h.is_contiguous() else h.contiguous())  # (..., N, 2)
    return hr.flatten(-2) @ W.T  # (..., d_out)
