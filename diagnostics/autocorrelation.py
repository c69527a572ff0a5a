r"""Temporal autocorrelation of input sequences and their integrated correlation time.

The curse of memory depends on how correlated the inputs are in time: for unit-variance inputs
with autocorrelation $\rho^{|d|}$ the stationary state of $h_t = \lambda h_{t-1} + x_t$ has
$E[h^2] = \frac{1 + \rho\lambda}{(1 - \rho\lambda)(1 - \lambda^2)}$, which grows like
$(1-\lambda)^{-2}$ instead of $(1-\lambda)^{-1}$ when $\rho \to 1$. These two functions measure
how far a real data set is from white noise.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", https://arxiv.org/abs/2405.21064 (sections 2 and 5).
"""

from __future__ import annotations

import torch

__all__ = ["autocorrelation", "correlation_time"]


def autocorrelation(x: torch.Tensor, max_lag: int) -> torch.Tensor:
    r"""Autocorrelation per lag of a batch of sequences, pooled over sequences and features.

    $$\hat\rho(d) = \frac{\sum_{b,f}\sum_{t=1}^{T-d} \tilde x_{b,t,f}\,\tilde x_{b,t+d,f}}
    {(T-d)\sum_{b,f}\frac{1}{T}\sum_{t=1}^{T}\tilde x_{b,t,f}^2},\qquad
    \tilde x = x - \bar x_f,$$

    with $\bar x_f$ the mean of feature $f$ over the batch and time (the series is treated as
    wide-sense stationary, as in the paper's analysis). $\hat\rho(0) = 1$. For an AR(1) input
    $x_t = \rho x_{t-1} + \sqrt{1-\rho^2}\epsilon_t$, $\hat\rho(d) \to \rho^d$.

    Args:
        x: ``(batch, length, features)`` real sequences (``(batch, length)`` is read as one
            feature).
        max_lag: largest lag $D$, ``0 <= D < length``.

    Returns:
        ``(max_lag + 1,)`` tensor $\hat\rho(0), \dots, \hat\rho(D)$ in ``x``'s dtype.

    Raises:
        ValueError: ``x`` is not 2-D or 3-D real, is constant, or ``max_lag`` is out of range.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]])
        >>> autocorrelation(x, 2)  # alternating signs: rho(1) = -1, rho(2) = 1
        tensor([ 1., -1.,  1.])
    """
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3) or x.is_complex() \
            or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"autocorrelation: x must be a real floating tensor (batch, length, "
                         f"features), got {got}")
    if x.dim() == 2:
        x = x.unsqueeze(-1)
    length = x.shape[1]
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 0 <= max_lag < length:
        raise ValueError(f"autocorrelation: max_lag must be an int in [0, {length - 1}] (below "
                         f"the length), got {max_lag!r}")
    centred = x - x.mean(dim=(0, 1), keepdim=True)  # (B, L, F)
    variance = (centred**2).mean()
    if not variance > 0:
        raise ValueError("autocorrelation: x is constant; its autocorrelation is undefined")
    acf = [torch.ones((), dtype=x.dtype, device=x.device)]
    for d in range(1, max_lag + 1):
        acf.append((centred[:, :-d] * centred[:, d:]).mean() / variance)
    return torch.stack(acf)


def correlation_time(acf: torch.Tensor) -> float:
    r"""Integrated correlation time $\tau = 1 + 2\sum_{d=1}^{D}\rho(d)$ of an autocorrelation.

    $\tau$ is the number of steps over which one sample's worth of information is spread: white
    noise has $\tau = 1$, an AR(1) with lag-one correlation $\rho$ has
    $\tau = \frac{1 + \rho}{1 - \rho}$ (19 for $\rho = 0.9$). The AR(1) input with the same
    $\tau$ has $\rho_{eq} = \frac{\tau - 1}{\tau + 1}$. The sum is truncated at the last lag of
    ``acf``; a slowly decaying (or periodic) autocorrelation makes $\tau$ depend on that window,
    so report it with the window.

    Args:
        acf: ``(D + 1,)`` autocorrelation with ``acf[0] == 1`` (from :func:`autocorrelation`).

    Returns:
        $\tau$ as a float.

    Raises:
        ValueError: ``acf`` is not a 1-D tensor starting at 1.

    Examples:
        >>> import torch
        >>> rho = 0.5
        >>> acf = rho ** torch.arange(60, dtype=torch.float64)
        >>> round(correlation_time(acf), 6)  # (1 + rho) / (1 - rho)
        3.0
    """
    if not isinstance(acf, torch.Tensor) or acf.dim() != 1 or acf.numel() == 0 \
            or abs(float(acf[0]) - 1) > 1e-6:
        raise ValueError("correlation_time: acf must be a 1-D tensor with acf[0] == 1 "
                         "(the output of autocorrelation)")
    return float(1 + 2 * acf[1:].sum())
