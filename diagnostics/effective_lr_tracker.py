"""Record effective learning rates during training through an optimiser step hook."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: matplotlib stays optional
    import matplotlib.axes
    import matplotlib.figure

from diagnostics._optimizer_rules import optimizer_step as _optimizer_step
from diagnostics._optimizer_rules import rule_for as _rule_for
from diagnostics._optimizer_rules import supported_optimizers
from diagnostics.effective_lr import EffectiveLRs, _names, effective_learning_rates
from diagnostics.parameter_groups import grouped_summary

__all__ = ["EffectiveLRTracker"]


class EffectiveLRTracker:
    """Record :func:`~diagnostics.effective_learning_rates` every ``every`` optimiser steps.

    Registers a step post-hook on the optimiser (``optimizer.register_step_post_hook``), so the
    training loop is unchanged. Per-tensor summaries are kept for every record; the full
    per-coordinate tensors only with ``keep_tensors=True``. Use it as a context manager or
    call :meth:`remove` to unregister the hook.

    Steps are the optimiser's own step count (``state[p]["step"]``, the largest over its
    parameters), not the number of calls seen: a tracker attached to a resumed optimiser
    records the resumed step numbers, and after ``optimizer.load_state_dict`` rewinds to an
    earlier step the records of the abandoned steps (from the rewound step on) are dropped, so
    ``steps`` stays increasing and every record belongs to the run that continues. An optimiser
    that keeps no step count in its state (e.g. SGD, with ``definition="all_ones"``) is counted
    by its ``step()`` calls since the tracker was attached.

    Args:
        optimizer: a supported optimiser (or any optimiser with ``definition="all_ones"``).
        named_parameters: ``model.named_parameters()`` or a dict, to key results by name.
        every: record after every ``every``-th step (1 = every step).
        definition: ``"preconditioner"`` or ``"all_ones"``
            (see :func:`~diagnostics.effective_learning_rates`).
        keep_tensors: also keep the per-coordinate tensors (memory: one copy of the model per
            record).
        groups: ``name -> group`` (e.g. :func:`~diagnostics.recurrent_parameter_groups`):
            also pool each record's coordinates per group
            (:func:`~diagnostics.grouped_summary`) before the tensors are dropped; read them
            with :meth:`group_series`.

    Attributes:
        steps: optimiser step counts at which records were taken.
        records: the :class:`~diagnostics.EffectiveLRs` of each record (tensors dropped
            unless ``keep_tensors``).
        group_records: with ``groups``, the :func:`~diagnostics.grouped_summary` of each
            record (``group -> statistics``); empty otherwise.

    Examples:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.ones(3))
        >>> opt = torch.optim.Adam([p], lr=0.01)
        >>> with EffectiveLRTracker(opt, {"p": p}, every=2) as tracker:
        ...     for _ in range(6):
        ...         opt.zero_grad(); (p ** 2).sum().backward(); opt.step()
        >>> tracker.steps
        [2, 4, 6]
        >>> steps, values = tracker.series("p", "median")
        >>> len(values)
        3
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        named_parameters: Iterable[tuple[str, torch.Tensor]] | dict | None = None,
        *,
        every: int = 1,
        definition: str = "preconditioner",
        keep_tensors: bool = False,
        groups: dict[str, str] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.optimizer = optimizer
        self.named_parameters = (dict(named_parameters) if named_parameters is not None
                                 else None)
        self.every = every
        self.definition = definition
        self.keep_tensors = keep_tensors
        self.steps: list[int] = []
        self.records: list[EffectiveLRs] = []
        self.groups = dict(groups) if groups is not None else None
        self.group_records: list[dict[str, dict]] = []
        self._calls = 0
        if definition not in ("preconditioner", "all_ones"):
            raise ValueError(
                f"definition must be 'preconditioner' or 'all_ones', got {definition!r}"
            )
        if definition == "preconditioner" and _rule_for(optimizer) is None:  # fail now
            raise TypeError(
                f"cannot read effective learning rates of {type(optimizer).__name__}; "
                f"supported: {supported_optimizers()}"
            )
        if self.named_parameters is not None:
            _names(optimizer, self.named_parameters)  # a name it does not hold: fail now
        self._handle = optimizer.register_step_post_hook(self._hook)

    def _hook(self, optimizer, args, kwargs) -> None:
        self._calls += 1
        step = _optimizer_step(optimizer) or self._calls
        if step % self.every:
            return
        rec = effective_learning_rates(optimizer, self.named_parameters,
                                       definition=self.definition)
        keep = bisect_left(self.steps, step)  # a rewind: drop the records from `step` on
        del self.steps[keep:], self.records[keep:], self.group_records[keep:]
        if self.groups is not None:
            self.group_records.append(grouped_summary(rec, self.groups))
        if not self.keep_tensors:
            rec.rates = {}
        self.steps.append(step)
        self.records.append(rec)

    def remove(self) -> None:
        """Unregister the step hook (records are kept)."""
        self._handle.remove()

    def __enter__(self) -> EffectiveLRTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return (f"EffectiveLRTracker({type(self.optimizer).__name__}, every={self.every}, "
                f"definition={self.definition!r}, records={len(self.records)})")

    def names(self) -> list[str]:
        """Parameter names seen in the records."""
        return list(self.records[0].summary) if self.records else []

    def series(self, name: str, stat: str = "geo_mean") -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one summary statistic of one parameter tensor.

        Args:
            name: a parameter name (see :meth:`names`).
            stat: ``"geo_mean"``, ``"min"``, ``"q10"``, ``"median"``, ``"q90"`` or ``"max"``.
        """
        if self.records and name not in self.records[0].summary:
            raise ValueError(f"unknown parameter {name!r}; recorded: {self.names()}")
        return list(self.steps), [r.summary[name][stat] for r in self.records]

    def group_series(self, group: str, stat: str = "geo_mean") -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one statistic of one parameter group (needs ``groups``).

        Args:
            group: a group name, e.g. ``"recurrent"``.
            stat: ``"geo_mean"``, ``"min"``, ``"q10"``, ``"median"``, ``"q90"`` or ``"max"``.
        """
        if self.groups is None:
            raise ValueError("group_series needs a tracker built with groups=")
        seen = list(self.group_records[0]) if self.group_records else []
        if self.group_records and group not in seen:
            raise ValueError(f"unknown group {group!r}; recorded: {seen}")
        return list(self.steps), [r[group][stat] for r in self.group_records]

    def to_dict(self) -> dict:
        """JSON-serialisable history: steps, per-tensor summaries and, with ``groups``,
        per-group summaries."""
        out = {"definition": self.definition, "steps": list(self.steps),
               "summary": [r.summary for r in self.records]}
        if self.groups is not None:
            out["groups"] = list(self.group_records)
        return out

    def plot(self, stat: str = "geo_mean", *, names: list[str] | None = None,
             ax: matplotlib.axes.Axes | None = None, band: bool = True) -> matplotlib.figure.Figure:
        """Plot one statistic per parameter tensor against the step (log scale).

        Args:
            stat: summary statistic to draw.
            names: parameter tensors to draw (default: all).
            ax: a matplotlib axis (default: a new figure).
            band: shade the q10-q90 range.

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        for name in names or self.names():
            steps, values = self.series(name, stat)
            (line,) = ax.plot(steps, values, label=name)
            if band:
                _, lo = self.series(name, "q10")
                _, hi = self.series(name, "q90")
                ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        label = "update of an all-ones gradient" if self.definition == "all_ones" else \
            "effective learning rate"
        ax.set_ylabel(f"{label} ({stat})")
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig
