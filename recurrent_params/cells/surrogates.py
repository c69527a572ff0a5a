r"""Surrogate gradients of the spike (Heaviside) function.

A spiking neuron emits $z = H(u)$, exactly 0 or 1, where $u$ is its normalised distance to the
threshold. $H$ has derivative zero almost everywhere, so training replaces it, in the backward
pass only, by a *surrogate* (pseudo-) derivative $\psi(u)$: a bump of height $\gamma$
(the *dampening*) and width of order $1/k$ (the *sharpness* $k$).

Every surrogate here is written as the exact derivative of a smooth primitive $\Sigma$
($\Sigma' = \psi$) and the spike as

$$ z = H(u) + \big(\Sigma(u) - \mathrm{sg}[\Sigma(u)]\big), $$

where $\mathrm{sg}$ stops the gradient (``detach``). The bracket is exactly zero in the
forward pass (a finite number minus itself), so $z \in \{0, 1\}$ bit for bit, while every
automatic-differentiation mode (reverse, forward, ``torch.func``, double backward,
``torch.compile``) sees $\partial z/\partial u = \psi(u)$: the LSC radii, which take forward-mode
Jacobians and then differentiate them, need all of them.

References:
    Bellec et al., "Long short-term memory and learning-to-learn in networks of spiking
    neurons", arXiv 1803.09574 (https://arxiv.org/abs/1803.09574): the triangular
    pseudo-derivative with dampening 0.3.
    Zenke & Ganguli, "SuperSpike: supervised learning in multilayer spiking neural
    networks", arXiv 1705.11146 (https://arxiv.org/abs/1705.11146): the fast sigmoid.
    Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural networks",
    arXiv 1901.09948 (https://arxiv.org/abs/1901.09948).
"""

from __future__ import annotations

import math

import torch

__all__ = ["Surrogate", "Triangular", "FastSigmoid", "SURROGATES", "make_surrogate"]


class Surrogate:
    r"""Base class: ``surrogate(u)`` is the spike $H(u) = [u > 0]$ with derivative $\psi(u)$.

    Subclasses define ``derivative`` ($\psi$) and ``primitive`` ($\Sigma$, with
    $\Sigma' = \psi$ and $\Sigma(0) = 0$).

    Args:
        sharpness: $k > 0$; larger is narrower (the width of $\psi$ scales as $1/k$).
        dampening: $\gamma > 0$, the height $\psi(0)$ of the surrogate.

    Raises:
        ValueError: for a non-finite or non-positive ``sharpness`` or ``dampening``.
    """

    name = "surrogate"

    def __init__(self, sharpness: float = 1.0, dampening: float = 0.3):
        for label, v in (("sharpness", sharpness), ("dampening", dampening)):
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{type(self).__name__}: {label} must be a finite number > 0, "
                                 f"got {v!r}")
        self.sharpness = float(sharpness)
        self.dampening = float(dampening)

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        r"""The surrogate derivative $\psi(u)$, elementwise."""
        raise NotImplementedError

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        r"""A smooth primitive $\Sigma(u)$ of $\psi$ with $\Sigma(0) = 0$, elementwise."""
        raise NotImplementedError

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Spikes ``(u > 0)`` as exact 0/1 in ``u``'s dtype, with gradient ``derivative(u)``."""
        s = self.primitive(u)
        return (u > 0).to(u.dtype) + (s - s.detach())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sharpness={self.sharpness:g}, dampening={self.dampening:g})"

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.sharpness == other.sharpness
                and self.dampening == other.dampening)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.sharpness, self.dampening))


class Triangular(Surrogate):
    r"""Triangular surrogate (Bellec et al.): $\psi(u) = \gamma \max(0, 1 - k|u|)$.

    Height $\gamma$ at $u = 0$, zero for $|u| \ge 1/k$, area $\gamma/k$. Primitive
    $\Sigma(u) = \frac{\gamma}{k}\big(w - \tfrac12 w|w|\big)$ with $w = \mathrm{clip}(ku, -1, 1)$.
    With the defaults ($k = 1$, $\gamma = 0.3$) and $u = (v - A)/\vartheta$ this is the
    pseudo-derivative of the LSNN/e-prop papers.

    Args:
        sharpness: $k$ (default 1).
        dampening: $\gamma$ (default 0.3, Bellec et al.'s value).

    References:
        Bellec et al., "Long short-term memory and learning-to-learn in networks of spiking
        neurons", arXiv 1803.09574 (https://arxiv.org/abs/1803.09574).

    Examples:
        >>> import torch
        >>> u = torch.tensor([-2.0, -0.5, 0.0, 0.25, 2.0], requires_grad=True)
        >>> z = Triangular(sharpness=1.0, dampening=0.3)(u)
        >>> z.detach()
        tensor([0., 0., 0., 1., 0.])
        >>> torch.autograd.grad(z.sum(), u)[0]  # 0.3 * max(0, 1 - |u|)
        tensor([0.0000, 0.1500, 0.3000, 0.2250, 0.0000])
    """

    name = "triangular"

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        return self.dampening * torch.clamp(1 - self.sharpness * u.abs(), min=0)

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        w = torch.clamp(self.sharpness * u, -1.0, 1.0)
        return (self.dampening / self.sharpness) * (w - 0.5 * w * w.abs())


class FastSigmoid(Surrogate):
    r"""Fast-sigmoid surrogate (SuperSpike): $\psi(u) = \gamma / (1 + k|u|)^2$.

    Height $\gamma$ at $u = 0$, half height at $|u| = (\sqrt2 - 1)/k$, heavy tails (never
    exactly zero, so a neuron far from threshold still passes a little gradient), area
    $2\gamma/k$. Primitive $\Sigma(u) = \gamma u / (1 + k|u|)$.

    Args:
        sharpness: $k$ (default 1; SuperSpike uses larger values such as 10 for a narrower
            bump).
        dampening: $\gamma$ (default 0.3, the same height as :class:`Triangular`).

    References:
        Zenke & Ganguli, "SuperSpike: supervised learning in multilayer spiking neural
        networks", arXiv 1705.11146 (https://arxiv.org/abs/1705.11146).

    Examples:
        >>> import torch
        >>> u = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
        >>> z = FastSigmoid(sharpness=1.0, dampening=0.3)(u)
        >>> z.detach()
        tensor([0., 0., 1.])
        >>> torch.autograd.grad(z.sum(), u)[0]  # 0.3 / (1 + |u|)^2
        tensor([0.0750, 0.3000, 0.0750])
    """

    name = "fast_sigmoid"

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        return self.dampening / (1 + self.sharpness * u.abs()) ** 2

    def primitive(self, u: torch.Tensor) -> torch.Tensor:
        return self.dampening * u / (1 + self.sharpness * u.abs())


#: surrogate name -> class, for ``make_surrogate`` and the ``surrogate=`` argument of ``ALIF``.
SURROGATES: dict[str, type[Surrogate]] = {"triangular": Triangular, "fast_sigmoid": FastSigmoid}


def make_surrogate(surrogate: str | Surrogate, sharpness: float = 1.0,
                   dampening: float = 0.3) -> Surrogate:
    """A :class:`Surrogate` from its name (``"triangular"``, ``"fast_sigmoid"``) or as given.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything that is neither a name nor a :class:`Surrogate`.
    """
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str):
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)} or a Surrogate, "
                             f"got {surrogate!r}")
        return SURROGATES[surrogate](sharpness=sharpness, dampening=dampening)
    raise TypeError(f"surrogate must be a name or a Surrogate, got {type(surrogate).__name__}")
