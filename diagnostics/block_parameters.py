r"""The recurrent parameters of one residual block of a deep stack, by name.

In a :class:`~recurrent_params.RecurrentStack` the recurrent parameters of block $i$ are those
that set its cell's state transition and input normalisation: the eigenvalue tensor ``lam``
or the originals of its parametrization (``nu`` / ``theta`` of
:class:`~recurrent_params.ExpMag`, stored as ``parametrizations.lam.original0/1``), S4D's
``log_dt`` and eigenvalue parameters, a dense transition ``A``, and the learned $\gamma$
(``gamma_log`` / ``gamma_direct`` of an :class:`~recurrent_params.InputNorm` registered on
``B``); not ``B``, ``C``, ``D``, the norms or the mixer. The names are the model's own
(``model.named_parameters()``), so they can be handed to
:func:`~diagnostics.hessian_diagonality` / :class:`~diagnostics.HessianOperator` as
``param_names``.
"""

from __future__ import annotations

from torch import nn

from diagnostics.parameter_groups import recurrent_parameter_groups
from recurrent_params import RecurrentCell, RecurrentStack

__all__ = ["block_recurrent_parameters"]


def block_recurrent_parameters(model: RecurrentStack, block: int) -> dict[str, nn.Parameter]:
    r"""The recurrent parameters of block ``block`` of ``model``: ``{name: parameter}``.

    The block's share of the ``"recurrent"`` group of
    :func:`~diagnostics.recurrent_parameter_groups` (one rule for both): inside the block's
    cell every parameter except ``B``, ``C`` and ``D`` (and their parametrizations'
    originals), plus the parameter of a learned input normaliser registered on ``B``: for the
    LRU, $\nu$, $\theta$ (``parametrizations.lam.original0``, ``original1``) and $\gamma$
    (``parametrizations.B.1.gamma_log``). Names are prefixed as in ``model.named_parameters()``.

    Args:
        model: a :class:`~recurrent_params.RecurrentStack`.
        block: the block's index, ``0 <= block < model.depth`` (negative counts from the top).

    Returns:
        ``{name: parameter}`` in ``named_parameters()`` order (frozen ones included).

    Raises:
        TypeError: ``model`` is not a ``RecurrentStack``, or the block's layer is not one of
            the package's cells.
        IndexError: ``block`` is out of range.

    Examples:
        >>> from recurrent_params import LRU, RecurrentStack
        >>> model = RecurrentStack.of(lambda d: LRU(d, 8), depth=2, d_model=4, d_input=1,
        ...                           d_output=2)
        >>> for name in block_recurrent_parameters(model, 1):
        ...     print(name)
        blocks.1.layer.parametrizations.lam.original0
        blocks.1.layer.parametrizations.lam.original1
        blocks.1.layer.parametrizations.B.1.gamma_log
    """
    if not isinstance(model, RecurrentStack):
        raise TypeError(f"model: expected a RecurrentStack, got {type(model).__name__}")
    if isinstance(block, bool) or not isinstance(block, int):
        raise TypeError(f"block: expected an int, got {type(block).__name__}")
    if not -model.depth <= block < model.depth:
        raise IndexError(f"block: expected an index in [0, {model.depth}), got {block}")
    block %= model.depth
    cell = model.blocks[block].layer
    if not isinstance(cell, RecurrentCell):
        raise TypeError(f"block {block} holds a {type(cell).__name__}, not one of the package's "
                        "cells")
    prefix = f"blocks.{block}."
    groups = recurrent_parameter_groups(model)
    return {name: p for name, p in model.named_parameters()
            if name.startswith(prefix) and groups[name] == "recurrent"}
