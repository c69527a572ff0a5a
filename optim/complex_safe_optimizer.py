"""Wrap any ``torch.optim.Optimizer`` class so that complex parameters are updated as real views.

Many third-party optimisers (torch-optimizer's among them) treat a complex parameter as one
complex number per entry: torch-optimizer's AdaBelief, for instance, never moves the imaginary
part. :class:`ComplexSafeOptimizer` hands the wrapped optimiser, for every complex parameter
``p``, a real proxy parameter that *shares storage* with ``torch.view_as_real(p)`` and whose
gradient is ``torch.view_as_real(p.grad)``. The update of ``p`` is then exactly the update the
optimiser makes on the real view, and nothing is copied.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

__all__ = ["ComplexSafeOptimizer"]


def _proxy(p: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(torch.view_as_real(p.detach()), requires_grad=p.requires_grad)


class ComplexSafeOptimizer(Optimizer):
    """Any optimiser class, applied to the real views of complex parameters.

    Construction output (banners printed by some optimisers) is swallowed. Hyperparameters,
    ``param_groups``, ``state``, ``state_dict``, ``load_state_dict``, ``zero_grad`` and
    ``add_param_group`` are those of the wrapped optimiser, which is available as ``inner``.
    Real parameters are handed over unchanged; a complex parameter appears in ``param_groups``
    as its real proxy (shape ``(..., 2)``).

    Args:
        optimizer_cls: the optimiser class, e.g. ``torch_optimizer.AdaBelief``.
        params: parameters or parameter groups (as for any optimiser).
        **kwargs: hyperparameters of ``optimizer_cls``.

    Examples:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.tensor([1.0 + 2.0j]))
        >>> opt = ComplexSafeOptimizer(torch.optim.SGD, [p], lr=0.25)
        >>> (p.abs() ** 2).sum().backward()
        >>> _ = opt.step()
        >>> p.data  # gradient of |p|^2 on the real view is 2 (Re p, Im p)
        tensor([0.5000+1.0000j])
    """

    def __init__(self, optimizer_cls: type[Optimizer], params: Iterable, **kwargs: Any):
        if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, Optimizer)):
            raise TypeError(f"optimizer_cls must be a torch.optim.Optimizer subclass, got "
                            f"{optimizer_cls!r}")
        self._ready = False
        self._pairs: list[tuple[torch.Tensor, nn.Parameter]] = []
        groups = self._proxied_groups(params)
        with contextlib.redirect_stdout(io.StringIO()):
            self.inner = optimizer_cls(groups, **kwargs)
        # Base-class bookkeeping (hooks, scheduler compatibility), then share the inner state.
        super().__init__([p for g in self.inner.param_groups for p in g["params"]],
                         self.inner.defaults)
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state
        self.defaults = self.inner.defaults
        self._ready = True

    def _proxied_groups(self, params) -> list[dict]:
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        out = []
        for g in groups:
            g = dict(g)
            ps = [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])
            new = []
            for p in ps:
                if p.is_complex():
                    q = _proxy(p)
                    self._pairs.append((p, q))
                    new.append(q)
                else:
                    new.append(p)
            g["params"] = new
            out.append(g)
        return out

    def add_param_group(self, param_group: dict) -> None:  # noqa: D102 - see Optimizer
        if not self._ready:  # called by Optimizer.__init__ on the proxies
            return super().add_param_group(param_group)
        (group,) = self._proxied_groups([param_group])
        self.inner.add_param_group(group)

    def _sync(self) -> None:
        """Point proxies at their parameter's storage and copy the gradients in."""
        for p, q in self._pairs:
            view = torch.view_as_real(p.detach())
            if q.data_ptr() != view.data_ptr() or q.shape != view.shape:
                q.data = view  # the parameter was moved or replaced (e.g. module.to())
            q.grad = None if p.grad is None else torch.view_as_real(p.grad)

    def step(self, closure: Callable[[], float] | None = None):
        """One step of the wrapped optimiser on the real views."""
        if closure is not None:
            def wrapped():
                with torch.enable_grad():
                    loss = closure()
                self._sync()
                return loss

            self._sync()
            return self.inner.step(wrapped)
        self._sync()
        return self.inner.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of the parameters and of their proxies."""
        for p, _ in self._pairs:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """The wrapped optimiser's ``state_dict``."""
        return self.inner.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Load into the wrapped optimiser (and keep sharing its groups and state)."""
        self.inner.load_state_dict(state_dict)
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state

    def __repr__(self) -> str:
        return f"ComplexSafeOptimizer({self.inner!r})"
