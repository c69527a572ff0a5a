"""Direct (polar) parametrization of eigenvalues: the unconstrained baseline."""

from __future__ import annotations

import torch

from recurrent_params.parametrizations._eigen_base import EigenParametrization

__all__ = ["Polar"]


class Polar(EigenParametrization):
    r"""Direct polar map $\lambda = r\, e^{i\theta}$ with originals $(r, \theta)$.

    For a real ``lam`` the single original is ``lam`` itself (signed). This is the baseline
    the curse-of-memory paper compares the exponential map against: nothing keeps
    $|\lambda| < 1$ during training and steps in $r$ are as coarse near 1 as anywhere, so the
    hidden state's sensitivity grows like $(1-|\lambda|)^{-3/2}$.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (section 3, "polar" ablation).

    Examples:
        >>> import torch
        >>> lam = torch.tensor([0.6 + 0.8j]) * 0.5
        >>> r, theta = Polar().right_inverse(lam)
        >>> float(r), round(float(theta), 6)
        (0.5, 0.927295)
        >>> torch.allclose(Polar()(r, theta), lam)
        True
    """

    signed_real = True
    zero_ok = True
    real_name = "lam"
    complex_names = ("magnitude", "theta")

    def _magnitude(self, m: torch.Tensor) -> torch.Tensor:
        return m

    def _magnitude_inverse(self, r: torch.Tensor) -> torch.Tensor:
        return r.clone()

    def _angle(self, a: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return a

    def _angle_inverse(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return theta.clone()
