r"""What the pre-trainer does to a transition's drivers: rescale them, shuffle them, carry the
optimiser state along with them, and (opt-in) add a gate-bias shift as a further driver.

A :class:`diagnostics.Driver` names a tensor and its rule (``mode``, ``exponent``, ``index``);
these functions apply the rule. They live in ``optim`` because only the pre-trainer moves
weights; ``diagnostics`` only measures.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075 (REFERENCE section 3: one scalar factor per tensor, eigenvalue
    magnitudes rescaled through ``|lam|``, never ``nu``, kernels entry-permuted).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.optim import Optimizer

from diagnostics.transitions import Driver, Transition
from optim.lsc.frozen import is_frozen
from recurrent_params import assign_

__all__ = ["rescale_", "shuffle_", "carry_optimizer_state_", "with_gate_bias_shift"]

MAX_MAGNITUDE = 1.0 - 1e-4
"""The default cap on ``|lam|`` of a rescaled eigenvalue (strictly inside the unit disk, so an
exponential parametrization keeps a finite original)."""


@torch.no_grad()
def rescale_(driver: Driver, factor: float, max_magnitude: float = MAX_MAGNITUDE) -> None:
    r"""Apply $c$ = ``factor ** driver.exponent`` to the driver's tensor, in place.

    ``"scale"``: the tensor times $c$. ``"magnitude"``: the eigenvalues times $c$ (phase kept),
    ``|lam|`` capped at ``max_magnitude``; written through the parametrization's
    ``right_inverse``, so an exponential ``nu`` moves to ``log(-log(c |lam|))``, never
    ``c * nu``. ``"shift"``: $\log c$ added to the entries ``driver.index``. A frozen driver
    (a tensor that does not require grad, :func:`optim.lsc.frozen.is_frozen`) is left as it is.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from diagnostics import Driver
        >>> lin = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.fill_(1.0)
        >>> rescale_(Driver(lin, "weight", exponent=0.5), 4.0)
        >>> lin.weight.detach()
        tensor([[2., 2.],
                [2., 2.]])
    """
    if is_frozen(driver):
        return  # never move a tensor that does not require grad
    factor = float(factor) ** driver.exponent
    value = driver.value.detach()
    if driver.mode == "shift":
        new = value.clone()
        idx = slice(None) if driver.index is None else driver.index
        new[idx] += torch.log(torch.tensor(factor, dtype=torch.float64)).item()
        assign_(driver.module, driver.name, new)
        return
    new = value * factor
    if driver.mode == "magnitude":
        mag = new.abs()
        cap = torch.clamp(mag, max=max_magnitude)
        new = torch.where(mag > max_magnitude, new * (cap / mag.clamp_min(1e-30)), new)
    assign_(driver.module, driver.name, new)


@torch.no_grad()
def shuffle_(driver: Driver, generator: torch.Generator) -> torch.Tensor | None:
    """Randomly permute the entries of a 2-D ``"scale"`` tensor (a kernel), in place.

    Returns:
        The permutation of the flattened entries, or ``None`` when nothing was shuffled
        (biases, eigenvalues and gate shifts are never shuffled, as in the reference; nor is
        a frozen driver, :func:`optim.lsc.frozen.is_frozen`).
    """
    value = driver.value.detach()
    if driver.mode != "scale" or value.ndim != 2 or is_frozen(driver):
        return None
    perm = torch.randperm(value.numel(), generator=generator).to(value.device)
    assign_(driver.module, driver.name, _permuted(value, perm))
    return perm


def _permuted(value: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The flattened entries of ``value`` gathered by ``perm``, in ``value``'s shape
    (``index_select``: the same values as ``value.reshape(-1)[perm]``, in 2-3x less time than
    advanced indexing on CPU)."""
    return value.reshape(-1).index_select(0, perm).view(value.shape)


@torch.no_grad()
def carry_optimizer_state_(optimizer: Optimizer | None, driver: Driver,
                           factor: float | None = None,
                           perm: torch.Tensor | None = None) -> None:
    """Carry the optimiser state of a rescaled (``factor``) or shuffled (``perm``) tensor along.

    A plain parameter's Lookahead slow copy is multiplied by the same factor (or permuted),
    and its moments are permuted; for any other driver (parametrized tensors, eigenvalue
    magnitudes, bias shifts) the slow copy is reset to the new value. The reference throws
    the optimiser state away every step instead (REFERENCE section 3: a flaw not copied).
    """
    if optimizer is None:
        return
    param = driver.module._parameters.get(driver.name)
    states = [optimizer.state]
    inner = getattr(optimizer, "optimizer", None)  # Lookahead's wrapped optimiser
    if isinstance(inner, Optimizer):
        states.append(inner.state)
    params = [param] if param is not None else list(driver.module.parameters())
    plain = param is not None and driver.mode == "scale"
    for p in params:
        for state in states:
            st = state.get(p)
            if not st:
                continue
            for key, v in st.items():
                if not isinstance(v, torch.Tensor) or v.shape != p.shape:
                    continue
                if key == "slow_param":
                    if plain and factor is not None:
                        v.mul_(float(factor) ** driver.exponent)
                    elif plain and perm is not None:
                        v.copy_(_permuted(v, perm))
                    else:
                        v.copy_(p.detach())
                elif perm is not None and plain:
                    v.copy_(_permuted(v, perm))


_GATED = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)


def with_gate_bias_shift(transitions: list[Transition]) -> list[Transition]:
    r"""Add the forget (LSTM) / update (GRU) gate bias as a ``"shift"`` driver of the time
    transitions of torch's gated layers, and drop their floor (opt-in).

    $\sigma(b + \log c) \approx c\,\sigma(b)$ lets the time radius go below the gate floor,
    at the cost of a cell that forgets every step (measured on this project: forget bias -6.7
    at target 0.5, and the network then trained worse, REFERENCE section 3). The layer's
    recurrent kernel driver ``weight_hh<suffix>`` names the bias ``bias_hh<suffix>``; layers
    without a bias are left as they are.

    Returns:
        The transitions, with the shifted ones replaced by copies.
    """
    out = []
    for t in transitions:
        kernel = t.drivers[0] if t.kind == "time" and t.drivers else None
        bias_name = (None if kernel is None or not kernel.name.startswith("weight_hh")
                     else "bias_hh" + kernel.name[len("weight_hh"):])
        if kernel is None or not isinstance(kernel.module, _GATED) or not isinstance(
                getattr(kernel.module, bias_name, None), torch.Tensor):
            out.append(t)
            continue
        n = kernel.module.hidden_size
        gate = slice(n, 2 * n)  # forget gate (LSTM: i, f, g, o) / update gate (GRU: r, z, n)
        shift = Driver(kernel.module, bias_name, "shift", index=gate)
        out.append(dataclasses.replace(t, drivers=(*t.drivers, shift), floor=None,
                                       floor_why=""))
    return out
