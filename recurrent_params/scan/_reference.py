"""Slow, obviously correct float64 reference for the linear scan (tests and helpers reuse it)."""

from __future__ import annotations

import torch

__all__ = ["reference_scan"]


def reference_scan(
    lam: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Python loop $h_t = \lambda_t h_{t-1} + u_t$ in float64 / complex128, differentiable.

    Args:
        lam: ``(d,)`` or ``(batch, length, d)``.
        u: ``(batch, length, d)``.
        h0: optional ``(batch, d)`` state before the first step (zeros if ``None``).

    Returns:
        ``(batch, length, d)`` states in float64 or complex128 (autograd goes through
        ``unbind``/``stack``, so gradients are exact and the cost is O(length) per step).
    """
    dtype = torch.complex128 if any(
        t is not None and t.is_complex() for t in (lam, u, h0)
    ) else torch.float64
    lam, u = lam.to(dtype), u.to(dtype)
    h = torch.zeros_like(u[:, 0]) if h0 is None else h0.to(dtype)
    lams = [lam] * u.shape[1] if lam.dim() == 1 else lam.unbind(1)
    out = []
    for lam_t, u_t in zip(lams, u.unbind(1)):
        h = lam_t * h + u_t
        out.append(h)
    return torch.stack(out, 1)
