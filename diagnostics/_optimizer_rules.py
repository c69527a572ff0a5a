r"""Private: how each supported optimiser's state gives its per-coordinate step size.

One rule per Adam-family optimiser (torch's Adam / AdamW, adabelief-pytorch's AdaBelief,
torch-optimizer's AdaBelief / RAdam / Yogi / AdamP / DiffGrad / AdaMod / AdaBound / Lamb, and
the package's own ``optim.AdaBelief``; :func:`supported_optimizers` lists them), each reading
the optimiser's moments and returning the rate $\eta$ such that the next step is
$\eta \odot m$; :mod:`diagnostics.effective_lr` turns them into
:class:`~diagnostics.EffectiveLRs`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch

__all__ = ["Rule", "optimizer_step", "real_view", "rule_for", "step_of", "supported_optimizers"]


def real_view(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def step_of(state: dict) -> int:
    step = state.get("step", 0)
    return int(step.item()) if isinstance(step, torch.Tensor) else int(step)


def optimizer_step(optimizer: torch.optim.Optimizer) -> int:
    """The optimiser's own step count: the largest ``state[p]["step"]`` over its parameters
    (0 before the first step, and for optimisers that keep no step count)."""
    return max((step_of(optimizer.state[p]) for g in optimizer.param_groups
                for p in g["params"] if p in optimizer.state), default=0)


def _lr(group: dict) -> float:
    lr = group["lr"]
    return float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)


def _sma(beta2: float, t: int) -> tuple[float, float]:
    """RAdam's length of the approximated SMA at step t, and its limit."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    b2t = beta2**t
    return rho_inf - 2.0 * t * b2t / (1.0 - b2t), rho_inf


def _rect(beta2: float, t: int) -> float:
    """RAdam's rectification factor r_t (times sqrt(1 - beta2^t), as these libraries use it)."""
    rho_t, rho_inf = _sma(beta2, t)
    return math.sqrt((1 - beta2**t) * (rho_t - 4) / (rho_inf - 4) * (rho_t - 2) / rho_t
                     * rho_inf / (rho_inf - 2))


# Each rule: (optimizer, group, state, t) -> (eta tensor, phase). Tensors are real views.
Rule = Callable[[torch.optim.Optimizer, dict, dict, int], tuple[torch.Tensor, str]]


def _adam(opt, group, state, t):
    b1, b2 = group["betas"]
    v = state["max_exp_avg_sq"] if group.get("amsgrad", False) else state["exp_avg_sq"]
    v = real_view(v)
    return _lr(group) / (1 - b1**t) / (v.sqrt() / math.sqrt(1 - b2**t) + group["eps"]), "adaptive"


def _flag(opt, group, name: str, default: bool) -> bool:
    """A switch kept in the parameter group (``optim.AdaBelief``) or on the optimiser
    (adabelief-pytorch)."""
    return bool(group[name]) if name in group else bool(getattr(opt, name, default))


def _adabelief_pytorch(opt, group, state, t):
    """adabelief-pytorch 0.2.1's update, which ``optim.AdaBelief`` reproduces."""
    b1, b2 = group["betas"]
    lr, eps = _lr(group), group["eps"]
    amsgrad = group.get("amsgrad", False)
    s = real_view(state["max_exp_avg_var"] if amsgrad else state["exp_avg_var"])  # eps included
    if not _flag(opt, group, "rectify", False):
        return lr / (1 - b1**t) / (s.sqrt() / math.sqrt(1 - b2**t) + eps), "adaptive"
    rho_t, _ = _sma(b2, t)
    if rho_t >= 5:  # the rectified branch reads exp_avg_var even under amsgrad
        s = real_view(state["exp_avg_var"])
        return lr * _rect(b2, t) / (1 - b1**t) / (s.sqrt() + eps), "adaptive"
    if _flag(opt, group, "degenerated_to_sgd", True):
        return torch.full_like(s, lr / (1 - b1**t)), "momentum"
    return torch.zeros_like(s), "frozen"


def _adabelief_torch_optimizer(opt, group, state, t):
    b1, b2 = group["betas"]
    lr, eps = _lr(group), group["eps"]
    s = real_view(state["max_exp_avg_var"] if group.get("amsgrad", False) else state["exp_avg_var"])
    denom = s.sqrt() / math.sqrt(1 - b2**t) + eps  # eps already added in place to s
    if not getattr(opt, "_rectify", False):
        return lr / (1 - b1**t) / denom, "adaptive"
    rho_t, rho_inf = _sma(b2, t)
    if rho_t > 4:
        rt = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / (rho_inf - 4) / (rho_inf - 2)
                       / rho_t)
        return rt * lr / (1 - b1**t) / denom, "adaptive"
    return torch.full_like(s, lr), "momentum"


