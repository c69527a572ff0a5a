"""Unit-variance Gaussian inputs with exponential autocorrelation (the curse-of-memory set-up)."""

from __future__ import annotations

import math

import torch

__all__ = ["correlated_inputs"]


def correlated_inputs(
    batch_size: int,
    length: int,
    features: int,
    rho: float = 0.0,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Stationary AR(1) inputs $x_t = \rho x_{t-1} + \sqrt{1-\rho^2}\,\epsilon_t$.

    Every entry has unit variance and $E[x_t x_{t+d}] = \rho^{|d|}$ from the first step on
    ($x_0 \sim N(0, 1)$); features and batch elements are independent.

    Args:
        batch_size: number of sequences.
        length: number of time steps.
        features: number of input channels.
        rho: autocorrelation in $(-1, 1)$; 0 gives i.i.d. $N(0, 1)$ inputs.
        generator: optional random generator (on ``device``) for reproducibility.
        dtype: floating dtype (default: torch's default dtype).
        device: where to create the tensor.

    Returns:
        Tensor of shape ``(batch_size, length, features)``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = correlated_inputs(4000, 50, 1, rho=0.8, generator=g, dtype=torch.float64)
        >>> round(float((x[:, 10] * x[:, 11]).mean()), 1)  # autocorrelation at lag 1
        0.8
    """
    if not -1 < rho < 1 or math.isnan(rho):
        raise ValueError(f"correlated_inputs: rho must lie in (-1, 1), got {rho}")
    for name, value in (("batch_size", batch_size), ("length", length), ("features", features)):
        if int(value) != value or value < 1:
            raise ValueError(f"correlated_inputs: {name} must be a positive integer, got {value}")
    noise = torch.randn(batch_size, length, features, generator=generator, dtype=dtype,
                        device=device)  # (B, L, F)
    if rho == 0:
        return noise
    scale = math.sqrt(1 - rho**2)
    steps = [noise[:, 0]]
    for eps in noise[:, 1:].unbind(1):
        steps.append(rho * steps[-1] + scale * eps)
    return torch.stack(steps, dim=1)
