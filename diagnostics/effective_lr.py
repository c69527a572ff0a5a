"""Per-coordinate effective learning rates of Adam-family optimisers, read from their state."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from diagnostics._optimizer_rules import real_view as _real
from diagnostics._optimizer_rules import rule_for as _rule_for
from diagnostics._optimizer_rules import step_of as _step_of
from diagnostics._optimizer_rules import supported_optimizers

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
