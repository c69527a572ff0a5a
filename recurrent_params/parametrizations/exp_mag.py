"""Exponential parametrization of eigenvalue magnitudes (the LRU / S4D choice)."""

from __future__ import annotations

from typing import Literal

import torch

from recurrent_params.parametrizations._eigen_base import (
    EigenParametrization,
    _rate_floor,
    _safe_log1m_neg_log,
)

__all__ = ["ExpMag"]

#: ``exp`` of a larger log-phase overflows float32; the phase is capped there.
_MAX_LOG_PHASE = 80.0
_TWO_PI = 2 * torch.pi


class ExpMag(EigenParametrization):
    r"""Exponential magnitude map $|\lambda| = \exp(-\exp(\nu))$.

    Real eigenvalues: one original $\nu$ and $\lambda = \exp(-\exp(\nu)) \in (0, 1)$.
    Complex eigenvalues: originals $(\nu, \theta)$ and
    $\lambda = \exp(-\exp(\nu))\, e^{i\theta}$; with ``phase="exp"`` the angle original is
    $\log\theta$ (the LRU choice $\theta = \exp(\theta_{\log})$, right inverse taking the angle
    in $(0, 2\pi]$).

    The map makes steps in $\nu$ finer as $|\lambda| \to 1$:
    $d\lambda / d\nu = \lambda \log \lambda \to 0$, which cancels the $(1-\lambda)^{-3/2}$
    growth of the hidden state's sensitivity once inputs are normalised by
    $\gamma(\lambda) = \sqrt{1 - |\lambda|^2}$.

    Note:
        To keep the recurrence strictly stable in the working precision, the decay rate
        $\exp(\nu)$ is floored at the dtype's machine epsilon, so $|\lambda| \le e^{-\epsilon}
        < 1$ for any finite $\nu$ (the gradient w.r.t. $\nu$ is zero below that floor), and
        $\log\theta$ is capped at 80 so that float32 cannot overflow.

    Args:
        phase: ``"direct"`` (angle original is $\theta$) or ``"exp"`` (angle original is
            $\log\theta$, as in the LRU).

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", https://arxiv.org/abs/2405.21064 (section 3).
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        https://arxiv.org/abs/2303.06349.

    Examples:
        >>> import torch
        >>> from torch.nn.utils import parametrize
        >>> cell = torch.nn.Module()
        >>> cell.lam = torch.nn.Parameter(torch.tensor([0.5, 0.99]))
        >>> _ = parametrize.register_parametrization(cell, "lam", ExpMag())
        >>> nu = cell.parametrizations.lam.original
        >>> torch.allclose(nu, torch.log(-torch.log(torch.tensor([0.5, 0.99]))))
        True
        >>> cell.lam
        tensor([0.5000, 0.9900], grad_fn=<ExpBackward0>)
    """

    def __init__(self, phase: Literal["direct", "exp"] = "direct") -> None:
        super().__init__()
        if phase not in ("direct", "exp"):
            raise ValueError(f"ExpMag: phase must be 'direct' or 'exp', got {phase!r}")
        self.phase = phase

    @property
    def complex_names(self) -> tuple[str, str]:  # type: ignore[override]
        return ("nu", "theta_log") if self.phase == "exp" else ("nu", "theta")

    def _magnitude(self, nu: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.exp(nu).clamp_min(_rate_floor(nu.dtype)))

    def _magnitude_inverse(self, r: torch.Tensor) -> torch.Tensor:
        return _safe_log1m_neg_log(r)

    def _angle(self, a: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if self.phase == "exp":
            return torch.exp(a.clamp_max(_MAX_LOG_PHASE))
        return a

    def _angle_inverse(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if self.phase == "exp":
            theta = torch.remainder(theta, _TWO_PI)
            theta = torch.where(theta > 0, theta, torch.full_like(theta, _TWO_PI))
            return torch.log(theta)
        return theta.clone()

    def extra_repr(self) -> str:
        return f"phase={self.phase!r}"
