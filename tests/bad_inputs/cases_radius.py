"""Bad and edge inputs to the spectral radius and its gradient (issue 21's singular solve)."""

from __future__ import annotations

import torch

from diagnostics import differentiable_spectral_radius, spectral_radius
from tests.bad_inputs.case import Case


def _grad_of_radius(m: torch.Tensor) -> torch.Tensor:
    m = m.clone().requires_grad_(True)
    differentiable_spectral_radius(m).sum().backward()
    return m.grad


def _finite(expected_shape):
    def check(g):
        assert tuple(g.shape) == expected_shape and bool(torch.isfinite(g).all()), g
    return check


def _all_zero(g):
    assert bool((g == 0).all()), g  # rho = 0: the documented gradient is 0


def _jacobian_radius_grad(w: torch.Tensor) -> torch.Tensor:
    w = w.clone().requires_grad_(True)
    spectral_radius(lambda s: s @ w.T, torch.zeros(2, w.shape[0]), method="exact").sum().backward()
    return w.grad


CASES: list = [
    Case(
        "spectral-radius-nan-matrix",
        lambda: differentiable_spectral_radius(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])),
        raises=FloatingPointError,
        match="NaN or inf",
    ),
    Case(
        "spectral-radius-inf-matrix",
        lambda: differentiable_spectral_radius(torch.full((2, 3, 3), float("inf"))),
        raises=FloatingPointError,
        match="NaN or inf",
    ),
    Case(
        "spectral-radius-non-square",
        lambda: differentiable_spectral_radius(torch.zeros(4, 2, 3)),
        raises=ValueError,
        match=r"square.*\(4, 2, 3\)",
    ),
    Case(
        "spectral-radius-vector",
        lambda: differentiable_spectral_radius(torch.zeros(3)),
        raises=ValueError,
        match="square",
    ),
    Case(
        "spectral-radius-empty-matrix",
        lambda: differentiable_spectral_radius(torch.zeros(2, 0, 0)),
        raises=ValueError,
        match="n >= 1",
    ),
    Case(
        "spectral-radius-integer-dtype",
        lambda: differentiable_spectral_radius(torch.eye(3, dtype=torch.int64)),
        raises=TypeError,
        match="floating.*int64",
    ),
    Case(
        "spectral-radius-not-a-tensor",
        lambda: differentiable_spectral_radius([[1.0, 0.0], [0.0, 1.0]]),
        raises=TypeError,
        match="floating.*list",
    ),
    # documented pass-through: repeated, defective and zero spectra have a finite gradient
    Case(
        "spectral-radius-grad-identity",
        lambda: _grad_of_radius(torch.eye(4)),
        raises=None,
        check=_finite((4, 4)),
    ),
    Case(
        "spectral-radius-grad-jordan-block",
        lambda: _grad_of_radius(torch.eye(3) + torch.diag(torch.ones(2), 1)),
        raises=None,
        check=_finite((3, 3)),
    ),
    Case(
        "spectral-radius-grad-zero-matrix",
        lambda: _grad_of_radius(torch.zeros(2, 3, 3)),
        raises=None,
        check=_all_zero,
    ),
    Case(
        "spectral-radius-grad-subnormal-1x1",
        lambda: _grad_of_radius(torch.tensor([[[1.3e-39]]])),
        raises=None,
        check=_finite((1, 1, 1)),
    ),
    Case(
        "spectral-radius-jacobian-rank1-width1",
        lambda: _jacobian_radius_grad(torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0],
                                                    [-1.0, 0.0, 0.0]])),
        raises=None,
        check=_finite((3, 3)),
    ),
]