def _radam_torch_optimizer(opt, group, state, t):
    b1, b2 = group["betas"]
    lr, eps = _lr(group), group["eps"]
    v = real_view(state["exp_avg_sq"])
    rho_t, _ = _sma(b2, t)
    if rho_t >= 5:
        return lr * _rect(b2, t) / (1 - b1**t) / (v.sqrt() + eps), "adaptive"
    return torch.full_like(v, lr / (1 - b1**t)), "momentum"


def _scaled_adam(opt, group, state, t):
    """lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + eps): DiffGrad, AdaMod, AdaBound."""
    b1, b2 = group["betas"]
    key = "max_exp_avg_sq" if group.get("amsbound", False) else "exp_avg_sq"
    v = real_view(state[key])
    return _lr(group) * math.sqrt(1 - b2**t) / (1 - b1**t) / (v.sqrt() + group["eps"])


def _diffgrad(opt, group, state, t):
    return _scaled_adam(opt, group, state, t), "adaptive"


def _adamod(opt, group, state, t):
    return torch.minimum(_scaled_adam(opt, group, state, t), real_view(state["exp_avg_lr"])), \
        "adaptive"


def _adabound(opt, group, state, t):
    idx = opt.param_groups.index(group)
    final_lr = group["final_lr"] * _lr(group) / opt.base_lrs[idx]
    lower = final_lr * (1 - 1 / (group["gamma"] * t + 1))
    upper = final_lr * (1 + 1 / (group["gamma"] * t))
    return _scaled_adam(opt, group, state, t).clamp(lower, upper), "adaptive"


def _lamb(opt, group, state, t):
    b1, b2 = group["betas"]
    bc = math.sqrt(1 - b2**t) / (1 - b1**t) if getattr(opt, "debias", False) else 1.0
    trust = 1.0 if getattr(opt, "adam", False) else state.get("trust_ratio", 1.0)
    trust = float(trust) if not isinstance(trust, torch.Tensor) else float(trust.item())
    v = real_view(state["exp_avg_sq"])
    return _lr(group) * bc * trust / (v.sqrt() + group["eps"]), "adaptive"


def _registry() -> list[tuple[type, Rule, str]]:
    rules: list[tuple[type, Rule, str]] = [
        (torch.optim.AdamW, _adam, ""),
        (torch.optim.Adam, _adam, ""),
    ]
    # This project's optim.AdaBelief (adabelief-pytorch's update, switches in param_groups).
    # diagnostics never imports optim (the dependency runs the other way); an instance exists
    # only once optim.adabelief is loaded, so it is looked up there.
    own = sys.modules.get("optim.adabelief")
    if own is not None:
        rules.append((own.AdaBelief, _adabelief_pytorch, ""))
    try:
        import adabelief_pytorch

        rules.append((adabelief_pytorch.AdaBelief, _adabelief_pytorch, ""))
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch_optimizer as topt
        rules += [
            (topt.AdaBelief, _adabelief_torch_optimizer, ""),
            (topt.RAdam, _radam_torch_optimizer, "torch-optimizer's RAdam keeps float32 moments "
             "(and rounds float64 weights through float32): eta is float32"),
            (topt.Yogi, _adam, ""),
            (topt.AdamP, _adam, "AdamP projects the update of matrices; eta ignores it"),
            (topt.DiffGrad, _diffgrad, "DiffGrad multiplies m by a friction coefficient in "
             "(0.5, 1) that depends on the last two gradients; eta leaves it out"),
            (topt.AdaMod, _adamod, ""),
            (topt.AdaBound, _adabound, ""),
            (topt.Lamb, _lamb, "Lamb's eta includes the trust ratio of its last step"),
        ]
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    return rules


def supported_optimizers() -> list[str]:
    """Qualified names of the optimiser classes :func:`effective_learning_rates` reads.

    Examples:
        >>> "torch.optim.adam.Adam" in supported_optimizers()
        True
    """
    return [f"{cls.__module__}.{cls.__qualname__}" for cls, _, _ in _registry()]


def rule_for(optimizer: torch.optim.Optimizer) -> tuple[Rule, str] | None:
    for cls, rule, note in _registry():
        if type(optimizer) is cls:
            return rule, note
    for cls, rule, note in _registry():  # subclasses (e.g. wrappers) last
        if isinstance(optimizer, cls):
            return rule, note
    return None
