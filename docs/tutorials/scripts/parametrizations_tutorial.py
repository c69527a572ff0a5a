"""Tutorial: eigenvalue parametrizations and input normalisation, checked against closed forms."""

import torch
from torch.nn.utils import parametrize

from diagnostics import memory_sensitivity, normalized_exp_sensitivity, sensitivity
from recurrent_params import (
    LRU,
    DiagonalRNN,
    ExpMag,
    OptimalTanh,
    Polar,
    ScaledAngle,
    assign_,
    input_gamma,
)

torch.manual_seed(0)

# --- 1. Register a parametrization: the value of lam is kept, the stored tensors change -------
cell = DiagonalRNN(d_input=1, d_state=4, d_output=1)  # complex eigenvalues by default
lam_before = cell.lam.detach().clone()
parametrize.register_parametrization(cell, "lam", ExpMag())
assert torch.allclose(cell.lam, lam_before)
for name, p in cell.named_parameters():
    print(f"{name:40s} {tuple(p.shape)} {p.dtype}")  # nu and theta are real originals

# dlam/dnu = lam log lam: steps in nu become finer as |lam| -> 1
nu = torch.tensor([-4.0, 0.0], dtype=torch.float64, requires_grad=True)
lam = ExpMag()(nu)
(grad,) = torch.autograd.grad(lam.sum(), nu)
assert torch.allclose(grad, (lam * lam.log()).detach())

# --- 2. An ablation is one line per variant -------------------------------------------------
for make in (ExpMag, Polar, ScaledAngle, OptimalTanh):
    c = DiagonalRNN(1, 8, 1)
    parametrize.register_parametrization(c, "lam", make())
    print(f"{make.__name__:12s} originals:",
          [n.split(".")[-1] for n, _ in c.named_parameters() if "lam" in n])

# --- 3. Bad eigenvalues are refused with a count and the range found ------------------------
try:
    ExpMag().right_inverse(torch.tensor([0.5, 1.2]))
except ValueError as err:
    print("ValueError:", err)

# --- 4. Cells that come parametrized: remove first, then register your own ------------------
lru = LRU(d_model=4, d_state=8)
print("LRU lam parametrized:", parametrize.is_parametrized(lru, "lam"))
parametrize.remove_parametrizations(lru, "lam")  # keeps the current eigenvalues
parametrize.register_parametrization(lru, "lam", ScaledAngle())

# --- 5. The cure, measured: plain vs normalised + exponential ------------------------------
lam = torch.tensor([0.9, 0.99], dtype=torch.float64)
plain = DiagonalRNN(1, 2, 1, complex=False).double()
cured = DiagonalRNN(1, 2, 1, complex=False, normalization="iid").double()
for c in (plain, cured):
    assign_(c, "lam", lam)
assign_(plain, "B", torch.ones(2, 1, dtype=torch.float64))
assign_(cured, "B", input_gamma(lam).unsqueeze(-1))  # effective B = gamma(lam), stored B = 1
parametrize.register_parametrization(cured, "lam", ExpMag())

g = torch.Generator().manual_seed(0)
raw = memory_sensitivity(plain, batch_size=4096, generator=g)
cure = memory_sensitivity(cured, batch_size=4096, generator=g)
print("plain E[(dh/dlam)^2]:", raw.sensitivity["lam"].tolist(), "theory", sensitivity(lam).tolist())
print("cured E[(dh/dnu)^2]: ", cure.sensitivity["nu"].tolist(), "theory",
      normalized_exp_sensitivity(lam).tolist())
assert torch.allclose(raw.sensitivity["lam"], sensitivity(lam), rtol=0.1)
assert torch.allclose(cure.sensitivity["nu"], normalized_exp_sensitivity(lam), rtol=0.1)
