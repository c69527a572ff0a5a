"""One training step of a residual LRU stack at 784 steps against its compute floor.

A training step is forward, cross-entropy on 10 classes, backward and an AdamW step of
``RecurrentStack.of(lambda d: LRU(d, N), depth=D, d_model=d, d_input=1, d_output=10)`` on a
batch of ``(B, 784, 1)`` sequences. Its **compute floor** is the same step with the recurrence
taken out: ``linear_scan`` replaced by the identity (``h = u``), so every GEMM (the input and
output projections, the encoder, the mixers, the head), every norm, the loss and the optimiser
step still run on tensors of the same shapes; the ratio is what the scan and its autograd add.
Beside it, ``TorchRNNStack`` LSTM and GRU stacks of the same parameter count (widths solved by
``long_memory.match_budget``) in samples per second.

Every timing is a median over ``--repeats`` rounds taken round-robin in one process. On a
shared machine use ``--clock cpu`` (CPU time of the calling thread, one torch thread: every op
runs in it, page faults included). The command line keeps freed host memory
(``recurrent_params.keep_freed_memory``); so does this script unless ``--no-keep-memory``.

Usage: ``python benchmarks/deep.py [--batch 16] [--depth 4] [--width 128] [--states 128]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import print_table, round_robin  # noqa: E402  (benchmarks/ is the script folder)

from recurrent_params import LRU, RecurrentStack, TorchRNNStack, keep_freed_memory  # noqa: E402
from recurrent_params.cells import lru as lru_module  # noqa: E402
from recurrent_params.experiments.long_memory import count_parameters, match_budget  # noqa: E402

CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, scan=None):
    """One step: forward, cross-entropy, backward, AdamW (``scan`` replaces linear_scan)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run():
        patch = (mock.patch.object(lru_module, "linear_scan", scan) if scan is not None
                 else mock.patch.object(lru_module, "linear_scan", lru_module.linear_scan))
        with patch:
            loss = nn.functional.cross_entropy(model(x)[0], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def _identity_scan(lam, u, h0=None, *args, **kwargs):
    return u


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=784)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--width", type=int, default=128, help="d_model of the LRU stack")
    p.add_argument("--states", type=int, default=128, help="complex states per LRU block")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--clock", choices=list(CLOCKS), default="wall")
    p.add_argument("--no-baselines", action="store_true", help="skip the LSTM / GRU rows")
    p.add_argument("--no-keep-memory", action="store_true",
                   help="leave glibc's default allocator settings")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kept = not args.no_keep_memory and keep_freed_memory()
    x = torch.randn(args.batch, args.length, 1)
    y = torch.randint(0, 10, (args.batch,))
    lru = RecurrentStack.of(lambda d: LRU(d, args.states), depth=args.depth, d_model=args.width,
                            d_input=1, d_output=10)
    budget = count_parameters(lru)
    methods = {
        "LRU stack": training_step(lru, x, y),
        "floor: the same step, scan = identity": training_step(lru, x, y, _identity_scan),
    }
    sizes = {"LRU stack": budget, "floor: the same step, scan = identity": budget}
    if not args.no_baselines:
        for kind in ("lstm", "gru"):
            w = match_budget(kind, budget, args.depth, 0.5)
            net = TorchRNNStack(kind, depth=args.depth, d_model=w["d_model"], d_input=1,
                                d_output=10)
            name = f"{kind.upper()} stack, width {w['d_model']}"
            methods[name] = training_step(net, x, y)
            sizes[name] = count_parameters(net)
    print(f"torch {torch.__version__}, CPU, 1 thread, batch {args.batch} x {args.length} steps, "
          f"depth {args.depth}, LRU width {args.width} with {args.states} states "
          f"({budget} parameters), clock {args.clock}, keep_freed_memory {kept}")
    times = round_robin(methods, args.repeats, clock=CLOCKS[args.clock])
    floor = times["floor: the same step, scan = identity"]
    rows = [[name, f"{sizes[name]}", f"{ms:.0f}", f"{ms / floor:.2f}",
             f"{args.batch / (ms * 1e-3):.1f}"] for name, ms in times.items()]
    print_table("one training step (forward, cross-entropy, backward, AdamW)",
                ["model", "parameters", f"median ms ({args.clock})", "x floor", "samples/s"],
                rows)


if __name__ == "__main__":
    main()
