"""Benchmark: S models trained side by side (``optim.StackedTrainer``) vs one at a time.

Run from the repository root:

    python benchmarks/stacked.py            # S = 10, 5 repeats
    python benchmarks/stacked.py --quick    # 2 repeats

One Adam step of the teacher-student task (batch 128, T = 300, 64 states, half-MSE against a
linear teacher) per model, four ways, medians of rounds run in turn in one process (so the
ratios are measured under the same load), one thread:

* ``alone``: ``torch.optim.Adam`` on one model, its outputs in convolution mode
  (``mode="fft"``), the baseline;
* ``alone, Gram``: the same model, its loss from its impulse response and the batch's lag
  Gram matrix (``recurrent_params.experiments.lag_gram``; the same value and gradient);
* ``stacked / S``: a ``StackedTrainer`` over S copies, outputs in convolution mode, divided
  by S;
* ``stacked Gram / S``: the same S models as the teacher-student sweep trains them, S / 5
  seeds x 5 learning rates whose batches are shared per seed, so one Gram serves five models.
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
from recurrent_params.experiments.lag_gram import kernel_half_mse, lag_gram  # noqa: E402
from recurrent_params.experiments.teacher import make_teacher  # noqa: E402
from recurrent_params.experiments.teacher_student import gram_losses  # noqa: E402

LRS_PER_SEED = 5


def _loss(out, y):
    return 0.5 * ((out - y) ** 2).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10,
                        help=f"S, a multiple of {LRS_PER_SEED} (seeds x learning rates)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.models < LRS_PER_SEED or args.models % LRS_PER_SEED:
        parser.error(f"--models must be a positive multiple of {LRS_PER_SEED}")
    repeats = 2 if args.quick else args.repeats
    torch.set_num_threads(1)
    S, B, T, N = args.models, 128, 300, 64
    print(f"one Adam step per model, B {B}, T {T}, d {N}, S = {S} ({S // LRS_PER_SEED} seeds x "
          f"{LRS_PER_SEED} lrs), one thread; ms, and speed-up over 'alone'")
    cols = ("alone", "alone, Gram", "stacked / S", "stacked Gram / S")
    print(f"{'cell':<9}" + "".join(f"{c:>22}" for c in cols))
    for name, make in (("LRU", lambda: LRU(1, N)), ("DenseRNN", lambda: DenseRNN(1, N, 1))):
        ms = _bench(make, S, B, T, repeats)
        row = [f"{ms[c]:.1f} ({ms['alone'] / ms[c]:.2f}x)" for c in cols]
        print(f"{name:<9}" + "".join(f"{r:>22}" for r in row))


def _bench(make, S: int, B: int, T: int, repeats: int) -> dict:
    """Median ms per model of one Adam step, for each of the four ways (module docstring)."""
    torch.manual_seed(0)
    teacher = make_teacher(0.99, 10, seed=0, dtype=torch.float32)
    target = teacher.impulse_response(T)  # (T, 1, 1)
    one = make()
    one.mode = "fft"
    opt = torch.optim.Adam(one.parameters(), lr=1e-3)
    many = [make() for _ in range(S)]
    for m in many:
        m.mode = "fft"
    trainer = StackedTrainer(many, [1e-3] * S, schedule="constant")
    seeds = S // LRS_PER_SEED
    x = torch.randn(seeds, B, T, 1)  # one batch per seed
    y = teacher(x.flatten(0, 1)).reshape(x.shape)
    xs = x.repeat_interleave(LRS_PER_SEED, 0)  # (S, B, T, 1): each seed's batch for its lrs
    ys = y.repeat_interleave(LRS_PER_SEED, 0)

    def alone():
        opt.zero_grad()
        _loss(one(x[0])[0], y[0]).backward()
        opt.step()

    def alone_gram():
        opt.zero_grad()
        kernel_half_mse(one.impulse_response(T) - target, lag_gram(x[0]), B * T).backward()
        opt.step()

    def stacked():
        trainer.step(_loss, xs, target=ys, in_dims=(0, 0))

    def stacked_gram():
        losses = gram_losses(trainer, x, target)  # (S,): one Gram per seed
        grads = torch.autograd.grad(losses.sum(), list(trainer.params.values()),
                                    allow_unused=True)
        trainer.apply_gradients(dict(zip(trainer.params, grads)))

    ms = round_robin({"alone": alone, "alone, Gram": alone_gram, "stacked / S": stacked,
                      "stacked Gram / S": stacked_gram}, repeats)
    ms["stacked / S"] /= S
    ms["stacked Gram / S"] /= S
    return ms


if __name__ == "__main__":
    main()
