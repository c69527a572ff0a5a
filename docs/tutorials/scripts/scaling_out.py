"""Scaling out: Hessian diagnostics and LSC pre-training of a data-parallel (DDP) model.

Run it in two processes (loopback, gloo)::

    torchrun --nproc-per-node 2 --master-addr 127.0.0.1 --master-port 29512 \
        docs/tutorials/scripts/scaling_out.py

or in one (``python docs/tutorials/scripts/scaling_out.py``): the Hessian numbers are the
same, up to float rounding, because every rank works on its shard of the same global batch and
the products are reduced over the process group, weighted by shard sizes. The LSC pre-training
draws its time steps differently in two processes (one seed per step, shared by the ranks), so
it takes a statistically equivalent but different path.
"""

import os

import torch
import torch.distributed as dist
from torch import nn

from diagnostics import HessianOperator, hessian_diagonality, transition_radii
from optim import LSCPretrainer

if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
torch.set_num_threads(1)
torch.manual_seed(0)

# the same model everywhere (DDP broadcasts rank 0's weights), float64 for exact comparisons
model = nn.RNN(8, 8, num_layers=2, batch_first=True).double()
if world > 1:
    model = nn.parallel.DistributedDataParallel(model)

# one global batch of 48 sequences; rank r holds its shard (sizes may differ)
gen = torch.Generator().manual_seed(1)
x = torch.randn(48, 20, 8, dtype=torch.float64, generator=gen)  # (B, T, 8)
y = x[..., :1].sum(1) * 0.1  # (B, 1): a running sum of the first input
shard = slice(rank * 48 // world, (rank + 1) * 48 // world)


def last_step_mse(out, target):
    hidden, _ = out  # nn.RNN returns (outputs, last state)
    return 0.5 * ((hidden[:, -1, :1] - target) ** 2).mean()


# --- 1. The Hessian of the global batch's mean loss ------------------------------------------
op = HessianOperator(model, last_step_mse, (x[shard], y[shard]), progress=False)
values, _ = op.eigsh(3)  # Lanczos: the same on every rank
report = hessian_diagonality(op, k=3, progress=False)  # works unchanged
loss = op.loss()  # collective, like every call above: every rank makes it
if rank == 0:
    print(f"{world} process(es), P = {op.num_params}, loss {loss:.6f}")
    print("top eigenvalues:", [f"{v:.6g}" for v in values.tolist()])
    print(f"diagonal mass {report.diagonal_mass:.6f}")
assert torch.allclose(values, torch.tensor(report.top_eigenvalues, dtype=values.dtype),
                      rtol=1e-6)

# --- 2. LSC pre-training: radii averaged over the ranks, the same updates everywhere -----------
pre = LSCPretrainer(model, data=[x[shard]], max_steps=40, shuffle=0.0, progress=False)
result = pre.run()
radii = transition_radii(model, x[shard])  # the radii of the whole batch, on every rank
if rank == 0:
    print(result)
    print("radii of the global batch:", {k: round(v, 4) for k, v in radii.items()})

if dist.is_initialized():
    dist.destroy_process_group()
