"""torch-optimizer's ``Lookahead``, made to work with the optimiser hooks of torch 2.13."""

from __future__ import annotations

import warnings
from collections import OrderedDict

from torch.optim import Optimizer


def lookahead(inner: Optimizer, k: int = 6, alpha: float = 0.5) -> Optimizer:
    """Wrap ``inner`` in ``torch_optimizer.Lookahead(inner, k, alpha)``.

    Lookahead (Zhang et al., arXiv 1907.08610) keeps slow weights $\\phi$ and, every ``k`` steps
    of ``inner`` on the fast weights $\\theta$, sets $\\phi \\leftarrow \\phi + \\alpha(\\theta -
    \\phi)$ and $\\theta \\leftarrow \\phi$; the LSC paper trains with AdaBelief inside it
    (``k = 6``, ``alpha = 0.5``).

    torch-optimizer 0.3.0 skips ``Optimizer.__init__``, so the hook tables that torch 2.13's
    ``state_dict``/``load_state_dict`` read are missing; they are added here (empty).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch_optimizer import Lookahead

    opt = Lookahead(inner, k=k, alpha=alpha)
    for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                 "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                 "_optimizer_load_state_dict_pre_hooks", "_optimizer_load_state_dict_post_hooks"):
        if not hasattr(opt, name):
            setattr(opt, name, OrderedDict())
    return opt
