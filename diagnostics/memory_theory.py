r"""Closed forms of the curse of memory for the scalar recurrence $h_t = \lambda h_{t-1} + x_t$.

Inputs have unit variance and autocorrelation $E[x_t x_{t+d}] = \rho^{|d|}$; every moment is the
stationary one ($t \to \infty$). With the i.i.d. normaliser and the exponential map
$\lambda = \exp(-\exp(\nu))$ the sensitivity stays bounded as $\lambda \to 1$.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", https://arxiv.org/abs/2405.21064 (section 2 and appendix).
"""

from __future__ import annotations

import torch

__all__ = [
    "second_moment",
    "sensitivity",
    "normalized_exp_sensitivity",
]


def _check(lam: torch.Tensor, rho: float) -> torch.Tensor:
    lam = torch.as_tensor(lam)
    if not lam.is_floating_point() and not lam.is_complex():
        lam = lam.to(torch.get_default_dtype())
    if lam.is_complex() and rho != 0:
        raise ValueError("the closed forms with correlated inputs (rho != 0) need a real lam")
    if (lam.abs() >= 1).any() or torch.isnan(lam).any():
        raise ValueError("the stationary moments need every |lam| < 1")
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1), got {rho}")
    return lam


def second_moment(lam: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
    r"""$E[|h|^2] = \frac{1 + \rho\lambda}{(1 - \rho\lambda)(1 - \lambda^2)}$.

    For i.i.d. inputs (and for complex $\lambda$) this is $\frac{1}{1-|\lambda|^2}$: the state
    explodes like $(1-\lambda)^{-1/2}$ as memory grows.

    Examples:
        >>> import torch
        >>> second_moment(torch.tensor([0.0, 0.5]))
        tensor([1.0000, 1.3333])
    """
    lam = _check(lam, rho)
    if lam.is_complex():
        return 1 / (1 - lam.abs() ** 2)
    return (1 + rho * lam) / ((1 - rho * lam) * (1 - lam**2))


def sensitivity(lam: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
    r"""$E[|dh/d\lambda|^2]$; i.i.d. inputs: $\frac{1 + |\lambda|^2}{(1 - |\lambda|^2)^3}$.

    General $\rho$ (real $\lambda$):
    $\frac{(1+\lambda^2)(1-\rho^2\lambda^2) + 2\rho\lambda(1-\lambda^2)}
    {(1-\lambda^2)^3 (1-\rho\lambda)^2}$. Grows like $(1-\lambda)^{-3}$: the curse of memory.

    Examples:
        >>> import torch
        >>> sensitivity(torch.tensor([0.0, 0.5]))
        tensor([1.0000, 2.9630])
    """
    lam = _check(lam, rho)
    if lam.is_complex():
        r2 = lam.abs() ** 2
        return (1 + r2) / (1 - r2) ** 3
    l2 = lam**2
    num = (1 + l2) * (1 - rho**2 * l2) + 2 * rho * lam * (1 - l2)
    return num / ((1 - l2) ** 3 * (1 - rho * lam) ** 2)


def normalized_exp_sensitivity(lam: torch.Tensor, through_gamma: bool = True) -> torch.Tensor:
    r"""$E[(d\tilde h/d\nu)^2]$ for $\tilde h_t = \lambda \tilde h_{t-1} + \gamma(\lambda) x_t$,
    $\gamma = \sqrt{1-\lambda^2}$, $\lambda = \exp(-\exp(\nu))$, i.i.d. inputs, real $\lambda$.

    With the gradient flowing through $\gamma$ (``through_gamma=True``, what autograd computes
    when $\gamma$ is a function of $\lambda$) the cross terms cancel and
    $E = \frac{(\lambda\log\lambda)^2}{(1-\lambda^2)^2} \to \frac14$ as $\lambda \to 1$.
    With $\gamma$ held fixed, $E = \frac{(1+\lambda^2)(\lambda\log\lambda)^2}{(1-\lambda^2)^2}
    \to \frac12$. Either way the sensitivity is bounded: the cure.

    Examples:
        >>> import torch
        >>> lam = torch.tensor([1 - 1e-6], dtype=torch.float64)
        >>> round(float(normalized_exp_sensitivity(lam)), 4)
        0.25
        >>> round(float(normalized_exp_sensitivity(lam, through_gamma=False)), 4)
        0.5
    """
    lam = _check(lam, 0.0)
    if lam.is_complex():
        raise ValueError("normalized_exp_sensitivity is the closed form for a real lam")
    dlam_dnu = lam * torch.log(lam)
    base = dlam_dnu**2 / (1 - lam**2) ** 2
    return base if through_gamma else (1 + lam**2) * base
