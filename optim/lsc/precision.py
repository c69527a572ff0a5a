r"""Half-precision models: their radii are computed in float32.

LAPACK has no eigen solver for ``float16`` / ``bfloat16`` (``torch.linalg.eigvals`` raises
``linalg_eig_out_cpu not implemented for 'BFloat16'``). A transition of a half-precision model
is therefore handed to the radius code as a float32 map: its point and its output are cast to
float32 and its argument back to the model's dtype,
$\tilde f(s) = \mathrm{float32}(f(\mathrm{half}(s)))$. The model itself runs, and its Jacobian
is taken, in its own dtype (so the radii carry half-precision rounding, a relative error of
about $2^{-8}$ for bfloat16); only the eigenvalues are computed in float32. Gradients flow
through the casts to the model's half-precision tensors.

The default optimiser's $\epsilon$ (AdaBelief's 1e-16) rounds to 0 in float16, so its step
divides by zero where the gradient's residual underflows: for a float16 model the default
optimiser uses $\epsilon = 2^{-14}$, float16's smallest normal number, instead (bfloat16 has
float32's exponent range and keeps 1e-16).
"""

from __future__ import annotations

import dataclasses

import torch

from diagnostics.transitions import Transition

__all__ = ["HALF_DTYPES", "in_float32", "adabelief_eps", "DEFAULT_EPS"]

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Floating dtypes whose transitions are measured through a float32 view."""


def _cast(f, dtype: torch.dtype):
    """``f`` taking a float32 state: the state is cast to ``dtype``, the result to float32."""
    if f is None:
        return None

    def wrapped(s, *context):
        return f(s.to(dtype), *context).float()

    return wrapped


def in_float32(transitions: list[Transition]) -> list[Transition]:
    """The transitions with a half-precision point as float32 maps (others as they are).

    Examples:
        >>> import torch
        >>> from diagnostics import Transition
        >>> W = torch.eye(2, dtype=torch.bfloat16)
        >>> t = Transition("t", lambda s: s @ W, torch.ones(3, 2, dtype=torch.bfloat16))
        >>> u = in_float32([t])[0]
        >>> u.point.dtype, u.fn(u.point).dtype
        (torch.float32, torch.float32)
    """
    out = []
    for t in transitions:
        dtype = t.point.dtype
        if dtype not in HALF_DTYPES:
            out.append(t)
            continue
        out.append(dataclasses.replace(
            t, fn=_cast(t.fn, dtype), point=t.point.float(), floor=_cast(t.floor, dtype),
            gates=_cast(t.gates, dtype)))
    return out


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
