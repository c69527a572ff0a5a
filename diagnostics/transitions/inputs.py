"""The inputs a model's transitions are measured on when the user gives none: the model's
per-sample input shape and standard Gaussian batches of it.

These live in ``diagnostics`` (not with the pre-trainer's batches in :mod:`optim.lsc`) because
:func:`diagnostics.transition_radii` draws them too, and ``diagnostics`` may not import
``optim`` (DESIGN: dependency direction).
"""

from __future__ import annotations

import torch
from torch import nn

from diagnostics.transitions.protocol import PROTOCOL_HELP
from recurrent_params import RecurrentCell, RecurrentStack, TorchRNNStack

__all__ = ["DEFAULT_SEQ_LEN", "input_shape", "gaussian_inputs", "first_tensor", "as_module_list",
           "is_recurrent_layer"]

DEFAULT_SEQ_LEN = 20
"""Sequence length of the Gaussian inputs drawn for a recurrent model when none is given."""


def is_recurrent_layer(module: nn.Module) -> bool:
    """A torch RNN cell or one of the package's cells (a layer of a stack)."""
    return isinstance(module, nn.RNNCellBase | RecurrentCell)


def as_module_list(model: nn.Module) -> list[nn.Module] | None:
    """The children of an ``nn.Sequential`` / ``nn.ModuleList``, else ``None``."""
    if isinstance(model, nn.Sequential | nn.ModuleList):
        return list(model)
    return None


def input_shape(model: nn.Module, seq_len: int = DEFAULT_SEQ_LEN) -> tuple[int, ...]:
    """Per-sample input shape of a supported model (time first for a recurrent model)."""
    if hasattr(model, "lsc_input_shape"):
        return tuple(model.lsc_input_shape)
    if isinstance(model, nn.RNNBase | nn.RNNCellBase):
        return (seq_len, model.input_size)
    if isinstance(model, RecurrentCell):
        return (seq_len, int(model.d_input))
    if isinstance(model, RecurrentStack | TorchRNNStack):
        if model.d_input is None:
            raise TypeError(f"{type(model).__name__} reads token ids (vocab_size="
                            f"{model.vocab_size}): Gaussian inputs do not apply; pass a batch "
                            "of token ids (batch, length) as inputs")
        return (seq_len, int(model.d_input))
    mods = as_module_list(model)
    if mods:
        recurrent = any(is_recurrent_layer(m) for m in mods)
        for m in mods:
            if isinstance(m, nn.Linear):
                d = m.in_features
            elif isinstance(m, nn.RNNCellBase):
                d = m.input_size
            elif isinstance(m, RecurrentCell):
                d = int(m.d_input)
            else:
                continue
            return (seq_len, d) if recurrent else (d,)
    raise TypeError(f"cannot infer the input shape of {type(model).__name__}: pass inputs, or "
                    "give the model an `lsc_input_shape` attribute; " + PROTOCOL_HELP)


def gaussian_inputs(model: nn.Module, batch_size: int, seq_len: int = DEFAULT_SEQ_LEN,
                    generator: torch.Generator | None = None,
                    like: torch.Tensor | None = None,
                    shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Standard Gaussian inputs of the model's input shape, in the model's layout.

    ``shape`` overrides the inferred per-sample shape (time first for recurrent models).
    Drawn on the CPU with ``generator`` (reproducible), then moved to ``like``'s device/dtype.
    """
    shape = tuple(shape) if shape is not None else input_shape(model, seq_len)
    x = torch.randn((batch_size, *shape), generator=generator)
    if like is not None:
        x = x.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
    if isinstance(model, nn.RNNBase) and not model.batch_first:
        x = x.transpose(0, 1)  # (T, B, d)
    return x


def first_tensor(model: nn.Module) -> torch.Tensor | None:
    """A real floating tensor of the model (for its device and dtype)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p
        if p.is_complex():
            return torch.view_as_real(p)
    return None
