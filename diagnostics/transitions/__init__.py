"""Transition Jacobians of supported models: what they are, where they are taken, what drives them.

A *transition* maps one state of a network to the next one (REFERENCE: arXiv 2308.12075):
between consecutive layers of a feed-forward network, and, for a stacked recurrent network,
from ``s^l_{t-1}`` to ``s^l_t`` ("time") and from ``s^{l-1}_t`` to ``s^l_t`` ("depth"; for the
first layer, from the input ``x_t``). :func:`model_transitions` builds, for a model and a batch
of inputs, the list of :class:`Transition` objects: a batched function ``fn: (B, n) -> (B, m)``
whose per-sample Jacobian is the transition derivative, the points ``(B, n)`` where it is
linearised and the tensors (:class:`Driver`) that scale it. ``diagnostics.radii`` turns them
into radii and ``optim.LSCPretrainer`` rescales the drivers.

Modules, one concept each: :mod:`.protocol` (the types), :mod:`.torch_rnn` (torch's RNN, GRU
and LSTM stepped by hand), :mod:`.cells` (the package's cells, ALIF's floor), :mod:`.stack`
(the tracer of a stack of layers), :mod:`.deep` (residual stacks of
:mod:`recurrent_params.deep`), :mod:`.ffn` (feed-forward networks), :mod:`.model` (the
dispatch), :mod:`.inputs` (input shapes and Gaussian inputs), :mod:`.precision` (16-bit
transitions through a float32 view).

This is the public protocol for models the package does not know: define
``lsc_transitions(inputs) -> list[Transition]`` (and ``lsc_input_shape``) on the model.
The library function is :func:`model_transitions`; ``lsc_transitions`` is the name of the
method users implement, and the module-level alias of that name is deprecated (it warns).
"""

from __future__ import annotations

import warnings

from diagnostics.transitions.inputs import (
    DEFAULT_SEQ_LEN,
    first_tensor,
    gaussian_inputs,
    input_shape,
)
from diagnostics.transitions.model import model_transitions
from diagnostics.transitions.precision import HALF_DTYPES, float32_map, in_float32
from diagnostics.transitions.protocol import PROTOCOL_HELP, Driver, Transition

__all__ = ["Driver", "Transition", "model_transitions", "gaussian_inputs", "input_shape",
           "first_tensor", "DEFAULT_SEQ_LEN", "PROTOCOL_HELP", "HALF_DTYPES", "float32_map",
           "in_float32"]


def lsc_transitions(*args, **kwargs):
    """Deprecated alias of :func:`model_transitions` (``lsc_transitions`` is the name of the
    method a model implements, not of the library function)."""
    warnings.warn("diagnostics.lsc_transitions is deprecated: call "
                  "diagnostics.model_transitions (lsc_transitions is the method a model "
                  "implements)", DeprecationWarning, stacklevel=2)
    return model_transitions(*args, **kwargs)
