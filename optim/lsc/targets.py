r"""The target radius of every transition (REFERENCE section 3, arXiv 2308.12075).

The Local Stability Condition asks that the mean radius of every transition equal a target
$\rho_t$: 1 for feed-forward networks and single-layer recurrent networks, 1/2 for deep
recurrent networks (time and depth each get half, so that the
$\binom{\Delta t+\Delta l}{\Delta t}$ gradient paths of the depth-time grid do not explode), or
the "unbalanced" split $\rho_{depth} = L/(L+T)$, $\rho_{time} = T/(L+T)$. A transition's own
``target`` (a decoder: 1) wins over the global one; a ``{name: radius}`` dict wins over both.
"""

from __future__ import annotations

import math

from diagnostics.transitions import Transition

__all__ = ["resolve_targets"]


def resolve_targets(transitions: list[Transition], target, seq_len_hint: int | None
                    ) -> dict[str, float]:
    """``{transition: target radius}`` from the user's ``target`` (a radius, ``"unbalanced"``,
    a dict or ``None``) and, for ``"unbalanced"`` without horizons, the sequence length."""
    if isinstance(target, dict):
        missing = [t.name for t in transitions if t.name not in target]
        if missing:
            raise ValueError(f"target dict misses transitions {missing}")
        return {t.name: _positive(target[t.name], f"target[{t.name!r}]") for t in transitions}
    out = _global_targets(transitions, target, seq_len_hint)
    # a transition's own target (a decoder: 1, REFERENCE section 3) wins over the global one
    return {t.name: (float(t.target) if t.target is not None else out[t.name])
            for t in transitions}


def _global_targets(transitions: list[Transition], target, seq_len_hint: int | None):
    times = [t for t in transitions if t.kind == "time"]
    if target is None:
        target = 0.5 if len(times) > 1 else 1.0
    if isinstance(target, str):
        if target != "unbalanced":
            raise ValueError(f"target must be a float, 'unbalanced' or None, got {target!r}")
        depth = max(len(times), 1)
        horizon = max((t.horizon or 0 for t in times), default=0) or (seq_len_hint or 0)
        return {t.name: (horizon if t.kind == "time" else depth) / (depth + horizon)
                for t in transitions}
    target = _positive(target, "target")
    return {t.name: target for t in transitions}


def _positive(value, name: str) -> float:
    """A target radius: a positive finite number (``inf`` would drive the weights to inf)."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite radius, got {value}")
    return value
