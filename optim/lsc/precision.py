r"""16-bit models: their radii in float32, and the default optimiser's $\epsilon$.

The radii: torch has no 16-bit eigen solver, so the pre-trainer measures a ``float16`` /
``bfloat16`` model's transitions through :func:`diagnostics.transitions.in_float32` (the model
runs, and its Jacobian is taken, in its own dtype; the eigenvalues in float32; gradients flow
through the casts to the model's 16-bit tensors). ``HALF_DTYPES`` and ``in_float32`` are
re-exported here.

The default optimiser's $\epsilon$ (AdaBelief's 1e-16) rounds to 0 in float16, so its step
divides by zero where the gradient's residual underflows: for a float16 model the default
optimiser uses $\epsilon = 2^{-14}$, float16's smallest normal number, instead (bfloat16 has
float32's exponent range and keeps 1e-16).
"""

from __future__ import annotations

import torch

from diagnostics.transitions import HALF_DTYPES, in_float32

__all__ = ["HALF_DTYPES", "in_float32", "adabelief_eps", "DEFAULT_EPS"]

DEFAULT_EPS = 1e-16
r"""AdaBelief's default $\epsilon$ (adabelief-pytorch 0.2.1)."""


def adabelief_eps(params: list[torch.Tensor]) -> float:
    r"""The default optimiser's $\epsilon$: 1e-16, or float16's smallest normal number
    ($2^{-14}$) when a parameter is float16 (1e-16 would round to 0 there).

    Examples:
        >>> import torch
        >>> adabelief_eps([torch.zeros(2)]), adabelief_eps([torch.zeros(2, dtype=torch.half)])
        (1e-16, 6.103515625e-05)
    """
    if any(p.dtype == torch.float16 for p in params):
        return float(torch.finfo(torch.float16).tiny)
    return DEFAULT_EPS
