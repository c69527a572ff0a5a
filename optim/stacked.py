r"""Many independent copies of one model trained side by side as one vectorised computation.

:class:`StackedTrainer` stacks the parameters of $S$ models of the same architecture on a
leading model dimension, evaluates all of them at once with ``torch.func.vmap`` over
``torch.func.functional_call`` and updates them with a vectorised Adam whose per-model
learning rate follows its own schedule. The arithmetic of each model's update is that of
``torch.optim.Adam`` (no amsgrad, no weight decay): with $g$ the gradient,

$$m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
\theta \leftarrow \theta - \frac{\eta_s}{1-\beta_1^t}\,
\frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon},$$

where $\eta_s$ is model $s$'s learning rate at step $t$. Complex parameters are updated
through their real view (real and imaginary parts have their own moments), as torch does.

Why not ``torch.func.stack_module_state``: it refuses modules with
``torch.nn.utils.parametrize`` parametrizations (each parametrized instance gets its own
dynamically created class), so the stacking is done here from ``named_parameters()`` with the
same checks (same names, shapes and dtypes). ``functional_call`` on one template copy then
swaps in each model's originals, and the parametrizations recompute the derived tensors from
them, so parametrized cells (``ExpMag``, ``RealImag``, learned ``gamma``) train correctly.

Why a trainer of its own rather than one ``torch.optim.Adam`` over the stacked tensors:
``torch.optim.Adam`` holds one learning rate per parameter group, while the stacked tensors
hold all models, so per-model learning rates (and per-model schedules) need the update to be
written with an ``(S,)`` learning-rate tensor broadcast over the model dimension.

References:
    Kingma & Ba, "Adam: a method for stochastic optimization", arXiv 1412.6980.
    Zucchet & Orvieto, arXiv 2405.21064 (the teacher-student sweep this serves).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

__all__ = ["StackedTrainer", "cosine_lr"]

_SCHEDULES = ("cosine", "constant")


def cosine_lr(peak: torch.Tensor, step: int, total: int, eta_min: float = 0.0) -> torch.Tensor:
    r"""Cosine decay $\eta_t = \eta_{min} + (\eta_0 - \eta_{min})(1 + \cos(\pi t / T))/2$.

    The closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` (``T_max = total``),
    evaluated for a tensor of peak learning rates at scheduler step ``step`` (0 = first step).

    Examples:
        >>> import torch
        >>> cosine_lr(torch.tensor([1.0]), 5, 10).tolist()
        [0.5]
    """
    if total < 1:
        raise ValueError(f"cosine_lr: total must be at least 1, got {total}")
    return eta_min + (peak - eta_min) * (1 + math.cos(math.pi * step / total)) / 2


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


class StackedTrainer:
    r"""Train $S$ copies of one architecture side by side with per-model Adam.

    Args:
        models: $S \ge 1$ modules of the same architecture (same parameter names, shapes and
            dtypes; parametrized modules are fine). Their current values are copied; the
            modules themselves are not modified.
        lrs: $S$ peak learning rates (one per model).
        betas: Adam's $(\beta_1, \beta_2)$.
        eps: Adam's $\epsilon$.
        schedule: ``"cosine"`` (decay to ``eta_min`` over ``total_steps``, as
            ``CosineAnnealingLR``) or ``"constant"``.
        total_steps: steps of the cosine schedule (required for ``"cosine"``).
        eta_min: final learning rate of the cosine schedule.

    Attributes:
        params: ``name -> (S, ...)`` stacked leaf tensors (``requires_grad``).
        buffers: ``name -> (S, ...)`` stacked buffers.
        step_count: Adam steps taken.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> models = [torch.nn.Linear(3, 1) for _ in range(4)]
        >>> trainer = StackedTrainer(models, [1e-3, 1e-2, 1e-1, 1.0], schedule="constant")
        >>> x = torch.randn(8, 3)
        >>> losses = trainer.step(lambda out: (out ** 2).mean(), x)
        >>> tuple(losses.shape), tuple(trainer(x).shape)
        ((4,), (4, 8, 1))
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        lrs: Sequence[float] | torch.Tensor,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        schedule: str = "cosine",
        total_steps: int | None = None,
        eta_min: float = 0.0,
    ):
        models = list(models)
        if not models:
            raise ValueError("StackedTrainer: expected at least one model")
        if schedule not in _SCHEDULES:
            raise ValueError(f"StackedTrainer: schedule must be one of {_SCHEDULES}, got "
                             f"{schedule!r}")
        if schedule == "cosine" and (total_steps is None or total_steps < 1):
            raise ValueError("StackedTrainer: the cosine schedule needs total_steps >= 1")
        lrs = torch.as_tensor(lrs, dtype=torch.float64).flatten()
        if lrs.numel() != len(models):
            raise ValueError(f"StackedTrainer: {len(models)} models but {lrs.numel()} lrs")
        if not bool((lrs > 0).all() and torch.isfinite(lrs).all()):
            raise ValueError(f"StackedTrainer: learning rates must be positive, got {lrs}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or not 0 <= eps < math.inf:
            raise ValueError(f"StackedTrainer: expected betas in [0, 1) and eps a finite "
                             f"number >= 0, got betas {betas}, eps {eps}")
        if not 0 <= eta_min < math.inf:
            raise ValueError(f"StackedTrainer: expected eta_min a finite number >= 0, got "
                             f"{eta_min}")
        self.params = self._stack(models, "named_parameters", grad=True)
        self.buffers = self._stack(models, "named_buffers", grad=False)
        self.template = copy.deepcopy(models[0])
        self.n_models = len(models)
        self.peak_lrs = lrs
        self.betas, self.eps = betas, eps
        self.schedule, self.total_steps, self.eta_min = schedule, total_steps, eta_min
        self.step_count = 0
        self.exp_avg = {k: torch.zeros_like(_real(p)) for k, p in self.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(_real(p)) for k, p in self.params.items()}

    @staticmethod
    def _stack(models, method: str, grad: bool) -> dict[str, torch.Tensor]:
        named = [dict(getattr(m, method)()) for m in models]
        keys = list(named[0])
        out = {}
        for i, d in enumerate(named[1:], 1):
            if list(d) != keys:
                raise ValueError(f"StackedTrainer: model {i} has {method} {list(d)}, model 0 "
                                 f"has {keys}")
        for k in keys:
            ts = [d[k] for d in named]
            if any(t.shape != ts[0].shape or t.dtype != ts[0].dtype for t in ts):
                raise ValueError(f"StackedTrainer: {k!r} differs in shape or dtype between "
                                 "models")
            stacked = torch.stack([t.detach() for t in ts]).clone()
            out[k] = stacked.requires_grad_(grad) if grad else stacked
        return out

    # ------------------------------------------------------------------ evaluation
    def call(self, fn: Callable[[nn.Module], torch.Tensor], *args, in_dims=None):
        """Run ``fn(module, *args)`` for every model at once; returns ``(S, ...)`` outputs.

        ``in_dims`` as in ``vmap`` for ``args`` (default: shared, ``None`` for each); use 0
        for an argument that carries a leading model dimension.
        """
        if in_dims is None:
            in_dims = (None,) * len(args)

        def one(params, buffers, *a):
            return functional_call(_Apply(self.template, fn), (params, buffers), a,
                                   strict=False)

        p = {f"module.{k}": v for k, v in self.params.items()}
        b = {f"module.{k}": v for k, v in self.buffers.items()}
        return vmap(one, in_dims=(0, 0, *in_dims), randomness="error")(p, b, *args)

    def __call__(self, *args, in_dims=None):
        """Outputs of every model's ``forward`` (first output if it returns a tuple)."""
        def forward(module, *a):
            out = module(*a)
            return out[0] if isinstance(out, tuple) else out

        return self.call(forward, *args, in_dims=in_dims)

    # ------------------------------------------------------------------ training
    def current_lrs(self) -> torch.Tensor:
        """Learning rates ``(S,)`` the next step will use."""
        if self.schedule == "constant":
            return self.peak_lrs.clone()
        return cosine_lr(self.peak_lrs, self.step_count, self.total_steps, self.eta_min)

    def step(
        self,
        loss_fn: Callable[[torch.Tensor], torch.Tensor],
        *args: Any,
        in_dims: Any = None,
        target: torch.Tensor | None = None,
        active: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One Adam step of every model on ``loss_fn(model(*args)[, target])``.

        Args:
            loss_fn: maps one model's output (and ``target`` when given) to a scalar loss.
            args: inputs of ``forward`` (see ``in_dims``).
            in_dims: ``vmap`` in_dims of ``args`` (plus one trailing entry for ``target``).
            target: optional per-call target, passed to ``loss_fn``.
            active: optional ``(S,)`` bool; inactive models (e.g. diverged ones) are not
                updated and their moments stay as they are.

        Returns:
            The ``(S,)`` losses before the step (detached).
        """
        active = self._check_active(active)
        n = len(args)
        dims = tuple(in_dims) if in_dims is not None else (None,) * (n + (target is not None))

        def loss(module, *a):
            out = module(*a[:n])
            out = out[0] if isinstance(out, tuple) else out
            return loss_fn(out, a[n]) if target is not None else loss_fn(out)

        extra = (target,) if target is not None else ()
        losses = self.call(loss, *args, *extra, in_dims=dims)  # (S,)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()),
                                    allow_unused=True)
        self.apply_gradients(dict(zip(self.params, grads)), active=active)
        return losses.detach()

    @torch.no_grad()
    def apply_gradients(self, grads: dict[str, torch.Tensor | None],
                        active: torch.Tensor | None = None) -> None:
        """Adam update of every model from stacked gradients ``name -> (S, ...)``."""
        lr = self.current_lrs()
        self.step_count += 1
        b1, b2 = self.betas
        t = self.step_count
        bc1 = 1 - b1**t
        bc2_sqrt = math.sqrt(1 - b2**t)
        active = self._check_active(active)
        for k, p in self.params.items():
            g = grads.get(k)
            if g is None:
                continue
            pr, g = _real(p), _real(g)
            shape = (-1,) + (1,) * (pr.dim() - 1)
            step_size = (lr / bc1).to(device=pr.device, dtype=pr.dtype).view(shape)
            m, v = self.exp_avg[k], self.exp_avg_sq[k]
            m_new = m.lerp(g, 1 - b1)
            v_new = v.mul(b2).addcmul_(g, g, value=1 - b2)
            denom = (v_new.sqrt() / bc2_sqrt).add_(self.eps)
            update = step_size * (m_new / denom)
            if active is not None:
                keep = active.to(pr.device).view(shape)
                m_new = torch.where(keep, m_new, m)
                v_new = torch.where(keep, v_new, v)
                update = torch.where(keep, update, torch.zeros_like(update))
            m.copy_(m_new)
            v.copy_(v_new)
            pr.sub_(update)

    def _check_active(self, active) -> torch.Tensor | None:
        """``active`` as a ``(S,)`` bool tensor, or a clear error."""
        if active is None:
            return None
        if not isinstance(active, torch.Tensor):
            try:
                active = torch.as_tensor(active)
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(f"StackedTrainer: active must be a ({self.n_models},) bool "
                                f"tensor, got {type(active).__name__}") from err
        if active.is_floating_point() or active.is_complex():
            raise TypeError(f"StackedTrainer: active must be a ({self.n_models},) bool tensor "
                            f"(one flag per model), got dtype {active.dtype}")
        if active.numel() != self.n_models:
            raise ValueError(f"StackedTrainer: active must have one flag per model, shape "
                             f"({self.n_models},), got shape {tuple(active.shape)}")
        return active.to(torch.bool).flatten()

    def model(self, index: int) -> nn.Module:
        """A fresh module holding model ``index``'s current values."""
        if not 0 <= index < self.n_models:
            raise IndexError(f"StackedTrainer: model index {index} out of range")
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for k, v in module.named_parameters():
                v.copy_(self.params[k][index])
            for k, v in module.named_buffers():
                v.copy_(self.buffers[k][index])
        return module

    def __repr__(self) -> str:
        return (f"StackedTrainer({type(self.template).__name__} x {self.n_models}, "
                f"schedule={self.schedule!r}, step={self.step_count})")


class _Apply(nn.Module):
    """Wraps a module so ``functional_call`` can run an arbitrary function of it."""

    def __init__(self, module: nn.Module, fn: Callable):
        super().__init__()
        self.module = module
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.module, *args)
