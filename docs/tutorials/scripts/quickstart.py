"""Quick start: the three contract lines of recurrent_params, runnable as a script."""

import torch
from torch.nn.utils import parametrize

from optim import LSCPretrainer
from recurrent_params import LRU, DiagonalRNN, ExpMag, RecurrentStack

torch.manual_seed(0)

# 1. A diagonal RNN whose eigenvalues are a plain parameter `lam` ...
cell = DiagonalRNN(d_input=1, d_state=64, d_output=1)
# ... reparametrized exponentially: lam = exp(-exp(nu)) * exp(i theta).
parametrize.register_parametrization(cell, "lam", ExpMag())
print(cell.parametrizations.lam)  # the stored originals nu and theta are real
y, h_last = cell(torch.randn(8, 100, 1))  # batch-first (batch, length, features)
print("output", tuple(y.shape), "final state", tuple(h_last.shape), h_last.dtype)

# 2. The LRU comes with the paper's exponential map and learned normalisation registered.
lru = LRU(d_model=16, d_state=32)
print("LRU |lam| in", float(lru.lam.abs().min()), "...", float(lru.lam.abs().max()))

# 3. Pre-train any supported network to the Local Stability Condition.
model = torch.nn.LSTM(input_size=8, hidden_size=32, num_layers=2, batch_first=True)
result = LSCPretrainer(model).run()
print(result)

# 4. ... including deep residual stacks of the package's cells (eval(): no dropout while the
# transitions are traced): time and depth radii of every block go to 1/2.
deep = RecurrentStack.of(lambda d: LRU(d, 32), depth=3, d_model=16, d_input=1, d_output=10)
print(LSCPretrainer(deep.eval()).run())
