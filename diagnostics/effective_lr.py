"""Per-coordinate effective learning rates of Adam-family optimisers, read from their state."""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["EffectiveLRs", "effective_learning_rates", "supported_optimizers"]

_DEFINITIONS = ("preconditioner", "all_ones")


@dataclass
class EffectiveLRs:
    r"""Effective learning rates of every parameter tensor at one optimiser step.

    Attributes:
        definition: ``"preconditioner"``: the per-coordinate factor $\eta$ with
            $\Delta\theta = -\eta\, m$ ($m$ the first moment, raw, as stored); for Adam
            $\eta = \mathrm{lr} / (1-\beta_1^t) / (\sqrt{v/(1-\beta_2^t)} + \epsilon)$.
            ``"all_ones"``: the update $\theta_t - \theta_{t+1}$ the optimiser would make at its
            next step if the gradient were all ones (state, weights and hooks restored
            afterwards; weight decay switched off for it), as plotted by Zucchet & Orvieto.
        optimizer: class name of the optimiser.
        rates: ``name -> tensor`` with the shape of the parameter's real view (a complex
            parameter of shape ``s`` gives ``s + (2,)``: real and imaginary parts have their
            own moments).
        summary: ``name -> {"geo_mean", "min", "q10", "median", "q90", "max"}`` over the
            absolute values of ``rates[name]`` (the geometric mean over non-zero entries).
        phase: ``name -> "adaptive"`` (normal Adam-type step), ``"momentum"`` (a rectified
            optimiser still in its warm-up: the step is plain momentum ``-eta * m`` with a
            scalar ``eta``, not divided by any second moment), ``"frozen"`` (rectified warm-up
            without SGD fallback: no update at all, ``eta = 0``), ``"not_started"`` (no
            step taken yet: preconditioner rates are NaN) or ``"unknown"`` (an optimiser this
            module cannot read, with ``definition="all_ones"``).
        step: the largest optimiser step count over the parameters.
        notes: caveats (e.g. factors of the update that are not part of ``eta``).
    """

    definition: str
    optimizer: str
    rates: dict[str, torch.Tensor]
    summary: dict[str, dict[str, float]]
    phase: dict[str, str]
    step: int
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        lines = [f"EffectiveLRs({self.optimizer}, definition={self.definition!r}, "
                 f"step={self.step})"]
        for name, s in self.summary.items():
            lines.append(
                f"  {name:<32} geo_mean={s['geo_mean']:.3g} min={s['min']:.3g} "
                f"median={s['median']:.3g} max={s['max']:.3g} [{self.phase[name]}]"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (the per-coordinate tensors are left out)."""
        return {"definition": self.definition, "optimizer": self.optimizer, "step": self.step,
                "summary": self.summary, "phase": self.phase, "notes": list(self.notes)}


# ---------------------------------------------------------------------------- helpers
def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def _step_of(state: dict) -> int:
    step = state.get("step", 0)
    return int(step.item()) if isinstance(step, torch.Tensor) else int(step)


def _optimizer_step(optimizer: torch.optim.Optimizer) -> int:
    """The optimiser's own step count: the largest ``state[p]["step"]`` over its parameters
    (0 before the first step, and for optimisers that keep no step count)."""
    return max((_step_of(optimizer.state[p]) for g in optimizer.param_groups
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
    v = _real(v)
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
    s = _real(state["max_exp_avg_var"] if amsgrad else state["exp_avg_var"])  # eps included
    if not _flag(opt, group, "rectify", False):
        return lr / (1 - b1**t) / (s.sqrt() / math.sqrt(1 - b2**t) + eps), "adaptive"
    rho_t, _ = _sma(b2, t)
    if rho_t >= 5:  # the rectified branch reads exp_avg_var even under amsgrad
        s = _real(state["exp_avg_var"])
        return lr * _rect(b2, t) / (1 - b1**t) / (s.sqrt() + eps), "adaptive"
    if _flag(opt, group, "degenerated_to_sgd", True):
        return torch.full_like(s, lr / (1 - b1**t)), "momentum"
    return torch.zeros_like(s), "frozen"


def _adabelief_torch_optimizer(opt, group, state, t):
    b1, b2 = group["betas"]
    lr, eps = _lr(group), group["eps"]
    s = _real(state["max_exp_avg_var"] if group.get("amsgrad", False) else state["exp_avg_var"])
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
    v = _real(state["exp_avg_sq"])
    rho_t, _ = _sma(b2, t)
    if rho_t >= 5:
        return lr * _rect(b2, t) / (1 - b1**t) / (v.sqrt() + eps), "adaptive"
    return torch.full_like(v, lr / (1 - b1**t)), "momentum"


def _scaled_adam(opt, group, state, t):
    """lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + eps): DiffGrad, AdaMod, AdaBound."""
    b1, b2 = group["betas"]
    key = "max_exp_avg_sq" if group.get("amsbound", False) else "exp_avg_sq"
    v = _real(state[key])
    return _lr(group) * math.sqrt(1 - b2**t) / (1 - b1**t) / (v.sqrt() + group["eps"])


def _diffgrad(opt, group, state, t):
    return _scaled_adam(opt, group, state, t), "adaptive"


def _adamod(opt, group, state, t):
    return torch.minimum(_scaled_adam(opt, group, state, t), _real(state["exp_avg_lr"])), \
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
    v = _real(state["exp_avg_sq"])
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


def _rule_for(optimizer: torch.optim.Optimizer) -> tuple[Rule, str] | None:
    for cls, rule, note in _registry():
        if type(optimizer) is cls:
            return rule, note
    for cls, rule, note in _registry():  # subclasses (e.g. wrappers) last
        if isinstance(optimizer, cls):
            return rule, note
    return None


def _same_tensor(named: torch.Tensor, held: torch.Tensor) -> bool:
    """``held`` is ``named`` itself, or the real view of a complex ``named`` (the proxy that a
    complex-safe optimiser such as ``optim.ComplexSafeOptimizer`` steps in its place)."""
    if held is named:
        return True
    return (named.is_complex() and not held.is_complex() and held.shape == named.shape + (2,)
            and held.device == named.device and held.data_ptr() == named.data_ptr())


def _names(optimizer: torch.optim.Optimizer, named_parameters) -> list[tuple[str, torch.Tensor]]:
    """``(name, parameter)`` for every parameter the optimiser holds, in group order.

    Raises:
        ValueError: a named tensor that the optimiser does not hold (it would otherwise be
            reported under a ``group{i}.param{j}`` key of some other tensor, or not at all).
    """
    held = [p for group in optimizer.param_groups for p in group["params"]]
    lookup: dict[int, str] = {}
    if named_parameters is not None:
        items = list(named_parameters.items() if isinstance(named_parameters, dict)
                     else named_parameters)
        by_id = {id(p): p for p in held}
        missing = []
        for name, p in items:
            if id(p) in by_id:
                lookup[id(p)] = name
                continue
            twin = next((q for q in held if isinstance(p, torch.Tensor) and _same_tensor(p, q)),
                        None)
            if twin is None:
                missing.append(name)
            else:
                lookup[id(twin)] = name
        if missing:
            raise ValueError(
                f"named_parameters: {', '.join(map(repr, missing))} "
                f"{'is not a parameter' if len(missing) == 1 else 'are not parameters'} of this "
                f"{type(optimizer).__name__}; pass only the tensors it optimises (e.g. "
                f"{{n: p for n, p in model.named_parameters() if p.requires_grad}})")
    out = []
    for gi, group in enumerate(optimizer.param_groups):
        for pi, p in enumerate(group["params"]):
            out.append((lookup.get(id(p), f"group{gi}.param{pi}"), p))
    return out


def _summary(rate: torch.Tensor) -> dict[str, float]:
    a = rate.detach().abs().to(torch.float64).reshape(-1).cpu().numpy()
    if a.size == 0 or np.isnan(a).all():
        nan = float("nan")
        return dict(geo_mean=nan, min=nan, q10=nan, median=nan, q90=nan, max=nan)
    pos = a[a > 0]
    geo = float(np.exp(np.log(pos).mean())) if pos.size else 0.0
    q10, med, q90 = np.quantile(a, [0.1, 0.5, 0.9])
    return dict(geo_mean=geo, min=float(a.min()), q10=float(q10), median=float(med),
                q90=float(q90), max=float(a.max()))


# ---------------------------------------------------------------------------- all-ones update
def _clone_state(state: dict) -> dict:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v))
            for k, v in state.items()}


def _step_without_hooks(optimizer: torch.optim.Optimizer) -> None:
    """One ``step()`` that the optimiser's step hooks (its own and the global ones) do not see.

    torch runs the hooks in the wrapper it puts around the class's ``step`` (made with
    ``functools.wraps``, so the function it wraps is its ``__wrapped__``); calling that function
    takes the step itself and nothing else. A class whose ``step`` is not wrapped has no hooks
    to skip. (An optimiser that steps another inside, a wrapper, runs the inner one's hooks.)
    """
    step = type(optimizer).step
    getattr(step, "__wrapped__", step)(optimizer)


@torch.no_grad()
def _all_ones_update(optimizer: torch.optim.Optimizer,
                     params: list[torch.Tensor]) -> dict[int, torch.Tensor]:
    """Step once on an all-ones gradient, measure the update, restore everything."""
    all_params = [p for g in optimizer.param_groups for p in g["params"]]
    data = [p.detach().clone() for p in all_params]
    grads = [p.grad for p in all_params]
    states = {p: _clone_state(optimizer.state[p]) for p in all_params if p in optimizer.state}
    groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
              for g in optimizer.param_groups]
    out = {}
    try:
        for g in optimizer.param_groups:
            if "weight_decay" in g:
                g["weight_decay"] = 0.0
        for p in all_params:
            ones = torch.ones_like(_real(p))
            p.grad = torch.view_as_complex(ones) if p.is_complex() else ones
        _step_without_hooks(optimizer)
        wanted = {id(p) for p in params}
        for p, old in zip(all_params, data):
            if id(p) in wanted:
                out[id(p)] = _real(old) - _real(p.detach())
    finally:
        for p, old, g in zip(all_params, data, grads):
            p.copy_(old)
            p.grad = g
        for p in all_params:
            if p in states:
                optimizer.state[p] = states[p]
            else:
                optimizer.state.pop(p, None)
        for g, saved in zip(optimizer.param_groups, groups):
            g.update(saved)
    return out


# ---------------------------------------------------------------------------- public function
def effective_learning_rates(
    optimizer: torch.optim.Optimizer,
    named_parameters: Iterable[tuple[str, torch.Tensor]] | dict | None = None,
    *,
    definition: str = "preconditioner",
) -> EffectiveLRs:
    r"""Per-coordinate effective learning rates of an Adam-family optimiser.

    ``definition="preconditioner"`` (default) reads the optimiser's state and returns the
    factor $\eta$ of its last step $\Delta\theta = -\eta \odot m$ ($m$ = ``exp_avg``):

    * ``torch.optim.Adam`` / ``AdamW``, torch-optimizer ``Yogi`` and ``AdamP``:
      $\eta = \mathrm{lr}/(1-\beta_1^t)/(\sqrt{v/(1-\beta_2^t)} + \epsilon)$ with
      $v$ = ``exp_avg_sq`` (``max_exp_avg_sq`` under amsgrad);
    * adabelief-pytorch ``AdaBelief`` and this project's ``optim.AdaBelief`` (the same update,
      its switches kept in ``param_groups``): the same with $v$ = ``exp_avg_var`` (which already
      holds the $\epsilon$ the optimiser adds in place every step; ``max_exp_avg_var`` under
      amsgrad). When rectified, $\eta = \mathrm{lr}\, r_t/(1-\beta_1^t)/(\sqrt{v}+\epsilon)$
      once the SMA length $\rho_t \ge 5$, and before that the step is plain momentum,
      $\eta = \mathrm{lr}/(1-\beta_1^t)$ (phase ``"momentum"``; ``0`` and phase ``"frozen"``
      with ``degenerated_to_sgd=False``);
    * torch-optimizer ``AdaBelief`` (its own variant: bias-corrected denominator also when
      rectified, momentum phase $\eta = \mathrm{lr}$), ``RAdam``, ``DiffGrad``, ``AdaMod``
      (the running minimum), ``AdaBound`` (the clipped rate) and ``Lamb`` (with its last
      trust ratio).

    ``definition="all_ones"`` returns the update an all-ones gradient would cause at the next
    step (the quantity plotted in arXiv 2405.21064); it runs one hidden step, which the
    optimiser's step hooks do not see (its own and the global ones; those of an optimiser that
    a wrapper steps inside do), and restores weights, gradients and optimiser state, so it
    works for any optimiser.

    Complex parameters are read through ``torch.view_as_real``.

    Args:
        optimizer: the optimiser (after at least one step for ``"preconditioner"``).
        named_parameters: ``model.named_parameters()`` (or a dict) to key results by name;
            otherwise keys are ``group{i}.param{j}``. Every tensor named must be one the
            optimiser holds (or, for a complex parameter, the real view it steps); parameters
            left unnamed keep their ``group{i}.param{j}`` key.
        definition: ``"preconditioner"`` or ``"all_ones"``.

    Returns:
        An :class:`EffectiveLRs`.

    Raises:
        TypeError: ``"preconditioner"`` for an optimiser this function cannot read
            (see :func:`supported_optimizers`).
        ValueError: a tensor in ``named_parameters`` that the optimiser does not hold (named
            in the message), or an unknown ``definition``.

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", arXiv 2405.21064 (Section 5, Adam's learning rates).

    Examples:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.zeros(2))
        >>> opt = torch.optim.Adam([p], lr=0.1, eps=0.0)
        >>> p.grad = torch.tensor([2.0, -0.5]); opt.step()
        >>> effective_learning_rates(opt).rates["group0.param0"]  # lr / ((1 - beta1) |g|)
        tensor([0.5000, 2.0000])
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if definition not in _DEFINITIONS:
        raise ValueError(f"definition must be one of {_DEFINITIONS}, got {definition!r}")
    named = _names(optimizer, named_parameters)
    found = _rule_for(optimizer)
    notes: list[str] = []
    if found is None and definition == "preconditioner":
        raise TypeError(
            f"effective_learning_rates cannot read {type(optimizer).__name__}; supported: "
            f"{supported_optimizers()} (definition='all_ones' works for any optimiser)"
        )
    rule, note = found if found is not None else (None, "")
    if note:
        notes.append(note)

    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    rates: dict[str, torch.Tensor] = {}
    phase: dict[str, str] = {}
    steps = [0]
    for name, p in named:
        state = optimizer.state.get(p, {})
        t = _step_of(state)
        steps.append(t)
        if t == 0:
            phase[name] = "not_started"
        elif rule is not None:  # the all-ones update is the next step, t + 1
            t_phase = t + 1 if definition == "all_ones" else t
            _, phase[name] = rule(optimizer, group_of[id(p)], state, t_phase)
        else:
            phase[name] = "unknown"
    if definition == "preconditioner":
        for name, p in named:
            state = optimizer.state.get(p, {})
            t = _step_of(state)
            if t == 0:
                rates[name] = torch.full_like(_real(p.detach()), float("nan"))
            else:
                rates[name] = rule(optimizer, group_of[id(p)], state, t)[0].detach().clone()
    else:
        upd = _all_ones_update(optimizer, [p for _, p in named])
        for name, p in named:
            rates[name] = upd[id(p)]
        notes.append("all-ones update: weight decay switched off for the hypothetical step")
    return EffectiveLRs(
        definition=definition,
        optimizer=type(optimizer).__name__,
        rates=rates,
        summary={n: _summary(r) for n, r in rates.items()},
        phase=phase,
        step=max(steps),
        notes=notes,
    )
