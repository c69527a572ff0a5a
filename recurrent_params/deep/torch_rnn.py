"""Baselines: the deep models' encoder, pooling and head around an ``nn.LSTM`` / ``nn.GRU``."""

from __future__ import annotations

import torch
from torch import nn

from recurrent_params.deep._base import SequenceModel

__all__ = ["TorchRNNStack", "KINDS"]

KINDS = ("lstm", "gru")
"""Accepted ``kind`` names of :class:`TorchRNNStack`."""


class TorchRNNStack(SequenceModel):
    r"""``nn.LSTM`` / ``nn.GRU`` of ``depth`` layers with the same encoder, final norm,
    pooling, task heads, ``forward`` / ``step`` signatures and
    :class:`~recurrent_params.StackState` as :class:`~recurrent_params.RecurrentStack`: the
    baseline of equal interface.

    $$z^0_t = \mathrm{Enc}(x_t), \quad z^N_{1:T} = \mathrm{RNN}(z^0_{1:T}), \quad
    f_t = \mathrm{Norm}(z^N_t),$$ then the head (mean / last pooling, or per step).
    The RNN's hidden size is ``d_model`` (no residual connections or mixers: torch's stacked
    cells as they are); ``dropout`` is torch's dropout between the RNN's layers. The
    ``layers`` entry of the state is ``h`` ``(depth, batch, d_model)`` (GRU) or ``(h, c)``
    (LSTM).

    Args:
        kind: ``"lstm"`` or ``"gru"``.
        depth: number of stacked RNN layers ($\ge 1$).
        d_model: hidden size and encoder width.
        d_input: features of real-valued inputs; or
        vocab_size: number of token ids. Give exactly one.
        d_output: classes / outputs (``task="lm"`` with ``vocab_size``: defaults to it).
        task: ``"classify"`` or ``"lm"``.
        pooling: ``"mean"`` (default for ``"classify"``) or ``"last"``; ``None`` for ``"lm"``.
        norm: ``"layer"`` or ``"rms"`` (the final norm).
        dropout: dropout between the RNN layers.

    References:
        Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 9(8), 1997;
        Cho et al., "Learning phrase representations using RNN encoder-decoder",
        arXiv 1406.1078 (the GRU).

    Examples:
        >>> import torch
        >>> model = TorchRNNStack("gru", depth=2, d_model=8, d_input=1, d_output=10)
        >>> logits, state = model(torch.randn(4, 30, 1))
        >>> tuple(logits.shape), tuple(state.layers.shape)
        ((4, 10), (2, 4, 8))
    """

    def __init__(
        self,
        kind: str = "lstm",
        *,
        depth: int,
        d_model: int,
        d_input: int | None = None,
        vocab_size: int | None = None,
        d_output: int | None = None,
        task: str = "classify",
        pooling: str | None = None,
        norm: str = "layer",
        dropout: float = 0.0,
    ):
        super().__init__(d_model=d_model, d_input=d_input, vocab_size=vocab_size,
                         d_output=d_output, task=task, pooling=pooling, norm=norm)
        if kind not in KINDS:
            raise ValueError(f"TorchRNNStack: kind must be one of {KINDS}, got {kind!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"TorchRNNStack: expected depth a positive int, got {depth!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"TorchRNNStack: expected 0 <= dropout < 1, got {dropout!r}")
        self.kind, self.depth = kind, depth
        rnn = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = rnn(d_model, d_model, depth, batch_first=True,
                       dropout=dropout if depth > 1 else 0.0)

    def _check_layers(self, layers):
        if layers is None:
            return None
        shape = (self.depth, None, self.d_model)
        hs = layers if self.kind == "lstm" else (layers,)
        ok = isinstance(hs, (tuple, list)) and len(hs) == (2 if self.kind == "lstm" else 1) and \
            all(isinstance(h, torch.Tensor) and h.dim() == 3 and h.shape[0] == shape[0]
                and h.shape[2] == shape[2] for h in hs)
        if not ok:
            what = "(h, c)" if self.kind == "lstm" else "h"
            raise ValueError(
                f"TorchRNNStack: expected the layers' state {what}, each of shape "
                f"({self.depth}, batch, {self.d_model})"
            )
        return tuple(layers) if self.kind == "lstm" else layers

    def _body(self, z, layers):
        return self.rnn(z, self._check_layers(layers))  # (B, L, d), state

    def _body_step(self, z_t, layers):
        y, layers = self.rnn(z_t.unsqueeze(1), self._check_layers(layers))  # (B, 1, d)
        return y[:, 0], layers

    def _body_initial(self, batch_size):
        w = self.head.weight
        h = torch.zeros(self.depth, batch_size, self.d_model, dtype=w.dtype, device=w.device)
        return (h, h.clone()) if self.kind == "lstm" else h

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, depth={self.depth}, " + super().extra_repr()
