"""Frozen drivers: the tensors the pre-trainer must leave alone.

A tensor that does not require grad (``p.requires_grad_(False)``, a buffer, a plain tensor
attribute) is frozen: the pre-trainer never rescales, shuffles or gradient-steps it. A driver
whose effective value is parametrized (``torch.nn.utils.parametrize``) is written through its
parametrization's ``right_inverse`` into every stored original, so it counts as frozen when
any of those originals is. This is a rule of this project (the reference, arXiv 2308.12075,
moves every kernel of the model).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from diagnostics.transitions import Driver, Transition

__all__ = ["driver_tensors", "is_frozen", "driver_name", "frozen_drivers"]


def driver_tensors(driver: Driver) -> list[torch.Tensor]:
    """The stored tensors that rescaling or shuffling ``driver`` writes: the parametrization's
    originals for a parametrized tensor, else the tensor itself."""
    module, name = driver.module, driver.name
    if parametrize.is_parametrized(module, name):
        plist = module.parametrizations[name]
        stored = [t for _, t in plist.named_parameters(recurse=False)]
        stored += [t for _, t in plist.named_buffers(recurse=False)]
        return stored
    return [getattr(module, name)]


def is_frozen(driver: Driver) -> bool:
    """Whether any tensor the driver writes does not require grad (then it is left alone).

    Examples:
        >>> from torch import nn
        >>> lin = nn.Linear(2, 2)
        >>> _ = lin.weight.requires_grad_(False)
        >>> is_frozen(Driver(lin, "weight")), is_frozen(Driver(lin, "bias", "shift"))
        (True, False)
    """
    return any(not t.requires_grad for t in driver_tensors(driver))


def driver_name(model: nn.Module, driver: Driver) -> str:
    """The driver's qualified name in ``model`` (``"0.weight"``, ``"weight_hh_l0"``,
    ``"1.lam"``), or ``"<Module>.name"`` when its module is not one of the model's."""
    for prefix, module in model.named_modules(remove_duplicate=False):
        if module is driver.module:
            return f"{prefix}.{driver.name}" if prefix else driver.name
    return f"{type(driver.module).__name__}.{driver.name}"


def frozen_drivers(model: nn.Module, transitions: list[Transition]
                   ) -> tuple[list[str], set[str]]:
    """The frozen drivers of ``transitions`` by qualified name (sorted, each once), and the
    names of the transitions that have drivers, all frozen (*not driven*; a transition
    without drivers is not counted)."""
    names: set[str] = set()
    undriven: set[str] = set()
    for t in transitions:
        frozen = [d for d in t.drivers if is_frozen(d)]
        names.update(driver_name(model, d) for d in frozen)
        if t.drivers and len(frozen) == len(t.drivers):
            undriven.add(t.name)
    return sorted(names), undriven
