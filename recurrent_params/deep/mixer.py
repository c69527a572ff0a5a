"""Channel mixers of the residual block: the LRU paper's GELU + GLU, or a two-layer MLP."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ChannelMixer", "MIXERS"]

MIXERS = ("glu", "mlp")
"""Accepted ``mixer`` names."""


class ChannelMixer(nn.Module):
    r"""Position-wise channel mixer applied to the recurrent layer's output $u_t$.

    * ``"glu"`` (the LRU paper's): $v_t = (W_1 g_t + b_1) \odot \sigma(W_2 g_t + b_2)$ with
      $g_t = \mathrm{dropout}(\mathrm{GELU}(u_t))$, $W_1, W_2 \in \mathbb{R}^{d \times d}$.
    * ``"mlp"``: $v_t = W_2\,\mathrm{dropout}(\mathrm{GELU}(W_1 u_t + b_1)) + b_2$ with
      $W_1 \in \mathbb{R}^{e d \times d}$, $W_2 \in \mathbb{R}^{d \times e d}$, $e$ =
      ``expand`` (the transformer feed-forward layer).

    Every time step is mixed on its own, so the mixer is causal and runs the same in sequence
    and step mode.

    Args:
        d_model: features in and out.
        kind: ``"glu"`` or ``"mlp"``.
        dropout: dropout probability inside the mixer.
        expand: hidden width factor $e$ of the ``"mlp"`` mixer (ignored by ``"glu"``).

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (https://arxiv.org/abs/2303.06349), Figure 1 and Appendix D.
        Dauphin et al., "Language modeling with gated convolutional networks",
        arXiv 1612.08083 (the GLU).

    Examples:
        >>> import torch
        >>> mixer = ChannelMixer(4, "glu")
        >>> with torch.no_grad():
        ...     _ = mixer.gate.weight.zero_(), mixer.gate.bias.fill_(100.0)  # sigmoid = 1
        ...     _ = mixer.value.weight.copy_(torch.eye(4)), mixer.value.bias.zero_()
        >>> u = torch.randn(2, 3, 4)
        >>> torch.allclose(mixer(u), torch.nn.functional.gelu(u))  # the gate is open
        True
    """

    def __init__(self, d_model: int, kind: str = "glu", *, dropout: float = 0.0,
                 expand: int = 4):
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"ChannelMixer: expected d_model a positive int, got {d_model!r}")
        if kind not in MIXERS:
            raise ValueError(f"ChannelMixer: kind must be one of {MIXERS}, got {kind!r}")
        if isinstance(expand, bool) or not isinstance(expand, int) or expand < 1:
            raise ValueError(f"ChannelMixer: expected expand a positive int, got {expand!r}")
        self.kind, self.d_model, self.expand = kind, d_model, expand
        self.dropout = nn.Dropout(dropout)
        if kind == "glu":
            self.value = nn.Linear(d_model, d_model)
            self.gate = nn.Linear(d_model, d_model)
        else:
            self.up = nn.Linear(d_model, expand * d_model)
            self.down = nn.Linear(expand * d_model, d_model)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Mix the channels of ``u`` ``(..., d_model)``; returns the same shape."""
        if self.kind == "glu":
            g = self.dropout(F.gelu(u))  # (..., d)
            return self.value(g) * torch.sigmoid(self.gate(g))
        return self.down(self.dropout(F.gelu(self.up(u))))  # (..., d)

    def extra_repr(self) -> str:
        extra = f", expand={self.expand}" if self.kind == "mlp" else ""
        return f"d_model={self.d_model}, kind={self.kind!r}{extra}"
