r"""Pre-training to the Local Stability Condition: ``LSCPretrainer(model).run()``.

The Local Stability Condition (LSC) asks that the mean radius $\bar\rho$ of every transition
derivative (see :mod:`diagnostics.radii`) equal a target $\rho_t$: 1 for feed-forward networks
and single-layer recurrent networks, 1/2 for deep recurrent networks, or the "unbalanced"
split (:mod:`.targets`).

One pre-training step:

1. draw a batch (user batches, a DataLoader, or Gaussian inputs of the model's input shape);
2. measure $\bar\rho$ of every transition at the states the batch reaches;
3. optionally take a gradient step on $\frac1K\sum_k(\bar\rho_k-\rho_t)^2$ with a persistent
   optimiser (AdaBelief by default);
4. multiply the tensors that drive transition $k$ by $\mathrm{clip}(\rho_t/\bar\rho_k^{\,g},
   \mathrm{lo}, \mathrm{hi})$ (each driver's ``exponent`` splits it among tensors in
   series; $g \le 1$ damps the correction once the transition is in tolerance, see
   :data:`GAIN_FLOOR`). Eigenvalues ``lam`` of diagonal cells are rescaled in magnitude,
   through their parametrization's ``right_inverse``; the exponential parameter $\nu$ is
   never multiplied;
5. optionally shuffle the entries of the driving matrices.

A tensor that does not require grad is never moved (steps 3-5); :attr:`LSCResult.frozen` names
the drivers left alone.

Data-parallel: with :mod:`torch.distributed` initialised (or a ``process_group`` given),
each rank measures the radii on its own shard of $n_r$ samples and the group uses
$\bar\rho_k = \sum_r \frac{n_r}{N}\bar\rho_{k,r}$, the radius of the concatenated batch;
the gradient of the loss is summed over the ranks, and the rescaling factors, the shuffle
decisions and permutations (drawn from a generator seeded alike on every rank) are the same
everywhere, so the parameters stay bit-identical across ranks.

It stops when every $|\bar\rho_k-\rho_t|$ is within ``tolerance`` for ``patience``
consecutive steps, or after ``max_steps`` steps (``converged=False``, with the reason), and
leaves the model with the best weights it measured.

Modules, one concept each:

* :mod:`.result`: :class:`LSCResult`, its status rows and its plot;
* :mod:`.targets`: the target radius of every transition;
* :mod:`.batches`: the batches (user inputs or Gaussian) and the seeds of the random streams;
* :mod:`.drivers`: rescaling and shuffling a driver, carrying the optimiser state along,
  the opt-in gate-bias shift;
* :mod:`.frozen`: which drivers do not require grad (never moved, reported);
* :mod:`.precision`: half-precision models, measured in float32;
* :mod:`.measure`: floors and gate saturation;
* :mod:`.options`: :class:`LSCOptions`, every tuning knob;
* :mod:`.pretrainer`: the loop, :class:`LSCPretrainer`; :mod:`.checkpoint`: its state.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from optim.lsc.batches import BatchSource, final_seed, rank_seed
from optim.lsc.drivers import carry_optimizer_state_, rescale_, shuffle_, with_gate_bias_shift
from optim.lsc.frozen import is_frozen
from optim.lsc.measure import gate_saturation, mean_floors
from optim.lsc.options import LSCOptions
from optim.lsc.pretrainer import LSCPretrainer
from optim.lsc.result import LSCResult
from optim.lsc.targets import resolve_targets

__all__ = [
    # The pre-trainer and its result
    "LSCPretrainer",
    "LSCResult",
    "LSCOptions",
    # What it does to drivers
    "rescale_",
    "shuffle_",
    "carry_optimizer_state_",
    "with_gate_bias_shift",
    "is_frozen",
    # Targets, batches, measurements
    "resolve_targets",
    "BatchSource",
    "final_seed",
    "rank_seed",
    "gate_saturation",
    "mean_floors",
]
