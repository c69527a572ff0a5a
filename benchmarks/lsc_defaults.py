"""Before/after of LSC pre-training defaults on an LSTM(16, 64, 3): radii, floors, saturation.

"old": the earlier algorithm (forget-gate bias shift as a driver, no gradient step, no
shuffling); "new": today's defaults. Gaussian inputs, batch 32, at most 120 steps.

Usage: ``PYTHONPATH=. python benchmarks/lsc_defaults.py``
"""
import copy, warnings, torch
from torch import nn
from optim import LSCPretrainer
torch.set_num_threads(1)
torch.manual_seed(0)
base = nn.LSTM(16, 64, num_layers=3, batch_first=True)
settings = {"old (bias shift, no grad step, no shuffle)": dict(gate_bias_shift=True, grad_step=False, shuffle=0),
            "new defaults": {}}
for target in (1.0, 0.5):
    for label, kw in settings.items():
        net = copy.deepcopy(base)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            r = LSCPretrainer(net, target=target, max_steps=120, batch_size=32, progress=False, **kw).run()
        fb = max((getattr(net, f"bias_hh_l{l}")[64:128] - getattr(base, f"bias_hh_l{l}")[64:128]).abs().max().item() for l in range(3))
        whh = [round(getattr(net, f"weight_hh_l{l}").norm().item() / getattr(base, f"weight_hh_l{l}").norm().item(), 3) for l in range(3)]
        print(f"target {target} | {label}: converged={r.converged} steps={r.steps}")
        print("  radii before", {k: round(v, 3) for k, v in r.radii_before.items()})
        print("  radii after ", {k: round(v, 3) for k, v in r.radii_after.items()})
        print("  floors", {k: (None if s['floor'] is None else round(s['floor'], 3)) for k, s in r.status.items() if s['floor'] is not None}, "reached", {k: s['reached'] for k, s in r.status.items()})
        print(f"  saturation {r.saturation_before.get('all', 0):.3f} -> {r.saturation_after.get('all', 0):.3f}; max forget-bias drift {fb:.2f}; |W_hh| ratio {whh}; warnings {len(w)}")
