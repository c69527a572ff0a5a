"""The state a deep model carries from one call to the next."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = ["StackState"]


class StackState(NamedTuple):
    """State of a :class:`~recurrent_params.RecurrentStack` or
    :class:`~recurrent_params.TorchRNNStack` after some steps.

    Pass it back to ``forward`` or ``step`` to continue the same sequences.

    Attributes:
        layers: the recurrent layers' states: a tuple with one entry per residual block
            (each the block's layer state, e.g. ``(batch, d_state)``) for a
            ``RecurrentStack``; ``h`` ``(depth, batch, d_model)`` for a GRU stack and
            ``(h, c)`` for an LSTM stack.
        total: running sum over the steps seen of the normalised features ``(batch, d_model)``
            when the model mean-pools; ``None`` otherwise.
        steps: number of steps seen.
    """

    layers: Any
    total: torch.Tensor | None
    steps: int
