"""Before/after of the LSC pre-training defaults on an LSTM(16, 64, 3): radii, floors, saturation.

"old": the earlier algorithm (forget-gate bias shift as a driver, no gradient step, no
shuffling); "new defaults": today's. Gaussian inputs, batch 32, at most 120 steps, seed 0.

Usage: ``PYTHONPATH=. python benchmarks/lsc_defaults.py``
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from optim import LSCPretrainer

SETTINGS = {
    "old (bias shift, no grad step, no shuffle)": dict(gate_bias_shift=True, grad_step=False,
                                                       shuffle=0),
    "new defaults": {},
}


def _rounded(d):
    return {k: round(v, 3) for k, v in d.items()}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = nn.LSTM(16, 64, num_layers=3, batch_first=True)
    layers = range(base.num_layers)
    for target in (1.0, 0.5):
        for label, kw in SETTINGS.items():
            net = copy.deepcopy(base)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                r = LSCPretrainer(net, target=target, max_steps=120, batch_size=32,
                                  progress=False, **kw).run()
            drift = max((getattr(net, f"bias_hh_l{l}") - getattr(base, f"bias_hh_l{l}"))[64:128]
                        .abs().max().item() for l in layers)
            whh = [round(getattr(net, f"weight_hh_l{l}").norm().item()
                         / getattr(base, f"weight_hh_l{l}").norm().item(), 3) for l in layers]
            floors = {k: round(s["floor"], 3) for k, s in r.status.items()
                      if s["floor"] is not None}
            lsc_warnings = [w for w in caught if "LSC" in str(w.message)]
            print(f"target {target} | {label}: converged={r.converged} steps={r.steps}")
            print("  radii before", _rounded(r.radii_before))
            print("  radii after ", _rounded(r.radii_after))
            print("  floors", floors, "reached", {k: s["reached"] for k, s in r.status.items()})
            print(f"  saturation {r.saturation_before.get('all', 0):.3f} -> "
                  f"{r.saturation_after.get('all', 0):.3f}; max forget-bias drift {drift:.2f}; "
                  f"|W_hh| ratio {whh}; LSC warnings {len(lsc_warnings)}")


if __name__ == "__main__":
    main()
