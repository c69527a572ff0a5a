"""Cost of one LSC pre-training step relative to one forward+backward of the model.

LSTM of depth 5 and width 256 (state [h, c] of 512 per layer, 10 transitions), Gaussian
inputs. Prints medians and ratios against the forward+backward baseline measured in the same
process, for the exact radius (forward-mode Jacobians + ``eigvals``) and the matrix-free one
(restarted Arnoldi on Jacobian-vector products), plus the agreement of the two radii.

Usage: ``python benchmarks/lsc.py [--batch 16] [--length 20] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from diagnostics import transition_radii
from optim import LSCPretrainer


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lstm = nn.LSTM(args.width, args.width, num_layers=args.depth, batch_first=True)
    x = torch.randn(args.batch, args.length, args.width)

    def fwd_bwd():
        lstm.zero_grad()
        lstm(x)[0].square().mean().backward()

    fwd_bwd()
    base = _median_time(fwd_bwd, max(5, 3 * args.repeats))
    print(f"LSTM depth {args.depth}, width {args.width}, batch {args.batch}, length "
          f"{args.length}; torch {torch.__version__}, 1 thread")
    print(f"forward+backward (baseline): {base * 1e3:9.1f} ms")
    for method, repeats in (("matrix_free", args.repeats), ("exact", 1)):
        pre = LSCPretrainer(lstm, x, method=method, max_exact=10**9, progress=False)
        pre.targets = None
        pre._measure(grad=False)  # resolve targets (and warm up)
        tol = pre._default_tolerance() if hasattr(pre, "_is_ffn") else 0.05
        pre._is_ffn = False
        t = _median_time(lambda pre=pre, tol=tol: pre._one_step(tol), repeats)
        print(f"one pre-training step, {method:<11}: {t * 1e3:9.1f} ms  "
              f"= {t / base:7.1f} x forward+backward")
    gen = torch.Generator
    r_mf = transition_radii(lstm, x, method="matrix_free", generator=gen().manual_seed(1))
    r_ex = transition_radii(lstm, x, method="exact", generator=gen().manual_seed(1))
    worst = max(abs(r_mf[k] - r_ex[k]) / r_ex[k] for k in r_ex)
    print(f"largest relative difference matrix-free vs exact mean radius: {worst:.2e}")


if __name__ == "__main__":
    main()
