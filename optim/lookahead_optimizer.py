"""torch-optimizer's ``Lookahead``, built as a complete ``torch.optim.Optimizer``."""

from __future__ import annotations

import math
import numbers
import warnings

from torch.optim import Optimizer

__all__ = ["lookahead"]


def _lookahead_class() -> type[Optimizer]:
    """``torch_optimizer.Lookahead`` with torch's ``Optimizer`` constructor run first.

    torch-optimizer 0.3.0's ``Lookahead.__init__`` skips ``Optimizer.__init__``, which is what
    creates the step and state-dict hook tables that torch 2.13's ``step``, ``state_dict`` and
    ``load_state_dict`` read (they failed with an ``AttributeError``). The subclass runs the
    base constructor on the inner optimiser's parameters, then torch-optimizer's, which sets
    the shared ``param_groups``, the slow-weight ``state`` and ``defaults`` as before: the
    update and the ``state_dict`` format are torch-optimizer's, and ``register_step_pre_hook``
    / ``register_step_post_hook`` work on the wrapper like on any optimiser.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch_optimizer import Lookahead

    class _Lookahead(Lookahead):
        __doc__ = Lookahead.__doc__

        def __init__(self, optimizer: Optimizer, k: int, alpha: float) -> None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            Optimizer.__init__(self, params, dict(optimizer.defaults))
            super().__init__(optimizer, k=k, alpha=alpha)

    _Lookahead.__name__ = _Lookahead.__qualname__ = "Lookahead"
    return _Lookahead


_CLASS: type[Optimizer] | None = None


def lookahead(inner: Optimizer, k: int = 6, alpha: float = 0.5) -> Optimizer:
    r"""Wrap ``inner`` in torch-optimizer's ``Lookahead(inner, k, alpha)``.

    Lookahead (Zhang et al., arXiv 1907.08610) keeps slow weights $\phi$ and, every ``k`` steps
    of ``inner`` on the fast weights $\theta$, sets $\phi \leftarrow \phi + \alpha(\theta -
    \phi)$ and $\theta \leftarrow \phi$; the LSC paper trains with AdaBelief inside it
    (``k = 6``, ``alpha = 0.5``). ``alpha = 1`` recovers ``inner``.

    The returned optimiser is a subclass of ``torch_optimizer.Lookahead`` that also runs
    torch's ``Optimizer`` constructor (torch-optimizer 0.3.0 skips it, and torch 2.13's
    ``state_dict`` / ``load_state_dict`` / step hooks need what it sets up).

    Args:
        inner: the optimiser that takes the fast steps.
        k: fast steps per slow update, an integer >= 1.
        alpha: slow-weight step size, in ``(0, 1]``.

    Returns:
        The Lookahead optimiser; ``param_groups`` are ``inner``'s.

    Raises:
        TypeError: ``inner`` is not a ``torch.optim.Optimizer``, or ``k`` is not an integer.
        ValueError: ``k < 1`` (``k = 0`` divided by zero at the first step) or ``alpha``
            outside ``(0, 1]`` (``alpha > 1`` extrapolates past the fast weights; ``0`` never
            moves).

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
        arXiv 1907.08610.

    Examples:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.zeros(1))
        >>> opt = lookahead(torch.optim.SGD([p], lr=1.0), k=2, alpha=0.5)
        >>> for _ in range(3):
        ...     p.grad = torch.ones(1); opt.step()
        >>> p.data  # slow: -1 (first step), then -1 + 0.5 (-3 - (-1)) two fast steps later
        tensor([-2.])
    """
    global _CLASS
    if not isinstance(inner, Optimizer):
        raise TypeError(f"inner must be a torch.optim.Optimizer, got {type(inner).__name__}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer >= 1 (fast steps per slow update), got {k!r}")
    if k < 1:
        raise ValueError(f"k must be an integer >= 1 (fast steps per slow update), got {k}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) \
            or not (math.isfinite(alpha) and 0 < alpha <= 1):
        raise ValueError(f"alpha must lie in (0, 1] (the slow weights' step size), got "
                         f"{alpha!r}")
    if _CLASS is None:
        _CLASS = _lookahead_class()
    return _CLASS(inner, k=int(k), alpha=float(alpha))
