"""LSC pre-training and complex-safe optimisers, end to end (runs in a few seconds on a CPU)."""

import copy

import torch
from torch import nn

from diagnostics import Driver, Transition, transition_radii
from optim import AdaBelief, ComplexSafeOptimizer, LSCPretrainer
from recurrent_params import LRU

torch.manual_seed(0)

# 1. Measure: the mean spectral radius of every transition Jacobian of a model.
gru = nn.GRU(input_size=8, hidden_size=32, num_layers=2, batch_first=True)
print(transition_radii(gru, batch_size=16))  # Gaussian inputs (16, 20, 8) by default

# 2. Pre-train to the Local Stability Condition. Two layers: the default target is 0.5.
result = LSCPretrainer(gru, batch_size=16, progress=False).run()
print(result)  # radii before -> after, per transition, with the targets
assert result.converged

# 3. Feed-forward networks (target 1.0) and stacks of cells work the same way.
ffn = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
print(LSCPretrainer(ffn, progress=False).run().radii_after)
stack = nn.Sequential(LRU(d_model=4, d_state=8), nn.GELU(), LRU(d_model=4, d_state=8))
res = LSCPretrainer(stack, batch_size=16, seq_len=8, progress=False).run()
print({k: round(v, 3) for k, v in res.radii_after.items()})  # |lam| rescaled, phases kept


# 4. Your own model: declare its transitions and the tensors that drive them.
class TwoMaps(nn.Module):
    lsc_input_shape = (6,)  # per-sample input shape, for Gaussian inputs

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(6, 6))
        self.w2 = nn.Parameter(torch.randn(6, 6))

    def lsc_transitions(self, x):
        h = torch.tanh(x @ self.w1.T).detach()
        return [
            Transition("first", lambda s: torch.tanh(s @ self.w1.T), x, (),
                       (Driver(self, "w1"),)),
            Transition("second", lambda s: s @ self.w2.T, h, (), (Driver(self, "w2"),)),
        ]


print(LSCPretrainer(TwoMaps(), target=0.9, progress=False).run().radii_after)

# 5. Interrupt and resume: the state_dict holds weights, counters, RNG and optimiser state.
base = nn.LSTM(4, 8, num_layers=2)
settings = dict(batch_size=8, seq_len=6, max_steps=10, grad_step=True, progress=False)
full_model = copy.deepcopy(base)
LSCPretrainer(full_model, **settings).run()
first = LSCPretrainer(copy.deepcopy(base), **settings)
first.run(num_steps=4)  # e.g. the job was pre-empted here
checkpoint = copy.deepcopy(first.state_dict())
resumed_model = copy.deepcopy(base)
second = LSCPretrainer(resumed_model, **settings)
second.load_state_dict(checkpoint)
second.run()
assert all(torch.equal(a, b) for a, b in zip(full_model.parameters(),
                                             resumed_model.parameters()))

# 6. Complex parameters: every optimiser here updates them as their real view.
z = nn.Parameter(torch.tensor([1.0 + 2.0j]))
opt = AdaBelief([z], lr=0.1)  # adabelief-pytorch semantics, silent, complex-safe
(z.abs() ** 2).sum().backward()
opt.step()
print(z.data, opt.param_groups[0]["rectify"])

import torch_optimizer  # noqa: E402  (any torch-optimizer class can be wrapped)

w = nn.Parameter(torch.tensor([1.0 + 2.0j]))
wrapped = ComplexSafeOptimizer(torch_optimizer.Yogi, [w], lr=0.1)
(w.abs() ** 2).sum().backward()
wrapped.step()
print(w.data)  # the imaginary part moved too
