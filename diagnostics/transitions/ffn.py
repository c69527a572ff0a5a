"""Feed-forward networks: one depth transition per ``nn.Linear`` (to the next one).

For $a_{l+1} = \\sigma(W a_l + b)$ the transition derivative is
$\\mathrm{diag}(\\sigma'(W a_l + b))\\, W$ (REFERENCE section 3); the layer's kernel drives it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from diagnostics.transitions._layer import apply_all, check_finite
from diagnostics.transitions.protocol import Driver, Transition

__all__ = ["ffn_transitions"]


def ffn_transitions(seq: Sequence[nn.Module], x: torch.Tensor) -> list[Transition]:
    """Transitions ``linear{i}`` of a sequence of modules holding ``nn.Linear`` layers: from
    the input of Linear ``i`` to the input of the next Linear (or to the output)."""
    mods = list(seq)
    lin = [i for i, m in enumerate(mods) if isinstance(m, nn.Linear)]
    with torch.no_grad():
        a = apply_all(mods[: lin[0]], x)  # e.g. a leading nn.Flatten
    a = a.reshape(-1, a.shape[-1])  # (B, d)
    transitions = []
    for j, i in enumerate(lin):
        block = tuple(mods[i: lin[j + 1] if j + 1 < len(lin) else len(mods)])
        if a.shape[-1] != mods[i].in_features:
            raise ValueError(f"Linear layer {i} expects {mods[i].in_features} features, "
                             f"received {a.shape[-1]}")

        def fn(u, block=block):
            return apply_all(block, u)

        transitions.append(Transition(f"linear{i}", fn, a, (), (Driver(mods[i], "weight"),),
                                      "depth"))
        with torch.no_grad():
            a = fn(a)
        check_finite(a, f"the output of Linear layer {i}")
    return transitions
