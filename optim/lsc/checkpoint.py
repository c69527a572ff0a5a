"""Checkpointing a pre-training run: everything needed to resume it where it stopped.

The state holds the weights, the best weights and score, the step and batch counters, the
history, the floors, the random generators and the optimiser state; resuming from it gives the
same result as an uninterrupted run.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optim.lsc.pretrainer import LSCPretrainer

__all__ = ["pretrainer_state", "load_pretrainer_state_", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("model", "best_state", "best_score", "best_step", "step", "batch_index",
                 "near", "history", "radii_before", "targets", "converged", "is_ffn",
                 "floors", "floored", "saturation_before", "generator", "optimizer")
"""The keys every checkpoint holds (``shared_generator`` and ``data_generator`` are optional:
checkpoints written before data-parallel runs lack them; so is ``krylov_start``, the
matrix-free radii's warm start vectors)."""


def pretrainer_state(pre: LSCPretrainer) -> dict[str, Any]:
    """The checkpoint of a pre-trainer (see :meth:`LSCPretrainer.state_dict`)."""
    return {
        "model": {k: v.detach().clone() for k, v in pre.model.state_dict().items()},
        "best_state": pre.best_state, "best_score": pre.best_score,
        "best_step": pre.best_step, "step": pre.step, "batch_index": pre.batches.index,
        "near": dict(pre.near), "history": copy.deepcopy(pre.history),
        "radii_before": pre.radii_before, "targets": pre.targets,
        "converged": pre.converged, "is_ffn": pre._is_ffn,
        "floors": dict(pre.floors), "floored": dict(pre.floored),
        "saturation_before": pre.saturation_before,
        "generator": pre.generator.get_state(),
        "shared_generator": pre._shared_generator.get_state(),
        "data_generator": (None if pre._data_generator is None
                           else pre._data_generator.get_state()),
        "krylov_start": {k: v.clone() for k, v in pre.krylov_start.items()},
        "optimizer": None if pre.optimizer is None else copy.deepcopy(
            pre.optimizer.state_dict()),
    }


def load_pretrainer_state_(pre: LSCPretrainer, state: dict[str, Any]) -> None:
    """Restore a :func:`pretrainer_state` into ``pre`` (same model architecture and settings).

    Raises:
        TypeError: ``state`` is not a dict.
        ValueError: ``state`` misses keys of a checkpoint (they are named, with what a
            checkpoint holds), or it has optimiser state but ``pre`` takes no gradient step.
    """
    if not isinstance(state, dict):
        raise TypeError(f"load_state_dict expects the dict of LSCPretrainer.state_dict(), got "
                        f"{type(state).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"not an LSCPretrainer checkpoint: it misses the keys {missing}. A "
                         "checkpoint is the dict of LSCPretrainer.state_dict(): the model's "
                         "weights ('model'), the best weights and score, the step and batch "
                         "counters, the history, floors, random generators and optimiser "
                         f"state ({', '.join(REQUIRED_KEYS)})")
    pre.model.load_state_dict(state["model"])
    pre.best_state = state["best_state"]
    pre.best_score, pre.best_step = state["best_score"], state["best_step"]
    pre.step = state["step"]
    pre.near, pre.history = dict(state["near"]), copy.deepcopy(state["history"])
    pre.radii_before, pre.targets = state["radii_before"], state["targets"]
    pre.converged = state["converged"]
    pre.floors, pre.floored = dict(state["floors"]), dict(state["floored"])
    pre.saturation_before = state["saturation_before"]
    if state["is_ffn"] is not None:
        pre._is_ffn = state["is_ffn"]
    pre.generator.set_state(state["generator"])
    if state.get("shared_generator") is not None:
        pre._shared_generator.set_state(state["shared_generator"])
    if state.get("data_generator") is not None and pre._data_generator is not None:
        pre._data_generator.set_state(state["data_generator"])
    # optional: checkpoints written before warm-started radii lack it (the next step is cold)
    pre.krylov_start = {k: v.clone() for k, v in (state.get("krylov_start") or {}).items()}
    if state["optimizer"] is not None:
        if pre.optimizer is None:
            raise ValueError("the checkpoint has optimiser state but grad_step=False")
        pre.optimizer.load_state_dict(state["optimizer"])
    pre.batches.resume(state["batch_index"])
