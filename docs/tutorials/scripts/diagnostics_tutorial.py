"""Tutorial: Hessian structure and Adam's effective learning rates (runs in a few seconds).

1. A linear teacher with eigenvalues near the unit circle is loaded into a dense and a complex
   diagonal student (loss ~1e-25: the optimum). The HessianOperator gives exact and
   matrix-free views of the Hessian there; hessian_diagonality summarises its structure.
2. A diagonal student with the exponential parametrization is trained with Adam while an
   EffectiveLRTracker records the per-parameter effective learning rates.
"""

import torch
from torch.nn.utils import parametrize

from diagnostics import (
    EffectiveLRTracker,
    HessianOperator,
    effective_learning_rates,
    hessian_diagonality,
)
from recurrent_params import DenseRNN, DiagonalRNN, ExpMag

# the teacher helper behind `recurrent-params hessian` and `teacher-student`
from recurrent_params.experiments.teacher import load_teacher, make_teacher, teacher_data

torch.manual_seed(0)
torch.set_num_threads(1)

# --- 1. The Hessian at the optimum ------------------------------------------------------------
teacher = make_teacher(nu0=0.99, d_state=6, seed=0)  # float64, |lambda| in [0.99, 1)
x, y = teacher_data(teacher, batch_size=16, length=60, seed=1)


def loss_fn(out, target):  # cells return (y, last_state)
    return 0.5 * ((out[0] - target) ** 2).mean()


dense = load_teacher(DenseRNN(1, 6, 1).double(), teacher)
diagonal = load_teacher(DiagonalRNN(1, 6, 1).double(), teacher)

H = HessianOperator(diagonal, loss_fn, (x, y), progress=False)
print(H)
print("parameters (flat order):", H.names)
print(f"loss at the optimum: {H.loss():.1e}")
assert H.loss() < 1e-20

# H @ v on flat vectors; the exact matrix by chunked HVPs; top eigenpairs by Lanczos
v = torch.randn(H.num_params, dtype=torch.float64)
dense_h = H.dense()
torch.testing.assert_close(H @ v, dense_h @ v)
values, vectors = H.eigsh(k=3)
exact = torch.linalg.eigvalsh(dense_h).flip(0)[:3]
print("top-3 eigenvalues, Lanczos:", [f"{val:.6g}" for val in values.tolist()])
print("top-3 eigenvalues, exact:  ", [f"{val:.6g}" for val in exact.tolist()])
torch.testing.assert_close(values, exact, rtol=1e-6, atol=0)

# Hutchinson: diagonal and ||H||_F^2 from random probes, with error bars
est = H.hutchinson(num_probes=200, seed=0)
true_mass = float(dense_h.diagonal().norm() / dense_h.norm())
print(est, f"(exact diagonal mass {true_mass:.4f})")
assert abs(est.diagonal_mass - true_mass) < 4 * est.diagonal_mass_stderr

# The structure report: exact for small models, matrix-free for large ones
for name, model in (("dense", dense), ("diagonal", diagonal)):
    report = hessian_diagonality(model, loss_fn, (x, y), k=3, progress=False)
    print(f"\n{name}:", report)
r_dense = hessian_diagonality(dense, loss_fn, (x, y), k=1, progress=False)
r_diag = hessian_diagonality(diagonal, loss_fn, (x, y), k=1, progress=False)
assert r_diag.diagonal_mass > r_dense.diagonal_mass
assert r_diag.participation_numbers[0] < r_dense.participation_numbers[0]

# the matrix-free path gives the same numbers within its error bars
free = hessian_diagonality(diagonal, loss_fn, (x, y), k=1, method="matrix-free",
                           num_probes=200, block_probes=0, progress=False)
print(f"\nmatrix-free diagonal mass {free.diagonal_mass:.3f} ± {free.diagonal_mass_stderr:.3f}"
      f" vs exact {r_diag.diagonal_mass:.3f}")

# --- 2. Adam's effective learning rates during training ---------------------------------------
student = DiagonalRNN(1, 16, 1, normalization="iid")
parametrize.register_parametrization(student, "lam", ExpMag())
teacher32 = make_teacher(nu0=0.99, d_state=6, seed=0, dtype=torch.float32)
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
with EffectiveLRTracker(opt, student.named_parameters(), every=10) as tracker:
    for step in range(60):
        xb, yb = teacher_data(teacher32, 16, 60, seed=100 + step)
        opt.zero_grad()
        loss_fn(student(xb), yb).backward()
        opt.step()

# eta = lr / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps), per coordinate
rates = effective_learning_rates(opt, student.named_parameters())
print("\n", rates, sep="")
# the paper's variant: the update an all-ones gradient would cause at the next step
ones = effective_learning_rates(opt, student.named_parameters(), definition="all_ones")
print("all-ones update, nu:", f"{ones.summary['parametrizations.lam.original0']['median']:.2e}")
steps, nu_lr = tracker.series("parametrizations.lam.original0", "geo_mean")
print("tracked steps:", steps)
assert steps == [10, 20, 30, 40, 50, 60]

fig = tracker.plot()  # per-tensor geometric mean with its q10-q90 band
fig.savefig("effective_lr.png")
print("figure written to effective_lr.png")
