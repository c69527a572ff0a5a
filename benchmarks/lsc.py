"""Cost of one LSC pre-training step relative to one forward+backward of the model.

LSTM of depth 5 and width 256 (state [h, c] of 512 per layer, 10 transitions), Gaussian
inputs, by default. Prints medians, means and ratios against the forward+backward baseline
measured in the same process: one default pre-training step (matrix-free radii by Arnoldi on
vector-Jacobian products, warm-started from the previous step's Ritz vectors except after a
shuffle, a gradient step of AdaBelief inside Lookahead, shuffling), the same without the
gradient step, and the agreement of the matrix-free radii with exact ones (forward-mode
Jacobians + ``eigvals``, float32), cold and warm. ``--profile`` prints a cProfile of one
default step.

Both clocks are read for every repeat: wall time (``time.perf_counter``) and the CPU time of
the calling thread (``time.thread_time``, user + system). With one torch thread every op runs
in the calling thread, so the CPU clock counts the work of the step and not the time other
processes took from it: on a busy machine it is the one to read. ``--clock`` picks the clock
of the ratios; the other is printed beside it.

Usage: ``python benchmarks/lsc.py [--clock cpu] [--cell LSTM] [--batch 16] [--length 20]
[--width 256] [--depth 5] [--repeats 9] [--profile] [--no-exact]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from diagnostics import transition_radii
from optim import LSCPretrainer

CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def _times(fn, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of ``fn``, on both clocks: ``{"wall": [...], "cpu": [...]}``."""
    times: dict[str, list[float]] = {k: [] for k in CLOCKS}
    for _ in range(repeats):
        t0 = {k: c() for k, c in CLOCKS.items()}
        fn()
        for k, c in CLOCKS.items():
            times[k].append(c() - t0[k])
    return times


def _median_times(fn, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` calls of ``fn``, on both clocks: ``{"wall": s, "cpu": s}``."""
    return {k: statistics.median(v) for k, v in _times(fn, repeats).items()}


def _fmt(t: dict[str, float], base: dict[str, float], clock: str) -> str:
    other = "wall" if clock == "cpu" else "cpu"
    return (f"{t[clock] * 1e3:9.1f} ms ({clock}) = {t[clock] / base[clock]:6.1f} x  "
            f"[{other}: {t[other] * 1e3:9.1f} ms = {t[other] / base[other]:6.1f} x]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["LSTM", "GRU", "RNN"], default="LSTM")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=9,
                        help="pre-training steps timed (a third follow a shuffle, whose "
                             "radii start cold)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="clock of the ratios: wall time, or CPU time of this thread")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-exact", action="store_true",
                        help="skip the agreement with exact radii (slow at width 256)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # also what makes the CPU clock count every op of the step
    torch.manual_seed(0)
    model = getattr(nn, args.cell)(args.width, args.width, num_layers=args.depth,
                                   batch_first=True)
    x = torch.randn(args.batch, args.length, args.width)

    def fwd_bwd():
        model.zero_grad()
        model(x)[0].square().mean().backward()

    fwd_bwd()
    base = _median_times(fwd_bwd, max(5, 3 * args.repeats))
    print(f"{args.cell} depth {args.depth}, width {args.width}, batch {args.batch}, length "
          f"{args.length}; torch {torch.__version__}, 1 thread; ratios on the {args.clock} clock")
    print(f"forward+backward (baseline): {base['cpu'] * 1e3:9.1f} ms (cpu), "
          f"{base['wall'] * 1e3:9.1f} ms (wall)")
    for label, kwargs in (("default (grad step + shuffle)", {}),
                          ("no gradient step", {"grad_step": False})):
        pre = LSCPretrainer(model, x, progress=False, **kwargs)
        pre.take_step()  # the first measurement (radii before) and a warm-up step
        times = _times(pre.take_step, args.repeats)
        for stat, f in (("median", statistics.median), ("mean", statistics.fmean)):
            t = {k: f(v) for k, v in times.items()}
            print(f"one pre-training step, {label:<30} {stat:>6}: {_fmt(t, base, args.clock)}")
    if args.profile:
        import cProfile
        import pstats

        pre = LSCPretrainer(model, x, progress=False)
        pre.take_step()
        prof = cProfile.Profile(time.thread_time if args.clock == "cpu" else time.perf_counter)
        prof.runcall(pre.take_step)
        pstats.Stats(prof).sort_stats("tottime").print_stats(16)
    if args.no_exact:
        return
    gen = torch.Generator
    r_ex = transition_radii(model, x, method="exact", max_exact=10**9,
                            generator=gen().manual_seed(1))
    # the pre-trainer's warm pass: Arnoldi started from the Ritz vectors of a previous
    # measurement (another time step of the same batch, with gradients as in a default step),
    # with 3/4 of the Krylov dimension
    warm: dict = {}
    transition_radii(model, x, method="matrix_free", generator=gen().manual_seed(2),
                     max_restarts=1, warm_start=warm, as_tensors=True)
    for label, kw in (("transition_radii defaults", {}),
                      ("pre-trainer's single pass, cold", {"max_restarts": 1}),
                      ("pre-trainer's single pass, warm", {"max_restarts": 1,
                                                           "warm_start": warm})):
        r_mf = transition_radii(model, x, method="matrix_free", generator=gen().manual_seed(1),
                                **kw)
        worst = max(abs(r_mf[k] - r_ex[k]) / r_ex[k] for k in r_ex)
        print(f"largest relative difference of the mean radius vs exact, {label}: {worst:.2e}")


if __name__ == "__main__":
    main()
