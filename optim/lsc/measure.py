r"""Floors and gate saturation: what the pre-trainer measures besides the radii.

* **Floor**: the radius a transition tends to as its drivers go to zero (an LSTM time
  transition: the largest forget gate, REFERENCE section 3). A target below the floor cannot
  be reached with the kernels except by degenerate weights; such a transition is *floored*
  and left alone.
* **Gate saturation**: the fraction of gate pre-activations $z$ with $|z| >$ a threshold;
  gradients through those gates vanish, so pre-training that raises it is reported.

Both are shard-size weighted means over a data-parallel group (``reducer``).

The thresholds are this project's, not the reference's (the authors' code reports neither
floors nor saturation).
"""

from __future__ import annotations

import torch

from diagnostics import ShardReducer
from diagnostics.transitions import Transition

__all__ = ["SATURATION_THRESHOLD", "SATURATION_WARN_LEVEL", "SATURATION_WARN_RISE",
           "gate_saturation", "mean_floors", "saturation_warning"]

SATURATION_THRESHOLD = 4.0
r"""$|z|$ above which a gate pre-activation counts as saturated: $\sigma'(4) = 0.018$, 7 % of
$\sigma'(0)$ (ours)."""
SATURATION_WARN_LEVEL = 0.1
"""Warn when more than this fraction of gates is saturated after pre-training ..."""
SATURATION_WARN_RISE = 0.05
"""... and pre-training raised it by more than this. Both are ours, set by judgement, not
fitted: on the LSTM x3 of ``benchmarks/lsc_defaults.py`` (table in docs/concepts/lsc.md)
they flag the target-1.0 runs (0 -> 25-28 % saturated) and not the target-0.5 ones
(0 -> 5-10 %)."""


@torch.no_grad()
def gate_saturation(transitions: list[Transition], threshold: float,
                    reducer: ShardReducer | None = None) -> dict[str, float]:
    """Fraction of gate pre-activations with ``|z| > threshold``, per transition with gates,
    plus ``"all"`` over every gate (``{}`` when no transition has gates)."""
    out, sizes, hits, total = {}, {}, 0, 0
    for t in transitions:
        if t.gates is None:
            continue
        z = t.gates(t.point, *t.context)
        sat = z.abs() > threshold
        out[t.name] = float(sat.float().mean())
        sizes[t.name] = sat.numel()
        hits, total = hits + int(sat.sum()), total + sat.numel()
    if total:
        out["all"] = hits / total
        sizes["all"] = total
    if reducer is not None and reducer.active and out:
        out = {k: float(v) for k, v in reducer.weighted_means(out, sizes).items()}
    return out


@torch.no_grad()
def mean_floors(transitions: list[Transition],
                reducer: ShardReducer | None = None) -> dict[str, float]:
    """The batch-mean floor of every transition that has one."""
    local, sizes = {}, {}
    for t in transitions:
        if t.floor is not None:
            local[t.name] = float(t.floor(t.point, *t.context).mean())
            sizes[t.name] = int(t.point.shape[0])
    if reducer is not None and reducer.active and local:
        local = {k: float(v) for k, v in reducer.weighted_means(local, sizes).items()}
    return local


def saturation_warning(before: dict[str, float] | None, after: dict[str, float],
                       threshold: float) -> str | None:
    """The warning to issue when pre-training saturated the gates, else ``None``."""
    sb, sa = (before or {}).get("all"), after.get("all")
    if sb is None or sa is None or not (sa > SATURATION_WARN_LEVEL
                                        and sa > sb + SATURATION_WARN_RISE):
        return None
    return (f"LSC pre-training saturated the network: {sa:.1%} of gate pre-activations have "
            f"|z| > {threshold:g} after, {sb:.1%} before; gradients through those gates "
            "vanish")
