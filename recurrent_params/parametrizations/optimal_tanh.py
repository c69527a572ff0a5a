"""The curse-of-memory paper's "optimal" tanh parametrization of magnitude and angle."""

from __future__ import annotations

import torch

from recurrent_params.parametrizations._eigen_base import EigenParametrization, _cap_below_one

__all__ = ["OptimalTanh"]


def _angle_scale(r: torch.Tensor) -> torch.Tensor:
    r"""$(1 - r^2) / (r \sqrt{1 + r^2})$, with $r$ floored at machine epsilon."""
    r_safe = r.clamp_min(torch.finfo(r.dtype).eps)
    return (1 - r * r) / (r_safe * torch.sqrt(1 + r * r))


class OptimalTanh(EigenParametrization):
    r"""$\nu = \tanh(w_\nu)$, $\theta = \frac{1-\nu^2}{\nu\sqrt{1+\nu^2}}\, w_\theta$.

    $\nu = |\lambda|$ is the magnitude; the angle scale is the one the authors derive to keep
    the sensitivity of the hidden state to both originals of order one for i.i.d. inputs.
    A real ``lam`` uses the signed map $\lambda = \tanh(w)$. The magnitude is capped at
    $1 - \epsilon$ of the dtype, so $|\lambda| < 1$ for any finite original.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (appendix on optimal
        parametrizations).

    Examples:
        >>> import torch
        >>> w = OptimalTanh().right_inverse(torch.tensor([-0.5, 0.5]))
        >>> torch.allclose(w, torch.atanh(torch.tensor([-0.5, 0.5])))
        True
    """

    signed_real = True
    zero_ok = True
    real_name = "w"
    complex_names = ("w_nu", "w_theta")

    def _magnitude(self, w: torch.Tensor) -> torch.Tensor:
        cap = _cap_below_one(w.dtype)
        return torch.tanh(w).clamp(-cap, cap)

    def _magnitude_inverse(self, r: torch.Tensor) -> torch.Tensor:
        return torch.atanh(r)

    def _angle(self, w_theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        big = torch.finfo(w_theta.dtype).max  # no overflow to inf: cos(inf) is NaN
        return (_angle_scale(r.abs()) * w_theta).clamp(-big, big)

    def _angle_inverse(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return theta / _angle_scale(r)
