"""Deep residual stack of recurrent layers for sequence classification and language modelling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from recurrent_params.deep._base import SequenceModel
from recurrent_params.deep.block import ResidualBlock

__all__ = ["RecurrentStack"]


class RecurrentStack(SequenceModel):
    r"""Encoder, $N$ :class:`~recurrent_params.ResidualBlock` s around recurrent layers, a
    final norm, pooling and a linear head.

    $$z^0_t = \mathrm{Enc}(x_t), \qquad z^{l}_{1:T} = \mathrm{Block}_l(z^{l-1}_{1:T}),\;
    l = 1..N, \qquad f_t = \mathrm{Norm}(z^N_t),$$

    with $\mathrm{Enc}$ an ``nn.Linear(d_input, d_model)`` for real-valued inputs or an
    ``nn.Embedding(vocab_size, d_model)`` for token ids. The head is a linear map $W$:

    * ``task="classify"``: $W \bar f$ with $\bar f = \frac{1}{T}\sum_t f_t$
      (``pooling="mean"``, default) or $\bar f = f_T$ (``pooling="last"``);
    * ``task="lm"``: $W f_t$ at every step (causal next-token logits; train with the targets
      shifted by one step).

    ``step`` carries every block's state in a :class:`~recurrent_params.StackState` and
    returns what ``forward`` would return for the sequence so far (the running mean for mean
    pooling), so step-by-step generation equals the full forward.

    Build it from layers you made, or with :meth:`of` from a factory that makes one layer
    for a given ``d_model`` (any cell: ``lambda d: LRU(d, 256)``,
    ``lambda d: DiagonalRNN(d, 128, d)``, ``lambda d: S4D(d, 64)``, ``lambda d: DenseRNN(d,
    d, d)``, or a function that registers a parametrization on the new cell).

    Where this differs from the LRU paper's model (arXiv 2303.06349, Figure 1): the final
    norm after the last block (usual for pre-norm stacks) and the ``"last"`` pooling and
    ``"lm"`` task are additions; see :class:`~recurrent_params.ResidualBlock` for the block.

    Args:
        layers: the recurrent layers, one per block, each mapping ``d_model`` features to
            ``d_model`` features (at least one).
        d_model: width of the residual stream.
        d_input: features of real-valued inputs (an ``nn.Linear`` encoder); or
        vocab_size: number of token ids (an ``nn.Embedding`` encoder). Give exactly one.
        d_output: classes / outputs of the head; for ``task="lm"`` with ``vocab_size`` it
            defaults to ``vocab_size``.
        task: ``"classify"`` (one output per sequence) or ``"lm"`` (one per step).
        pooling: ``"mean"`` (default for ``"classify"``) or ``"last"``; must be ``None`` for
            ``"lm"``.
        norm: ``"layer"`` or ``"rms"``, in every block and after the last one.
        mixer: ``"glu"`` or ``"mlp"`` channel mixer of every block.
        dropout: dropout probability in every block.
        expand: hidden width factor of the ``"mlp"`` mixer.

    Raises:
        ValueError: no layers, a layer whose width is not ``d_model``, both or neither of
            ``d_input`` / ``vocab_size``, bad ``task`` / ``pooling`` / ``norm`` / ``mixer``.

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (https://arxiv.org/abs/2303.06349).

    Examples:
        >>> import torch
        >>> from recurrent_params import LRU
        >>> model = RecurrentStack.of(lambda d: LRU(d, 16), depth=2, d_model=8, d_input=1,
        ...                           d_output=10)
        >>> x = torch.randn(4, 30, 1)  # 4 sequences of 30 pixels
        >>> logits, state = model(x)
        >>> tuple(logits.shape), len(state.layers), state.steps
        ((4, 10), 2, 30)
        >>> lm = RecurrentStack.of(lambda d: LRU(d, 16), depth=2, d_model=8, vocab_size=50,
        ...                        task="lm")
        >>> tokens = torch.randint(0, 50, (4, 12))
        >>> logits, _ = lm(tokens)
        >>> state, steps = None, []
        >>> for t in range(12):  # generation, one token at a time
        ...     out, state = lm.step(tokens[:, t], state)
        ...     steps.append(out)
        >>> torch.allclose(torch.stack(steps, 1), logits, atol=1e-5)
        True
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        *,
        d_model: int,
        d_input: int | None = None,
        vocab_size: int | None = None,
        d_output: int | None = None,
        task: str = "classify",
        pooling: str | None = None,
        norm: str = "layer",
        mixer: str = "glu",
        dropout: float = 0.0,
        expand: int = 4,
    ):
        super().__init__(d_model=d_model, d_input=d_input, vocab_size=vocab_size,
                         d_output=d_output, task=task, pooling=pooling, norm=norm)
        if isinstance(layers, nn.Module) and not isinstance(layers, nn.ModuleList):
            raise TypeError(
                "RecurrentStack: expected layers a sequence of recurrent layers, got one "
                f"{type(layers).__name__} (wrap it in a list, or use RecurrentStack.of)"
            )
        layers = list(layers)
        if not layers:
            raise ValueError("RecurrentStack: expected at least one layer (depth >= 1), got 0")
        self.blocks = nn.ModuleList(
            ResidualBlock(layer, d_model, norm=norm, mixer=mixer, dropout=dropout, expand=expand)
            for layer in layers
        )

    @classmethod
    def of(
        cls,
        make_layer: Callable[[int], nn.Module],
        *,
        depth: int,
        d_model: int,
        **kwargs: Any,
    ) -> RecurrentStack:
        """Build a stack of ``depth`` blocks, each around a fresh ``make_layer(d_model)``.

        Args:
            make_layer: called once per block with ``d_model``; returns the recurrent layer
                (e.g. ``lambda d: LRU(d, 256)``).
            depth: number of blocks $N \\ge 1$.
            d_model: width of the residual stream.
            **kwargs: the other arguments of :class:`RecurrentStack`.

        Raises:
            ValueError: ``depth`` is not a positive int.
            TypeError: ``make_layer`` is not callable.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"RecurrentStack.of: expected depth a positive int, got {depth!r}")
        if not callable(make_layer):
            raise TypeError(
                f"RecurrentStack.of: expected make_layer callable, got {type(make_layer).__name__}"
            )
        return cls([make_layer(d_model) for _ in range(depth)], d_model=d_model, **kwargs)

    @property
    def depth(self) -> int:
        """Number of residual blocks."""
        return len(self.blocks)

    def _layer_states(self, layers: Any) -> list:
        if layers is None:
            return [None] * self.depth
        if not isinstance(layers, (tuple, list)) or len(layers) != self.depth:
            raise ValueError(
                f"RecurrentStack: expected a state with one entry per block ({self.depth}), "
                f"got {type(layers).__name__}"
            )
        return list(layers)

    def _body(self, z, layers):
        states = self._layer_states(layers)
        for i, block in enumerate(self.blocks):
            z, states[i] = block(z, states[i])  # (B, L, d)
        return z, tuple(states)

    def _body_step(self, z_t, layers):
        states = self._layer_states(layers)
        for i, block in enumerate(self.blocks):
            z_t, states[i] = block.step(z_t, states[i])  # (B, d)
        return z_t, tuple(states)

    def _body_initial(self, batch_size):
        return tuple(block.initial_state(batch_size) for block in self.blocks)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", depth={self.depth}"
