"""Which transitions a model has: the dispatch from a model to its tracer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from diagnostics.transitions.cells import CellLayer, cell_layer
from diagnostics.transitions.deep import deep_transitions
from diagnostics.transitions.ffn import ffn_transitions
from diagnostics.transitions.inputs import as_module_list, is_recurrent_layer
from diagnostics.transitions.protocol import PROTOCOL_HELP, Transition
from diagnostics.transitions.stack import stack_transitions
from diagnostics.transitions.torch_rnn import TorchLayer, cell_mode, rnn_transitions
from recurrent_params import RecurrentCell, RecurrentStack, TorchRNNStack

__all__ = ["model_transitions"]


def _split_stack(modules: Sequence[nn.Module]):
    """``(layers, mixers, trailing)`` of a stack: per-step modules go to the next layer."""
    layers: list[TorchLayer | CellLayer] = []
    mixers, current = [], []
    for m in modules:
        if isinstance(m, nn.RNNCellBase):
            layers.append(TorchLayer(m, cell_mode(m)))
        elif isinstance(m, RecurrentCell):
            layers.append(cell_layer(m))
        elif isinstance(m, nn.RNNBase):
            raise TypeError("a stack may hold cells (nn.RNNCell/GRUCell/LSTMCell or package "
                            f"cells) and per-step modules, not {type(m).__name__}; "
                            + PROTOCOL_HELP)
        else:
            current.append(m)
            continue
        mixers.append(tuple(current))
        current = []
    return layers, mixers, tuple(current)


def model_transitions(model: nn.Module, inputs: torch.Tensor,
                      generator: torch.Generator | None = None) -> list[Transition]:
    r"""The transitions of ``model`` linearised at the states reached on ``inputs``.

    Drivers are kernels only (REFERENCE, arXiv 2308.12075 code): recurrent kernels drive
    the time transitions, input kernels the depth ones (the encoder for layer 0), the
    decoder's linear layers the decoder (whose own target is 1). A model that defines
    ``lsc_transitions(inputs)`` (the method users implement) is asked for its own list.

    Args:
        model: an ``nn.Sequential`` of ``nn.Linear`` layers and activations;
            ``nn.RNN``/``GRU``/``LSTM``; a stack (``nn.Sequential``/``nn.ModuleList``) of torch
            RNN cells or :class:`recurrent_params.RecurrentCell` cells with per-step modules
            in between; a :class:`~recurrent_params.RecurrentStack` of residual blocks around
            the package's cells or a :class:`~recurrent_params.TorchRNNStack` (see
            :mod:`diagnostics.transitions.deep`); or a model that defines
            ``lsc_transitions(inputs)``.
        inputs: a batch in the model's own layout (``batch_first=False`` RNNs take
            ``(T, B, d)``; everything else ``(B, ..., d)``).
        generator: draws the time step (one for the batch for ``nn.RNN/GRU/LSTM``, one per
            sample for cell stacks).

    Returns:
        The transitions, named ``"linear{i}"`` (FFN) or ``"layer{l}.time"``,
        ``"layer{l}.depth"`` and ``"decoder"`` (recurrent models).

    Raises:
        TypeError: for an unsupported model, naming what to provide.
        ValueError: for inputs with NaN or inf, or of the wrong shape.

    References:
        Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
        arXiv 2308.12075.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
        >>> [t.name for t in model_transitions(lstm, torch.randn(2, 5, 3))]
        ['layer0.time', 'layer0.depth', 'layer1.time', 'layer1.depth']
    """
    if hasattr(model, "lsc_transitions"):
        out = list(model.lsc_transitions(inputs))
        if not out or not all(isinstance(t, Transition) for t in out):
            raise TypeError(f"{type(model).__name__}.lsc_transitions must return a non-empty "
                            "list of diagnostics.Transition")
        return out
    if isinstance(inputs, torch.Tensor) and not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or inf")
    if isinstance(model, RecurrentStack | TorchRNNStack):
        return deep_transitions(model, inputs, generator)
    if isinstance(model, nn.RNNBase):
        return rnn_transitions(model, inputs, generator)
    if is_recurrent_layer(model):
        return stack_transitions(*_split_stack([model]), inputs, generator)
    mods = as_module_list(model)
    if mods:
        if any(is_recurrent_layer(m) for m in mods):
            return stack_transitions(*_split_stack(mods), inputs, generator)
        if any(isinstance(m, nn.Linear) for m in mods) and not any(
                isinstance(m, nn.RNNBase) for m in mods):
            return ffn_transitions(mods, inputs)
    raise TypeError(f"unsupported model {type(model).__name__}: " + PROTOCOL_HELP)
