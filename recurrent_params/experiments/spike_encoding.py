r"""Threshold-crossing (level-crossing) spike encoding of a real sequence.

A signal $x_t \in [0, 1]$ is compared with $K$ levels $\theta_k = (k + \frac12)/K$. Channel
$k$ of the "up" half spikes at step $t$ when the signal crosses $\theta_k$ upwards,
$x_{t-1} < \theta_k \le x_t$, and channel $k$ of the "down" half when it crosses downwards,
$x_t < \theta_k \le x_{t-1}$ (with $x_{-1} = 0$). The result is $2K$ binary channels per input
feature and the same number of time steps.

Why this encoding for the digits read pixel by pixel: it is deterministic (no sampling noise,
unlike rate coding), keeps the 64 steps of the non-spiking task (rate coding needs many steps
per pixel to resolve a grey level; latency coding needs a time window per pixel), and it is
lossless up to the $K$ levels: $\sum_{s \le t}(\mathrm{up}_{k,s} - \mathrm{down}_{k,s}) =
[x_t \ge \theta_k]$, so the quantised pixel value is the running count. It is the encoding
Bellec et al. used for sequential MNIST with LSNNs (80 threshold-crossing input neurons).

References:
    Bellec et al., "Long short-term memory and learning-to-learn in networks of spiking
    neurons", arXiv 1803.09574 (https://arxiv.org/abs/1803.09574).
"""

from __future__ import annotations

import torch

__all__ = ["threshold_crossing"]


def threshold_crossing(x: torch.Tensor, levels: int = 8) -> torch.Tensor:
    """Spikes ``(batch, length, 2 * levels * features)`` of ``x`` ``(batch, length, features)``.

    The channels of feature ``f`` are ``[up_0..up_{K-1}, down_0..down_{K-1}]`` at
    ``2 K f .. 2 K (f + 1)``; values are exactly 0 or 1 in ``x``'s dtype.

    Args:
        x: real inputs in [0, 1].
        levels: the number $K \\ge 1$ of levels.

    Raises:
        ValueError: for a non-3-D input, values outside [0, 1] (or NaN), or ``levels < 1``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[0.0], [0.6], [1.0], [0.2]]])  # one feature, 4 steps
        >>> s = threshold_crossing(x, levels=2)  # levels 0.25 and 0.75
        >>> s[0]  # columns: up 0.25, up 0.75, down 0.25, down 0.75
        tensor([[0., 0., 0., 0.],
                [1., 0., 0., 0.],
                [0., 1., 0., 0.],
                [0., 0., 1., 1.]])
    """
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
        raise ValueError(f"levels must be an int >= 1, got {levels!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected inputs (batch, length, features), got {shape}")
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError("threshold_crossing expects values in [0, 1] (no NaN)")
    theta = (torch.arange(levels, dtype=x.dtype, device=x.device) + 0.5) / levels  # (K,)
    prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)  # x_{t-1}: (B, L, F)
    cur, prev = x.unsqueeze(-1), prev.unsqueeze(-1)  # (B, L, F, 1)
    up = (prev < theta) & (theta <= cur)  # (B, L, F, K)
    down = (cur < theta) & (theta <= prev)
    return torch.cat([up, down], -1).flatten(2).to(x.dtype)  # (B, L, 2 K F)
