"""Run a function in several local processes on the gloo backend (loopback only), bounded.

``run_in_processes(fn, 2)`` starts two spawned processes that join one process group over
``tcp://127.0.0.1:<free port>`` (``GLOO_SOCKET_IFNAME=lo``), calls ``fn(rank, world_size,
*args)`` in each, and returns the results (anything ``torch.save`` takes), rank by rank. A
process that raises makes the call raise with its traceback; a run past ``timeout`` seconds
has its processes killed and raises ``TimeoutError``. Every process is ended before it returns.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import tempfile
import time
import traceback
from pathlib import Path

import torch


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(fn, rank: int, world: int, port: int, folder: str, timeout: float, args) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo",
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    path = Path(folder)
    try:
        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
            timeout=datetime.timedelta(seconds=timeout))
        try:
            result = fn(rank, world, *args)
        finally:
            torch.distributed.destroy_process_group()
        torch.save(result, path / f"rank{rank}.pt")
    except BaseException:  # report everything, including a collective's timeout
        (path / f"rank{rank}.err").write_text(traceback.format_exc())
        raise SystemExit(1) from None


def run_in_processes(fn, world: int = 2, *args, timeout: float = 60.0) -> list:
    """``[fn(rank, world, *args) for each rank]``, computed in ``world`` gloo processes."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        procs = [ctx.Process(target=_entry, args=(fn, r, world, port, folder, timeout, args),
                             daemon=True) for r in range(world)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        try:
            for p in procs:
                p.join(max(0.0, deadline - time.monotonic()))
        finally:
            alive = [p for p in procs if p.is_alive()]
            for p in alive:
                p.kill()
            for p in procs:
                p.join(5)
        errors = [(Path(folder) / f"rank{r}.err") for r in range(world)]
        text = "\n".join(f"rank {r}:\n{e.read_text()}" for r, e in enumerate(errors)
                         if e.exists())
        if alive:
            raise TimeoutError(f"{len(alive)} process(es) still running after {timeout} s and "
                               f"killed\n{text}")
        if text or any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"exit codes {[p.exitcode for p in procs]}\n{text}")
        return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=False)
                for r in range(world)]
