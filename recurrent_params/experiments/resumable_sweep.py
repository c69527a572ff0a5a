"""A resumable sweep of independent runs, split across ``torchrun`` ranks.

:func:`run_resumable` is the loop the long experiments share (``lsc --task smnist|fashion|
brown``): it skips the runs already recorded in ``--out`` (the JSONL-per-finished-run scheme of
:mod:`recurrent_params.experiments._runs`), deals the others to the ranks by estimated cost
(:meth:`~recurrent_params.experiments.sweep.Sweep.share`), gives each run a checkpoint file to
resume from, appends each finished run's record and removes its checkpoint, and gathers every
record on rank 0 in the order of the work list.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from recurrent_params.experiments._runs import append_record, read_records, records_path

__all__ = ["run_resumable", "is_main_process", "with_source"]


def with_source(signature: str, source: str) -> str:
    """``signature`` (a hash of a sweep's sizes) extended by the data's ``source``, so the
    records of a generated stand-in never stand for the real data's runs (or the reverse)."""
    return hashlib.sha1(f"{signature}|{source}".encode()).hexdigest()[:10]


def is_main_process() -> bool:
    """Rank 0 of a launcher (``RANK`` unset or 0): the process that prints the headers."""
    return int(os.environ.get("RANK", "0")) == 0


def run_resumable(work: list[dict], costs: list[float], out: Path | None, stem: str,
                  signature: str, run_one, describe) -> tuple[list[dict] | None, float]:
    """Run ``work`` across the torchrun ranks, skipping runs recorded in ``out/<stem>*.jsonl``
    with this ``signature``; ``run_one(item, checkpoint)`` returns a record (the checkpoint
    file lies in ``out/<stem without _runs>_checkpoints/`` and is removed once the record is
    written), ``describe(rec)``
    the line printed when it finishes. Returns (every run's record in ``work`` order on rank 0,
    ``None`` elsewhere; the seconds summed over the ranks)."""
    from recurrent_params.experiments.sweep import sweep

    previous = {r["key"]: r for r in read_records(out, stem) if r.get("signature") == signature}
    todo = [(w, c) for w, c in zip(work, costs) if w["key"] not in previous]
    with sweep() as ctx:
        if ctx.is_main and len(todo) < len(work):
            print(f"  {len(work) - len(todo)} of {len(work)} runs already in {out}: skipped")
        log = records_path(out, stem, ctx.rank, ctx.world)
        done = []
        t0 = time.perf_counter()
        for i, item in ctx.share([w for w, _ in todo], [c for _, c in todo]):
            ckpt = None
            if out is not None:
                ckpt = Path(out) / (stem.removesuffix("_runs") + "_checkpoints") / \
                    (item["key"].replace("/", "_") + f"_{signature}.pt")
            rec = run_one(item, ckpt)
            append_record(log, rec)
            if ckpt is not None and ckpt.exists():
                ckpt.unlink()
            print("  " + describe(rec), flush=True)
            done.append((i, rec))
        gathered = ctx.gather(done)
        seconds = ctx.sum(time.perf_counter() - t0)
    if gathered is None:
        return None, seconds
    new = {r["key"]: r for r in gathered}
    return [new.get(w["key"]) or previous[w["key"]] for w in work], seconds
