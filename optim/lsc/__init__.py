r"""Pre-training to the Local Stability Condition: ``LSCPretrainer(model).run()``.

The Local Stability Condition (LSC) asks that the mean radius $\bar\rho$ of every transition
derivative (see :mod:`diagnostics.radii`) equal a target $\rho_t$: 1 for feed-forward networks
and single-layer recurrent networks, 1/2 for deep recurrent networks, or the "unbalanced"
split (:mod:`.targets`).

Modules, one concept each:

* :mod:`.result`: :class:`LSCResult`, its status rows and its plot;
* :mod:`.targets`: the target radius of every transition;
* :mod:`.batches`: the batches (user inputs or Gaussian) and the seeds of the random streams;
* :mod:`.drivers`: rescaling and shuffling a driver, carrying the optimiser state along,
  the opt-in gate-bias shift;
* :mod:`.measure`: floors and gate saturation;
* :mod:`.options`: :class:`LSCOptions`, every tuning knob;
* :mod:`.pretrainer`: the loop, :class:`LSCPretrainer`; :mod:`.checkpoint`: its state.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from optim.lsc.batches import BatchSource, final_seed, rank_seed
from optim.lsc.drivers import carry_optimizer_state_, rescale_, shuffle_, with_gate_bias_shift
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
    # Targets, batches, measurements
    "resolve_targets",
    "BatchSource",
    "final_seed",
    "rank_seed",
    "gate_saturation",
    "mean_floors",
]
