"""Exponential magnitude with an angle scaled by the (stopped) distance to the unit circle."""

from __future__ import annotations

import torch

from recurrent_params.parametrizations._eigen_base import (
    EigenParametrization,
    _rate_floor,
    _safe_log1m_neg_log,
)

__all__ = ["ScaledAngle"]


class ScaledAngle(EigenParametrization):
    r"""$|\lambda| = \exp(-\exp(\nu))$ and $\theta = \mathrm{sg}(1 - |\lambda|)\, w$.

    The magnitude is parametrized as in :class:`ExpMag`; the angle original $w$ is scaled by
    the stop-gradient ($\mathrm{sg}$) of $1 - |\lambda|$, so that angle steps shrink as the
    eigenvalue approaches the unit circle, where the hidden state is most sensitive to the
    angle. Real eigenvalues behave exactly as with ``ExpMag()``.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (section 3, angle
        parametrizations).

    Examples:
        >>> import torch
        >>> lam = torch.polar(torch.tensor([0.9]), torch.tensor([0.05]))
        >>> nu, w = ScaledAngle().right_inverse(lam)
        >>> round(float(w), 4)  # 0.05 / (1 - 0.9)
        0.5
        >>> torch.allclose(ScaledAngle()(nu, w), lam)
        True
    """

    complex_names = ("nu", "w_theta")

    def _magnitude(self, nu: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.exp(nu).clamp_min(_rate_floor(nu.dtype)))

    def _magnitude_inverse(self, r: torch.Tensor) -> torch.Tensor:
        return _safe_log1m_neg_log(r)

    def _angle(self, w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return (1 - r).detach() * w

    def _angle_inverse(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return theta / (1 - r)
