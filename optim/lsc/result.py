"""The outcome of an LSC pre-training run (:class:`LSCResult`) and its plot."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: matplotlib stays optional
    import matplotlib.figure

__all__ = ["LSCResult", "transition_status"]


@dataclass
class LSCResult:
    r"""Outcome of :meth:`LSCPretrainer.run`.

    Attributes:
        converged: every radius stayed within tolerance for ``patience`` steps.
        steps: pre-training steps taken in total.
        radii_before: ``{transition: mean radius}`` before the first step.
        radii_after: the same, re-measured on a fresh batch with the final (best) weights.
        targets: ``{transition: target radius}``.
        history: one dict per step: ``"step"``, ``"radii"`` (measured at that step, before
            its update), ``"loss"`` ($\mathrm{mean}(\bar\rho-\rho_t)^2$), ``"max_dev"``
            (largest $|\bar\rho-\rho_t|$ of the step) and ``"window_dev"`` (the same for the
            radii averaged over the last ``patience`` steps).
        best_step: the step whose weights were kept.
        reason: why it stopped, in words.
        status: per transition, ``{"target", "reached", "floor", "driven", "why"}``: whether
            its mean radius after pre-training is within tolerance of the target, the
            estimated radius it tends to as its drivers go to zero (``None`` where there is no
            such floor, e.g. simple RNNs and FFNs), whether any of its drivers could move
            (``False``: every driver is frozen, so it was measured but not pre-trained, and
            it is reported as not driven rather than as failing), and, when not reached or
            not driven, why (e.g. an LSTM time radius floored by its forget gates, which
            kernels cannot scale).
        saturation_before: per transition with gates (LSTM/GRU time transitions), the fraction
            of gate pre-activations with $|z| >$ ``saturation_threshold`` before the first
            step, plus ``"all"`` over every gate.
        saturation_after: the same with the final weights.
        warnings: the warnings issued (saturation, unreachable targets).
        frozen: the qualified names of the drivers left alone because they do not require
            grad (``"0.weight"``, ``"weight_hh_l0"``; a parametrized driver is named by its
            effective tensor, ``"1.lam"``), sorted.
    """

    converged: bool
    steps: int
    radii_before: dict[str, float]
    radii_after: dict[str, float]
    targets: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    reason: str = ""
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    saturation_before: dict[str, float] = field(default_factory=dict)
    saturation_after: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def __repr__(self) -> str:
        def _row(k):
            st = self.status.get(k, {})
            floor = st.get("floor")
            mark = "" if st.get("reached", True) else "  NOT reached" + (
                f" (floor ~{floor:.3f})" if floor is not None else "")
            if not st.get("driven", True):
                mark = "  not driven (frozen drivers)"
            return (f"  {k:<16} {self.radii_before.get(k, float('nan')):8.4f} -> "
                    f"{self.radii_after.get(k, float('nan')):8.4f}  (target "
                    f"{self.targets[k]:.4f}){mark}")

        rows = "\n".join(_row(k) for k in self.targets)
        if "all" in self.saturation_after:
            rows += (f"\n  gate saturation {self.saturation_before.get('all', float('nan')):.3f}"
                     f" -> {self.saturation_after['all']:.3f}")
        if self.frozen:
            rows += f"\n  frozen, left alone: {', '.join(self.frozen)}"
        return (f"LSCResult(converged={self.converged}, steps={self.steps}, "
                f"best_step={self.best_step}, reason={self.reason!r})\n"
                f"  {'transition':<16} {'before':>8}    {'after':>8}\n{rows}")

    def plot(self, path: str | os.PathLike | None = None) -> matplotlib.figure.Figure:
        """Radius of each transition per step, with the targets (needs matplotlib).

        Args:
            path: if given, the figure is saved there.

        Returns:
            The matplotlib figure.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps = [h["step"] for h in self.history]
        for name, target in self.targets.items():
            line, = ax.plot(steps, [h["radii"][name] for h in self.history], label=name)
            ax.axhline(target, color=line.get_color(), ls=":", lw=0.8)
        ax.set_xlabel("pre-training step")
        ax.set_ylabel("mean radius")
        ax.legend(fontsize="small", ncol=2)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def transition_status(after: dict[str, float], targets: dict[str, float], reach: float,
                      floored: dict[str, bool], floors: dict[str, float],
                      floor_why: dict[str, str], reason: str,
                      undriven: dict[str, list[str]] | None = None
                      ) -> dict[str, dict[str, Any]]:
    """:attr:`LSCResult.status`: per transition, whether its radius after pre-training is
    within ``reach`` of its target, its floor, whether it was driven (``undriven``: the
    transitions whose drivers are all frozen, with those drivers' names), and why it was not
    reached or not driven (``""`` when it was reached and driven)."""
    status = {}
    undriven = undriven or {}
    for k, target in targets.items():
        reached = abs(after[k] - target) <= reach
        why = ""
        if k in undriven:
            why = (f"not driven: every driver is frozen (requires_grad=False: "
                   f"{', '.join(undriven[k])}) and was left alone; the radius was only "
                   "measured")
        elif not reached and floored.get(k, False):
            why = (f"floored: the radius tends to ~{floors[k]:.3f} as its drivers go "
                   f"to 0, above the target {target:g} (" + floor_why.get(k, "") +
                   "); the drivers were left alone rather than driven to degenerate "
                   "values")
        elif not reached:
            why = "not within tolerance when pre-training stopped (" + reason + ")"
        status[k] = {"target": target, "reached": reached, "floor": floors.get(k),
                     "driven": k not in undriven, "why": why}
    return status
