"""Benchmark of the cells' convolution mode (``mode="fft"``) against their scan mode.

Run from the repository root:

    python benchmarks/conv.py            # teacher-student step + the sweep
    python benchmarks/conv.py --quick    # a smoke run (2 repeats, small sweep)
    python benchmarks/conv.py --device cuda

Section 1 is one Adam step (forward + backward + ``optimizer.step()``) of the curse-of-memory
teacher-student task: batch 128, T = 300, 64 states, 1-D input and output, half-MSE against a
fixed target, for ``LRU(1, 64)``, ``DenseRNN(1, 64, 1)`` and ``DiagonalRNN(1, 64, 1)``.
Section 2 sweeps the number of input/output channels, length and batch (forward + backward),
to show where the convolution loses. Every timing is a median over ``--repeats`` rounds, the
two modes of one row run round-robin in one process, so the ratio is measured under the same
load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import print_table, round_robin  # noqa: E402  (benchmarks/ is the script folder)

from recurrent_params import LRU, DenseRNN, DiagonalRNN  # noqa: E402


def adam_step(make, mode: str, B: int, T: int, device: torch.device):
    """One Adam step of ``make()`` in ``mode`` on fresh Gaussian inputs against a fixed target."""
    torch.manual_seed(0)
    cell = make().to(device)
    cell.mode = mode
    opt = torch.optim.Adam(cell.parameters(), lr=1e-3)
    x = torch.randn(B, T, cell.d_input, device=device)
    target = torch.randn(B, T, cell.d_output, device=device)

    def run():
        opt.zero_grad()
        y, _ = cell(x)
        loss = 0.5 * (y - target).square().mean()
        loss.backward()
        opt.step()

    return run


def fwd_bwd(make, mode: str, B: int, T: int, device: torch.device):
    torch.manual_seed(0)
    cell = make().to(device)
    cell.mode = mode
    x = torch.randn(B, T, cell.d_input, device=device)

    def run():
        y, h = cell(x)
        (y.square().mean() + h.abs().square().mean()).backward()

    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-sweep", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 2
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, device {name}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats}")

    B, T, N = 128, 300, 64
    cells = {
        "LRU(1, 64)": lambda: LRU(1, N, r_min=0.99),
        "DenseRNN(1, 64, 1)": lambda: DenseRNN(1, N, 1),
        "DiagonalRNN(1, 64, 1)": lambda: DiagonalRNN(1, N, 1, r_min=0.99),
    }
    rows = []
    for label, make in cells.items():
        fns = {m: adam_step(make, m, B, T, device) for m in ("scan", "fft")}
        t = round_robin(fns, args.repeats, device)
        rows.append([label, f"{t['scan']:.2f}", f"{t['fft']:.2f}", f"{t['scan'] / t['fft']:.1f}x"])
    print_table(
        f"teacher-student Adam step (fwd + bwd + step), batch {B}, T {T}, N {N}, d_in = d_out = 1",
        ["cell", "scan ms", "fft ms", "fft speed-up"],
        rows,
    )
    if args.no_sweep:
        return

    sweep = [
        # (label, factory, batch, length)
        ("LRU(1, 64)", lambda: LRU(1, 64), 16, 1024),
        ("LRU(8, 64)", lambda: LRU(8, 64), 16, 1024),
        ("LRU(64, 64)", lambda: LRU(64, 64), 16, 1024),
        ("LRU(64, 64)", lambda: LRU(64, 64), 128, 300),
        ("LRU(16, 64)", lambda: LRU(16, 64), 16, 1024),
        ("LRU(1, 64)", lambda: LRU(1, 64), 128, 16),
        ("DenseRNN(1, 64, 1)", lambda: DenseRNN(1, 64, 1), 16, 1024),
        ("DenseRNN(64, 64, 64)", lambda: DenseRNN(64, 64, 64), 16, 1024),
        ("DenseRNN(1, 256, 1)", lambda: DenseRNN(1, 256, 1), 16, 1024),
        ("DenseRNN(16, 64, 16)", lambda: DenseRNN(16, 64, 16), 16, 1024),
        ("DenseRNN(1, 64, 1)", lambda: DenseRNN(1, 64, 1), 128, 16),
        ("DiagonalRNN(64, 64, 64)", lambda: DiagonalRNN(64, 64, 64), 16, 1024),
    ]
    if args.quick:
        sweep = sweep[:3]
    rows = []
    for label, make, b, L in sweep:
        fns = {m: fwd_bwd(make, m, b, L, device) for m in ("scan", "fft")}
        t = round_robin(fns, max(3, args.repeats // 3), device)
        rows.append([label, b, L, f"{t['scan']:.2f}", f"{t['fft']:.2f}",
                     f"{t['scan'] / t['fft']:.2f}x"])
    print_table(
        "sweep: forward + backward (output and last state), scan vs fft",
        ["cell", "batch", "L", "scan ms", "fft ms", "fft speed-up"],
        rows,
    )


if __name__ == "__main__":
    main()
