"""Split a sweep's independent configurations across processes and gather them on rank 0.

Under ``torchrun --nproc-per-node N`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``) an experiment's configurations are dealt round-robin to
the ranks (configuration ``i`` to rank ``i mod N``), or by estimated cost when the experiment
gives one (:meth:`Sweep.share`), each rank runs its share with exactly
the computations one process would run for them, and rank 0 gathers the results back into
the single-process order, so it prints and saves the same table; the other ranks return
``None``. Without a launcher (or with ``WORLD_SIZE=1``) everything runs in this process.

The process group only carries Python objects (the results), so it uses gloo, whatever the
device. With ``--device cuda`` and several GPUs, rank ``r`` computes on ``cuda:<LOCAL_RANK>``.
A group that is already initialised (e.g. by the caller) is used as it is and left alone.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Sweep", "sweep"]


@dataclass
class Sweep:
    """Where this process stands in a sweep.

    Attributes:
        rank: this process's rank (0 in a single process).
        world: number of processes.
        group: the process group, or ``None`` in a single process.
    """

    rank: int = 0
    world: int = 1
    group: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports."""
        return self.rank == 0

    def share(self, items: Sequence[Any],
              costs: Sequence[float] | None = None) -> list[tuple[int, Any]]:
        """``(index, item)`` of the items this rank runs, in index order.

        Without ``costs``: indices ``rank, rank + world, ...`` (round-robin). With ``costs``
        (an estimate per item, any unit): longest first, each item to the rank with the least
        estimated work so far (ties to the lower rank), so configurations of unequal size
        (depth 2 and depth 5 networks, say) still finish together. Every rank computes the
        same deal, so no communication is needed.
        """
        if costs is None:
            return [(i, items[i]) for i in range(self.rank, len(items), self.world)]
        if len(costs) != len(items):
            raise ValueError(f"share: {len(costs)} costs for {len(items)} items")
        if not all(math.isfinite(c) and c >= 0 for c in costs):
            raise ValueError("share: costs must be finite and non-negative")
        load = [0.0] * self.world
        mine = []
        for i in sorted(range(len(items)), key=lambda j: (-costs[j], j)):
            rank = min(range(self.world), key=lambda r: (load[r], r))
            load[rank] += costs[i]
            if rank == self.rank:
                mine.append(i)
        return [(i, items[i]) for i in sorted(mine)]

    def gather(self, results: list[tuple[int, Any]]) -> list[Any] | None:
        """All ranks' ``(index, result)`` pairs, in index order, on rank 0 (``None`` elsewhere).

        A collective call: every rank calls it once.
        """
        if self.group is None:
            return [r for _, r in sorted(results, key=lambda pair: pair[0])]
        dist = torch.distributed
        dst = dist.get_global_rank(self.group, 0)
        out = [None] * self.world if self.is_main else None
        dist.gather_object(results, out, dst=dst, group=self.group)
        if not self.is_main:
            return None
        merged = [pair for part in out for pair in part]
        indices = sorted(i for i, _ in merged)
        if indices != list(range(len(indices))):
            raise RuntimeError(f"the ranks returned configurations {indices}, not 0..n-1")
        return [r for _, r in sorted(merged, key=lambda pair: pair[0])]

    def sum(self, value: float) -> float:
        """The sum of ``value`` over the ranks (on every rank)."""
        if self.group is None:
            return value
        out = [None] * self.world
        torch.distributed.all_gather_object(out, value, group=self.group)
        return float(sum(out))

    def device(self, device: torch.device | str) -> torch.device:
        """``device``, or this rank's own GPU for ``cuda`` when several are visible."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None and self.world > 1 \
                and torch.cuda.device_count() > 1:
            local = int(os.environ.get("LOCAL_RANK", self.rank))
            return torch.device("cuda", local % torch.cuda.device_count())
        return device


def _launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


@contextmanager
def sweep(timeout_s: float = 24 * 3600.0) -> Iterator[Sweep]:
    """The sweep context of this process (see the module docstring).

    Initialises a gloo process group from the launcher's environment when there is one and
    none is initialised yet, and destroys it on exit.

    Args:
        timeout_s: how long a rank waits for the others in a collective (the ranks finish
            their shares at different times).

    Yields:
        A :class:`Sweep`.
    """
    dist = torch.distributed
    created = False
    if dist.is_available() and not dist.is_initialized() and _launched():
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_s))
        created = True
    try:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            yield Sweep(dist.get_rank(), dist.get_world_size(), dist.group.WORLD)
        else:
            yield Sweep()
    finally:
        if created:
            dist.destroy_process_group()
