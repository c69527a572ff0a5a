"""Shared machinery of the eigenvalue parametrizations: validation and real/complex dispatch."""

from __future__ import annotations

import torch
from torch import nn


def _describe(values: torch.Tensor) -> str:
    return f"[{values.min().item():.6g}, {values.max().item():.6g}]"


def _rate_floor(dtype: torch.dtype) -> float:
    """Smallest decay rate kept by the exponential maps, so that |lam| < 1 in ``dtype``."""
    return torch.finfo(dtype).eps


def _cap_below_one(dtype: torch.dtype) -> float:
    """Largest magnitude kept by the bounded maps: ``1 - eps`` of ``dtype``."""
    return 1.0 - torch.finfo(dtype).eps


def _safe_log1m_neg_log(r: torch.Tensor) -> torch.Tensor:
    r"""$\log(-\log r)$ computed through ``log1p(r - 1)`` so that r close to 1 keeps its digits."""
    return torch.log(-torch.log1p(r - 1))


class EigenParametrization(nn.Module):
    r"""Base class: real eigenvalues from one real original, complex ones from two.

    A real ``lam`` is stored as one real original (the magnitude parameter); a complex ``lam``
    as the pair (magnitude parameter, angle parameter), through a tuple ``right_inverse``, so
    that ``torch.nn.utils.parametrize`` creates ``original0`` and ``original1`` and every stored
    tensor is real. ``forward(magnitude)`` returns a real ``lam``;
    ``forward(magnitude, angle)`` returns $r e^{i\theta}$.

    Subclasses implement ``_magnitude``/``_magnitude_inverse`` and ``_angle``/``_angle_inverse``,
    and set the class attributes below.
    """

    #: real ``lam`` may be negative (the magnitude map is signed on the real line).
    signed_real: bool = False
    #: ``|lam| = 0`` is reachable by a finite original.
    zero_ok: bool = False
    #: readable names of the originals: (real ``lam``,) and (magnitude, angle) for complex.
    real_name: str = "nu"
    complex_names: tuple[str, str] = ("nu", "theta")

    def original_names(self, count: int) -> tuple[str, ...]:
        """Readable names of ``count`` originals (1: real ``lam``, 2: complex ``lam``)."""
        return (self.real_name,) if count == 1 else self.complex_names

    # -- subclass hooks --------------------------------------------------------------------
    def _magnitude(self, m: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _magnitude_inverse(self, r: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _angle(self, a: torch.Tensor, r: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _angle_inverse(self, theta: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    # -- the parametrize contract -----------------------------------------------------------
    def forward(self, magnitude: torch.Tensor, angle: torch.Tensor | None = None) -> torch.Tensor:
        """Eigenvalues from the real original(s)."""
        name = type(self).__name__
        for t in (magnitude, angle):
            if t is not None and not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} expects tensor originals, got {type(t).__name__}")
            if t is not None and not t.is_floating_point():
                hint = (
                    " This usually means the tensor is already parametrized (parametrizations "
                    "compose: the new map receives the old map's complex output). Call "
                    "parametrize.remove_parametrizations(module, name) first to get a plain "
                    "tensor back."
                    if t.is_complex()
                    else ""
                )
                raise ValueError(f"{name} expects real originals, got dtype {t.dtype}.{hint}")
        if angle is not None and angle.shape != magnitude.shape:
            raise ValueError(
                f"{name}: magnitude and angle originals must have the same shape, got "
                f"{tuple(magnitude.shape)} and {tuple(angle.shape)}"
            )
        r = self._magnitude(magnitude)
        if angle is None:
            return r
        theta = self._angle(angle, r)
        return torch.complex(r * torch.cos(theta), r * torch.sin(theta))

    def right_inverse(self, lam: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Original(s) whose ``forward`` gives back ``lam``; validates ``lam`` first."""
        self.validate(lam)
        lam = lam.detach()
        if lam.is_complex():
            r = lam.abs()
            return self._magnitude_inverse(r), self._angle_inverse(torch.angle(lam), r)
        return self._magnitude_inverse(lam)

    def validate(self, lam: torch.Tensor) -> None:
        """Raise ``ValueError`` unless every entry of ``lam`` is in the image of this map."""
        name = type(self).__name__
        if not isinstance(lam, torch.Tensor):
            raise TypeError(f"{name} expects a tensor, got {type(lam).__name__}")
        if not (lam.is_floating_point() or lam.is_complex()):
            raise TypeError(f"{name} expects a real or complex floating tensor, got {lam.dtype}")
        lam = lam.detach()
        n = lam.numel()
        bad = ~torch.isfinite(lam)
        if bad.any():
            raise ValueError(f"{name}: {int(bad.sum())} of {n} eigenvalues are NaN or infinite")
        r = lam.abs()
        low_ok = r >= 0 if self.zero_ok else r > 0
        outside = ~(low_ok & (r < 1))
        if outside.any():
            interval = "[0, 1)" if self.zero_ok else "(0, 1)"
            raise ValueError(
                f"{name} needs every |lam| in {interval}: {int(outside.sum())} of {n} entries are "
                f"outside (|lam| ranges over {_describe(r)})"
            )
        if not lam.is_complex() and not self.signed_real:
            negative = lam <= 0 if not self.zero_ok else lam < 0
            if negative.any():
                raise ValueError(
                    f"{name} maps a real original to a positive eigenvalue, but "
                    f"{int(negative.sum())} of {n} real entries are not positive (min "
                    f"{lam.min().item():.6g}); use complex eigenvalues or a signed map "
                    "(Polar, OptimalTanh)"
                )
