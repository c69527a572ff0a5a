"""Shared pieces of the benchmark scripts: round-robin median timing and plain-text tables.

Timings are medians over rounds run in turn in one process, so that a ratio between two
callables compares them under the same load.
"""

from __future__ import annotations

import statistics
import time

import torch


def sync(device: torch.device | None) -> None:
    """Wait for the device (CUDA), so that a timer reads finished work."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def round_robin(fns: dict, repeats: int, device: torch.device | None = None,
                budget_s: float = 1e9, clock=time.perf_counter) -> dict:
    """Median milliseconds per callable; one warm-up, then ``repeats`` rounds in turn.

    A callable whose single run exceeds ``budget_s`` is run only once more. ``clock`` is the
    timer in seconds: wall time by default; ``time.thread_time`` counts only the CPU time of
    the calling thread (insensitive to other jobs taking the cores, valid with one torch
    thread on CPU, where every op runs in the calling thread).
    """
    times: dict = {k: [] for k in fns}
    slow = set()
    for name, fn in fns.items():  # warm-up (and compile)
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        if time.perf_counter() - start > budget_s:
            slow.add(name)
    for r in range(repeats):
        for name, fn in fns.items():
            if name in slow and r > 0:
                continue
            sync(device)
            start = clock()
            fn()
            sync(device)
            times[name].append(clock() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` under ``header``, each column as wide as its widest cell."""
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = " | ".join(f"{{:>{w}}}" for w in widths)
    print(fmt.format(*header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))
