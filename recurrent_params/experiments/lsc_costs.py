"""Per-step costs of the LSC protocols at their real lengths: one training step against one
LSC pre-training step of the same batch (issue 19, deliverable 4 asks for the ratio at 784
steps), through the public API only.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

__all__ = ["time_training_step", "time_lsc_step", "classifier_step", "measure_classifiers"]


def time_training_step(step, repeats: int = 1, warmup: bool = True) -> float:
    """Median seconds of ``step()`` over ``repeats`` calls, after one warm-up call."""
    if warmup:
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def time_lsc_step(module: nn.Module, batch: torch.Tensor) -> float:
    """Seconds of one :class:`optim.LSCPretrainer` step (default options: radii measured with
    gradients, the gradient step, the rescaling, the shuffle) of a copy of ``module`` on
    ``batch``, through the public API: ``t(run(num_steps=1)) - 2 t(transition_radii)``, the
    run minus its measurements before and after (each a radii measurement without gradients
    on the same batch)."""
    from diagnostics import transition_radii
    from optim import LSCPretrainer

    module = copy.deepcopy(module).eval()
    pre = LSCPretrainer(module, data=[batch], max_steps=2, seed=0, progress=False,
                        process_group="local")
    t0 = time.perf_counter()
    pre.run(num_steps=1)
    t_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        transition_radii(module, batch, generator=torch.Generator().manual_seed(0),
                         process_group="local", krylov_dim=pre.krylov_dim,
                         max_restarts=pre.max_restarts)
    t_measure = time.perf_counter() - t0
    return max(t_run - 2 * t_measure, 0.0)


def classifier_step(net, opt, x, y):
    """A closure taking one training step of classifier ``net`` on ``(x, y)``: cross-entropy,
    backward, ``opt.step()`` (what :func:`time_training_step` times)."""

    def step():
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def measure_classifiers(s: dict, device="cpu", repeats: int = 1) -> dict:
    """Seconds of one training step (forward + backward + optimiser) and of one LSC
    pre-training step (:func:`time_lsc_step`) of every (cell, depth) at the preset's width and
    training batch, on random 784-step inputs, their ratio, and the estimated duration of the
    preset's sweep (pre-training and evaluation scaled linearly in the batch size; an
    evaluation sample at a third of a training sample). One timed training step, no warm-up:
    at 784 steps one step lasts seconds."""
    from recurrent_params.experiments.lsc_long import (
        ALIF_INITS,
        N_CLASSES,
        SEQ_LEN,
        SPIKE_LEVELS,
        build_net,
        make_optimizer,
    )

    out: dict = {}
    b = s["batch"]
    total = 0.0
    for cell in s["cells"]:
        for depth in s["depths"]:
            torch.manual_seed(0)
            net = build_net(cell, depth, s["hidden"], s["dropout"]).to(device)
            d = 2 * SPIKE_LEVELS if cell == "alif" else 1
            x = torch.randn(b, SEQ_LEN, d, device=device)
            if cell == "alif":
                x = (x > 1.5).float()  # sparse spikes
            y = torch.randint(0, N_CLASSES, (b,), device=device)
            opt = make_optimizer(net.parameters(), s["lr"])
            t_step = time_training_step(classifier_step(net, opt, x, y), repeats, warmup=False)
            t_pre = time_lsc_step(net.recurrent, x)
            per_epoch = math.ceil((s["train"] or 60000) / b) * t_step + \
                (s["val"] + (s["test"] or 10000)) / b * t_step / 3
            n_inits = len([i for i in s["inits"] if cell != "alif" or i in ALIF_INITS])
            n_lsc = len([i for i in s["inits"] if i.startswith("lsc")])
            run_s = s["seeds"] * (n_inits * s["epochs"] * per_epoch
                                  + n_lsc * s["pretrain_steps"] * t_pre * s["pretrain_batch"] / b)
            total += run_s
            out[f"{cell}x{depth}"] = {"step_s": t_step, "lsc_step_s": t_pre,
                                      "ratio": t_pre / t_step, "sweep_s": run_s}
            print(f"  {cell} x{depth}: training step {t_step:7.2f} s, LSC step {t_pre:7.2f} s "
                  f"(ratio {t_pre / t_step:.2f}); batch {b}, width {s['hidden']}, 784 steps, "
                  f"{torch.get_num_threads()} thread(s); its runs: {run_s / 3600:.2f} h",
                  flush=True)
    print(f"  estimated sweep: {total / 3600:.2f} h in one process ({total / 7200:.2f} h on two "
          f"torchrun processes, if the ranks balance)")
    out["total_s"] = total
    return out
