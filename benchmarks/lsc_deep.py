"""LSC pre-training of LRU residual stacks (depth 3 and 6, the LSC paper's): steps, wall and
CPU time, radii before and after, with the defaults and with the reference's LRU settings.

``RecurrentStack.of(lambda d: LRU(d, 32), depth=..., d_model=16, d_input=1, d_output=10)``,
seed 0, Gaussian inputs; radii measured with ``transition_radii`` on 64 fresh sequences of 20
steps (generator seed 1). One JSON line per run. Recorded in docs/concepts/deep_models.md.

Usage: ``OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/lsc_deep.py``
"""

from __future__ import annotations

import json
import time

import torch

from diagnostics import transition_radii
from optim import LSCPretrainer
from recurrent_params import LRU, RecurrentStack

RUNS = [
    (3, "default", {}),
    (6, "default", {}),
    # REFERENCE section 3, LRU stacks: no gradient step, |lam| clipped to [0.95, 1.05], every
    # tensor shuffled every step, batch 8, 500 steps
    (3, "reference-like", dict(grad_step=False, clip=(0.95, 1.05), shuffle_every=1,
                               batch_size=8, max_steps=500)),
]


def _radii(model):
    r = transition_radii(model, generator=torch.Generator().manual_seed(1))
    return {k: round(v, 3) for k, v in r.items()}


def main() -> None:
    torch.set_num_threads(1)
    for depth, label, options in RUNS:
        torch.manual_seed(0)
        model = RecurrentStack.of(lambda d: LRU(d, 32), depth=depth, d_model=16, d_input=1,
                                  d_output=10)
        before = _radii(model)
        t0, c0 = time.perf_counter(), time.process_time()
        result = LSCPretrainer(model, progress=False, **options).run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps(dict(depth=depth, options=label, steps=result.steps,
                              converged=result.converged, wall_s=round(wall, 1),
                              cpu_s=round(cpu, 1), before=before, after=_radii(model))),
              flush=True)


if __name__ == "__main__":
    main()
