"""Cost of one LSC pre-training step relative to one forward+backward of the model.

LSTM of depth 5 and width 256 (state [h, c] of 512 per layer, 10 transitions), Gaussian
inputs. Prints medians and ratios against the forward+backward baseline measured in the same
process: one default pre-training step (matrix-free radii by Arnoldi on vector-Jacobian
products, a gradient step of AdaBelief inside Lookahead, shuffling), the same without the
gradient step, and the agreement of the matrix-free radii with exact ones (forward-mode
Jacobians + ``eigvals``, float32). ``--profile`` prints a cProfile of one default step.

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
    parser.add_argument("--profile", action="store_true")
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
    for label, kwargs in (("default (grad step + shuffle)", {}),
                          ("no gradient step", {"grad_step": False})):
        pre = LSCPretrainer(lstm, x, progress=False, **kwargs)
        pre._measure(grad=False)  # resolve targets (and warm up)
        pre._is_ffn = False
        pre._one_step(0.05)
        t = _median_time(lambda pre=pre: pre._one_step(0.05), args.repeats)
        print(f"one pre-training step, {label:<30}: {t * 1e3:9.1f} ms  "
              f"= {t / base:6.1f} x forward+backward")
    if args.profile:
        import cProfile
        import pstats

        pre = LSCPretrainer(lstm, x, progress=False)
        pre._measure(grad=False)
        pre._is_ffn = False
        prof = cProfile.Profile()
        prof.runcall(pre._one_step, 0.05)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    gen = torch.Generator
    r_mf = transition_radii(lstm, x, method="matrix_free", generator=gen().manual_seed(1))
    r_ex = transition_radii(lstm, x, method="exact", max_exact=10**9,
                            generator=gen().manual_seed(1))
    worst = max(abs(r_mf[k] - r_ex[k]) / r_ex[k] for k in r_ex)
    print(f"largest relative difference matrix-free vs exact mean radius: {worst:.2e}")


if __name__ == "__main__":
    main()
