"""ALIF spiking neurons: spikes, surrogate gradients, radii and LSC pre-training (a few seconds)."""

import warnings

import torch
from torch import nn

from diagnostics import model_transitions, transition_radii
from optim import LSCPretrainer
from recurrent_params import ALIF, FastSigmoid, Triangular
from recurrent_params.experiments.spike_encoding import threshold_crossing

torch.manual_seed(0)

# 1. Encode a real signal in [0, 1] as threshold-crossing spikes: 2 x 4 binary channels.
signal = torch.rand(8, 30, 1)  # (batch, length, features)
x = threshold_crossing(signal, levels=4)  # (8, 30, 8), exactly 0/1
print("input spikes per step:", x.sum(-1).mean().item())

# 2. One ALIF layer: sequence mode and step mode give the same spikes and states, bit for bit.
cell = ALIF(d_input=8, d_hidden=16, refractory=2)  # state [v, a, r]: 3 x 16
z, state = cell(x)  # z: (8, 30, 16) spikes, state: (8, 48)
s, steps = None, []
for t in range(x.shape[1]):
    z_t, s = cell.step(x[:, t], s)
    steps.append(z_t)
assert torch.equal(torch.stack(steps, 1), z) and torch.equal(s, state)
assert set(z.detach().unique().tolist()) <= {0.0, 1.0}
print(f"firing rate {z.mean().item():.3f}; {cell}")

# 3. Surrogate gradients: the spike is a step function, the backward pass uses psi(u).
u = torch.linspace(-2, 2, 5, requires_grad=True)
for surrogate in (Triangular(sharpness=1.0, dampening=0.3), FastSigmoid(sharpness=1.0)):
    grad = torch.autograd.grad(surrogate(u).sum(), u)[0]
    print(surrogate, "psi(u) at u = -2..2:", [round(g, 3) for g in grad.tolist()])
xg = x.clone().requires_grad_()
cell(xg)[0].sum().backward()
print("gradient reaches the first input step:", bool(xg.grad[:, 0].abs().sum() > 0))

# 4. A stack: transitions over the full state [v, a], through the surrogate derivative.
stack = nn.Sequential(ALIF(8, 16, threshold=0.1), ALIF(16, 16, threshold=0.1))
transitions = model_transitions(stack, x)
print({t.name: tuple(t.point.shape) for t in transitions})
print({k: round(v, 3) for k, v in transition_radii(stack, x).items()})
floor = transitions[0].floor(transitions[0].point, *transitions[0].context)
print("time floor (radius as the recurrent kernel goes to 0):", floor.mean().item())
print("  = max(alpha, rho) =", max(cell.alpha.max().item(), cell.rho.max().item()))

# 5. LSC pre-training: 1.0 is within reach; 0.5 is floored by the decays in time.
for target in (1.0, 0.5):
    net = nn.Sequential(ALIF(8, 16, threshold=0.1), ALIF(16, 16, threshold=0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the floor warning, shown below
        result = LSCPretrainer(net, data=x, target=target, max_steps=30,
                               progress=False).run()
    print(result)
    for name, st in result.status.items():
        if not st["reached"]:
            print(f"  {name}: {st['why'][:110]}...")
