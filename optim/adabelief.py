r"""AdaBelief with every hyperparameter in ``param_groups`` and complex parameters as real views.

The update is that of adabelief-pytorch 0.2.1 (same defaults: ``eps=1e-16``, decoupled weight
decay, rectification), rewritten so that

* a complex parameter is updated exactly like its real view ``torch.view_as_real(p)`` (the
  moments are kept per real coordinate; adabelief-pytorch's update differs, measured);
* ``weight_decouple``, ``fixed_decay``, ``rectify`` and ``degenerated_to_sgd`` live in the
  parameter groups (they were instance attributes, lost by ``state_dict``);
* nothing is printed on construction.

With $g_t$ the gradient, $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$,
$s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon$ (the $\epsilon$ is added in place
every step, as in the reference code), the unrectified step is
$p \leftarrow p - \frac{\mathrm{lr}}{1-\beta_1^t}\, m_t / (\sqrt{s_t / (1-\beta_2^t)} + \epsilon)$.
The rectified step follows RAdam: plain momentum steps while the SMA length
$\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)$ is below 5.

References:
    Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", arXiv 2010.07468.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

__all__ = ["AdaBelief"]


class AdaBelief(Optimizer):
    r"""AdaBelief (adabelief-pytorch 0.2.1 semantics), complex-safe and silent.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and of its "belief"
            residual $(g - m)^2$.
        eps: added to the residual average every step and to the denominator.
        weight_decay: weight decay coefficient.
        amsgrad: keep the running maximum of the residual average.
        weight_decouple: decoupled (AdamW-style) weight decay $p \leftarrow p(1-\mathrm{lr}\,wd)$.
        fixed_decay: with ``weight_decouple``, decay by $p \leftarrow p(1-wd)$ instead.
        rectify: RAdam-style rectification.
        degenerated_to_sgd: while the rectification term is undefined, take momentum steps
            (else no step).

    NaN in, NaN out: gradients are not checked (as in torch's Adam). A NaN gradient coordinate
    makes that weight NaN at once and keeps it NaN (its moments hold the NaN); the other
    coordinates step normally. Skip the step in the training loop when the loss or the
    gradients are not finite.

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients", arXiv 2010.07468.

    Examples:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.tensor([1.0 + 1.0j]))
        >>> opt = AdaBelief([p], lr=0.1, rectify=False)
        >>> (p.abs() ** 2).sum().backward()
        >>> _ = opt.step()
        >>> p.data  # Re and Im move alike: 1 - lr * 0.2 / 1.8 (m = 0.2, sqrt(s / 0.001) = 1.8)
        tensor([0.8889+0.8889j])
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-16,
                 weight_decay: float = 0.0, amsgrad: bool = False, weight_decouple: bool = True,
                 fixed_decay: bool = False, rectify: bool = True,
                 degenerated_to_sgd: bool = True):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: expected lr >= 0, got {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon: expected eps >= 0, got {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta at index {i}: expected 0 <= beta < 1, got {b}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay: expected >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, weight_decouple=weight_decouple,
                        fixed_decay=fixed_decay, rectify=rectify,
                        degenerated_to_sgd=degenerated_to_sgd)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """Take one step; ``closure`` re-evaluates the loss (optional) and its value is returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdaBelief does not support sparse gradients")
                param = torch.view_as_real(p) if p.is_complex() else p  # updated in place
                grad = torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_var"] = torch.zeros_like(param)
                    if group["amsgrad"]:
                        state["max_exp_avg_var"] = torch.zeros_like(param)
                if group["weight_decouple"]:
                    param.mul_(1.0 - (wd if group["fixed_decay"] else lr * wd))
                elif wd != 0:
                    grad = grad.add(param, alpha=wd)
                exp_avg, exp_avg_var = state["exp_avg"], state["exp_avg_var"]
                state["step"] += 1
                t = state["step"]
                bias1 = 1 - beta1**t
                bias2 = 1 - beta2**t
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                residual = grad - exp_avg
                exp_avg_var.mul_(beta2).addcmul_(residual, residual, value=1 - beta2)
                if group["amsgrad"]:
                    max_var = state["max_exp_avg_var"]
                    torch.max(max_var, exp_avg_var.add_(eps), out=max_var)
                    denom = (max_var.sqrt() / math.sqrt(bias2)).add_(eps)
                else:
                    denom = (exp_avg_var.add_(eps).sqrt() / math.sqrt(bias2)).add_(eps)
                if not group["rectify"]:
                    param.addcdiv_(exp_avg, denom, value=-lr / bias1)
                    continue
                beta2_t = beta2**t
                n_sma_max = 2 / (1 - beta2) - 1
                n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
                if n_sma >= 5:
                    step_size = math.sqrt(
                        (1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma
                        * n_sma_max / (n_sma_max - 2)) / bias1
                    param.addcdiv_(exp_avg, exp_avg_var.sqrt().add_(eps), value=-step_size * lr)
                elif group["degenerated_to_sgd"]:
                    param.add_(exp_avg, alpha=-lr / bias1)
        return loss
