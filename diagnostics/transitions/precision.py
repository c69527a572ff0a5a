r"""16-bit transitions measured through a float32 view.

torch has no eigendecomposition, QR or SVD for ``float16`` / ``bfloat16`` (``torch.linalg.eigvals``
raises ``linalg_eig_out_cpu not implemented for 'BFloat16'``). A transition of a 16-bit model is
therefore handed to the radius code as a float32 map: its point and its output are cast to
float32 and its argument back to the model's dtype,
$\tilde f(s) = \mathrm{float32}(f(\mathrm{half}(s)))$. The model itself runs, and its Jacobian
is taken, in its own dtype (so the radii carry its rounding, a relative error of about $2^{-8}$
for bfloat16); only the linear algebra (eigenvalues, the Arnoldi basis) runs in float32.
Gradients flow through the casts to the model's 16-bit tensors.
:func:`diagnostics.spectral_radius` and :func:`diagnostics.transition_radii` apply it to every
16-bit point; ``optim.LSCPretrainer`` to its transitions (their floors and gates included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from diagnostics.transitions.protocol import Transition

__all__ = ["HALF_DTYPES", "float32_map", "in_float32"]

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Floating dtypes whose transitions are measured through a float32 view."""


def float32_map(f: Callable[..., torch.Tensor] | None, dtype: torch.dtype):
    """``f`` taking and returning float32: the state is cast to ``dtype`` (the model's) on the
    way in, the result to float32 on the way out; further arguments pass unchanged. ``None``
    stays ``None``.

    Examples:
        >>> import torch
        >>> g = float32_map(lambda s: s * 3, torch.bfloat16)
        >>> g(torch.tensor([1.0, 1.001])).dtype, g(torch.tensor([1.0, 1.001])).tolist()
        (torch.float32, [3.0, 3.0])
    """
    if f is None:
        return None

    def wrapped(s, *context):
        return f(s.to(dtype), *context).float()

    return wrapped


def in_float32(transitions: list[Transition]) -> list[Transition]:
    """The transitions with a 16-bit point as float32 maps (others as they are): the map, the
    floor map and the gate map through :func:`float32_map`, the point cast to float32.

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
            t, fn=float32_map(t.fn, dtype), point=t.point.float(),
            floor=float32_map(t.floor, dtype), gates=float32_map(t.gates, dtype)))
    return out
