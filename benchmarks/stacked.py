"""Benchmark: S models trained side by side (``optim.StackedTrainer``) vs one at a time.

Run from the repository root:

    python benchmarks/stacked.py            # S = 10, 5 repeats
    python benchmarks/stacked.py --quick    # 2 repeats

One Adam step of the teacher-student task (batch 128, T = 300, 64 states, half-MSE, fixed
target) per model: ``torch.optim.Adam`` on one model (the baseline), against one step of a
``StackedTrainer`` over S copies, divided by S. Both in convolution mode (``mode="fft"``) and
on one thread. The timings are medians over rounds run in turn in one process, so the ratio
is measured under the same load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import round_robin  # noqa: E402  (benchmarks/ is the script folder)

from optim import StackedTrainer  # noqa: E402
from recurrent_params import LRU, DenseRNN  # noqa: E402


def _loss(out, y):
    return 0.5 * ((out - y) ** 2).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    torch.set_num_threads(1)
    S, B, T, N = args.models, 128, 300, 64
    print(f"one Adam step per model, B {B}, T {T}, d {N}, S = {S}, mode fft, one thread")
    print(f"{'cell':<8} {'alone (ms)':>12} {'stacked / S (ms)':>18} {'ratio':>8}")
    for name, make in (("LRU", lambda: LRU(1, N)), ("DenseRNN", lambda: DenseRNN(1, N, 1))):
        a, s = _bench(make, S, B, T, repeats)
        print(f"{name:<8} {a:>12.1f} {s:>18.1f} {a / s:>7.2f}x")


def _bench(make, S: int, B: int, T: int, repeats: int) -> tuple[float, float]:
    """Median ms of one Adam step of one model alone, and of S stacked models divided by S."""
    torch.manual_seed(0)
    one = make()
    one.mode = "fft"
    opt = torch.optim.Adam(one.parameters(), lr=1e-3)
    many = [make() for _ in range(S)]
    for m in many:
        m.mode = "fft"
    trainer = StackedTrainer(many, [1e-3] * S, schedule="constant")
    x, y = torch.randn(B, T, 1), torch.randn(B, T, 1)
    xs, ys = x.expand(S, B, T, 1), y.expand(S, B, T, 1)

    def alone():
        opt.zero_grad()
        _loss(one(x)[0], y).backward()
        opt.step()

    def stacked():
        trainer.step(_loss, xs, target=ys, in_dims=(0, 0))

    ms = round_robin({"alone": alone, "stacked": stacked}, repeats)
    return ms["alone"], ms["stacked"] / S

if __name__ == "__main__":
    main()
