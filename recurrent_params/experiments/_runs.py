"""Resumable sweeps: one JSONL record per finished run, and per-epoch checkpoints of a run.

* :func:`append_record` appends one JSON object per line (a finished run) and flushes it, so
  an interrupted sweep loses at most the run in progress; :func:`read_records` reads every
  ``<stem>*.jsonl`` of a folder (the single-process file and each ``torchrun`` rank's
  ``<stem>.rank<r>.jsonl``), skipping a last line cut short by a kill.
* :func:`save_checkpoint` writes a ``torch.save`` dictionary atomically (a temporary file,
  then ``os.replace``), so a kill during the write leaves the previous checkpoint intact;
  :func:`load_checkpoint` reads it back or returns ``None``.
* :func:`rng_state` / :func:`set_rng_state` capture and restore torch's global generators
  (CPU and, when present, CUDA) together with any ``torch.Generator`` a run owns, so a run
  resumed from a checkpoint draws the same random numbers as one that was never stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["append_record", "read_records", "records_path", "save_checkpoint",
           "load_checkpoint", "rng_state", "set_rng_state"]


def records_path(out: Path | None, stem: str, rank: int = 0, world: int = 1) -> Path | None:
    """``out/<stem>.jsonl`` in one process, ``out/<stem>.rank<r>.jsonl`` under a launcher."""
    if out is None:
        return None
    return Path(out) / (f"{stem}.jsonl" if world == 1 else f"{stem}.rank{rank}.jsonl")


def append_record(path: Path | None, record: dict) -> None:
    """Append ``record`` as one JSON line to ``path`` (nothing when ``path`` is ``None``)."""
    if path is None:
        return
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=float) + "\n")
        fh.flush()


def read_records(folder: Path | None, stem: str) -> list[dict]:
    """Every record of ``folder/<stem>.jsonl`` and ``folder/<stem>.rank*.jsonl``.

    A line that does not parse (the last line of a file whose writer was killed mid-write)
    is skipped.
    """
    if folder is None or not Path(folder).is_dir():
        return []
    paths = sorted(Path(folder).glob(f"{stem}.jsonl")) + \
        sorted(Path(folder).glob(f"{stem}.rank*.jsonl"))
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | None, map_location: Any = "cpu") -> dict | None:
    """The dictionary saved at ``path``, or ``None`` when there is none."""
    if path is None or not Path(path).exists():
        return None
    return torch.load(path, map_location=map_location, weights_only=False)


def rng_state(generators: Iterable[torch.Generator] = ()) -> dict:
    """Torch's CPU (and CUDA) generator states and those of ``generators``."""
    state = {"cpu": torch.get_rng_state(), "own": [g.get_state() for g in generators]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generators: Iterable[torch.Generator] = ()) -> None:
    """Restore what :func:`rng_state` captured (``generators`` in the same order)."""
    torch.set_rng_state(state["cpu"])
    for g, s in zip(generators, state["own"]):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
