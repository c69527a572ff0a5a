"""Pre-norm residual block around any recurrent layer of the package (the LRU paper's block)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recurrent_params.complex_safe import ComplexSafeModule
from recurrent_params.deep.mixer import MIXERS, ChannelMixer

__all__ = ["ResidualBlock", "NORMS", "make_norm"]

NORMS = ("layer", "rms")
"""Accepted ``norm`` names: LayerNorm and RMSNorm."""


def make_norm(kind: str, d_model: int) -> nn.Module:
    r"""The per-step normalisation of the deep models.

    ``"layer"``: ``nn.LayerNorm(d_model)``,
    $\mathrm{LN}(x) = \frac{x - \mu(x)}{\sqrt{\sigma^2(x) + \epsilon}} \odot w + b$;
    ``"rms"``: ``nn.RMSNorm(d_model)``,
    $\mathrm{RMS}(x) = \frac{x}{\sqrt{\frac{1}{d}\sum_i x_i^2 + \epsilon}} \odot w$
    (torch's own, available since torch 2.4). Both act on the last dimension only, so they
    are causal and the same in sequence and step mode.

    Args:
        kind: ``"layer"`` or ``"rms"``.
        d_model: number of features.

    Raises:
        ValueError: ``kind`` is not one of :data:`NORMS`.

    References:
        Ba et al., "Layer normalization", arXiv 1607.06450; Zhang & Sennrich, "Root mean
        square layer normalization", arXiv 1910.07467.

    Examples:
        >>> import torch
        >>> norm = make_norm("rms", 2)
        >>> norm(torch.tensor([[3.0, 4.0]])) * (12.5 ** 0.5)  # rms of (3, 4) is sqrt(12.5)
        tensor([[3.0000, 4.0000]], grad_fn=<MulBackward0>)
    """
    if kind == "layer":
        return nn.LayerNorm(d_model)
    if kind == "rms":
        return nn.RMSNorm(d_model)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class ResidualBlock(ComplexSafeModule):
    r"""Pre-norm residual block: normalisation, a recurrent layer, a channel mixer, dropout and
    a skip connection.

    For inputs $x_{1:T} \in \mathbb{R}^{T \times d}$ and the layer's state $h$:

    $$u_{1:T}, h_T = \mathrm{layer}(\mathrm{Norm}(x_{1:T}), h_0), \qquad
    y_t = x_t + \mathrm{dropout}(\mathrm{Mixer}(u_t)),$$

    with $\mathrm{Norm}$ a LayerNorm or RMSNorm over the $d$ features of each step and the
    mixer of :class:`~recurrent_params.deep.ChannelMixer` (``"glu"``: GELU, dropout, then
    $W_1 g \odot \sigma(W_2 g)$; ``"mlp"``: $W_2\,\mathrm{GELU}(W_1 u)$). Everything but the
    layer acts on each step alone, so the block is causal when the layer is, and ``step``
    equals ``forward`` one step at a time.

    The layer is any module with the cells' conventions: ``forward(x, state=None) -> (y, state)``
    on ``(batch, length, d_model)``, ``step(x_t, state) -> (y_t, state)`` and, optionally,
    ``initial_state(batch)``: :class:`~recurrent_params.LRU`, :class:`~recurrent_params.S4D`,
    :class:`~recurrent_params.DiagonalRNN` (with any parametrization of ``lam`` and any input
    normalisation) and :class:`~recurrent_params.DenseRNN`, built with ``d_input == d_output
    == d_model``. Their outputs are real ($\mathrm{Re}(C h_t) + D x_t$) even when the state
    is complex, so the block works on real features; a layer that returns a complex output
    raises a ``TypeError``.

    Where this differs from the LRU paper's block (Orvieto et al. 2023, Figure 1): only
    LayerNorm or RMSNorm, no BatchNorm (batch statistics mix samples and time steps, which
    breaks causality and step mode); the layer is any recurrent layer, not only the LRU; the
    ``"mlp"`` mixer is an addition; dropout acts after GELU and after the mixer (the paper's
    code drops after GELU and after the GLU as well).

    Args:
        layer: the recurrent layer, mapping ``d_model`` features to ``d_model`` features.
        d_model: features of the residual stream.
        norm: ``"layer"`` (``nn.LayerNorm``) or ``"rms"`` (``nn.RMSNorm``).
        mixer: ``"glu"`` or ``"mlp"``.
        dropout: dropout probability (inside the mixer and on its output).
        expand: hidden width factor of the ``"mlp"`` mixer.

    Raises:
        TypeError: ``layer`` is not a module with ``forward`` and ``step``.
        ValueError: the layer's ``d_input`` / ``d_output`` is not ``d_model``, or a bad
            ``norm`` / ``mixer`` name.

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (https://arxiv.org/abs/2303.06349).

    Examples:
        >>> import torch
        >>> from recurrent_params import LRU
        >>> block = ResidualBlock(LRU(8, 16), d_model=8)
        >>> x = torch.randn(2, 5, 8)
        >>> y, h = block(x)
        >>> tuple(y.shape), tuple(h.shape)
        ((2, 5, 8), (2, 16))
        >>> with torch.no_grad():  # a zero mixer leaves the skip connection alone
        ...     _ = block.mixer.value.weight.zero_(), block.mixer.value.bias.zero_()
        >>> torch.equal(block(x)[0], x)
        True
    """

    def __init__(
        self,
        layer: nn.Module,
        d_model: int,
        *,
        norm: str = "layer",
        mixer: str = "glu",
        dropout: float = 0.0,
        expand: int = 4,
    ):
        super().__init__()
        if not isinstance(layer, nn.Module) or not callable(getattr(layer, "step", None)):
            raise TypeError(
                "ResidualBlock: expected layer a module with forward(x, state) and "
                f"step(x_t, state), got {type(layer).__name__}"
            )
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"ResidualBlock: expected d_model a positive int, got {d_model!r}")
        for attr in ("d_input", "d_output"):
            got = getattr(layer, attr, d_model)
            if got != d_model:
                raise ValueError(
                    f"ResidualBlock: expected the layer's {attr} == d_model = {d_model}, got "
                    f"{got} ({type(layer).__name__})"
                )
        if norm not in NORMS:
            raise ValueError(f"ResidualBlock: norm must be one of {NORMS}, got {norm!r}")
        if mixer not in MIXERS:
            raise ValueError(f"ResidualBlock: mixer must be one of {MIXERS}, got {mixer!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ResidualBlock: expected 0 <= dropout < 1, got {dropout!r}")
        self.d_model = d_model
        self.norm = make_norm(norm, d_model)
        self.layer = layer
        self.mixer = ChannelMixer(d_model, mixer, dropout=dropout, expand=expand)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int) -> Any:
        """The layer's ``initial_state(batch_size)``, or ``None`` if it has none."""
        init = getattr(self.layer, "initial_state", None)
        return init(batch_size) if callable(init) else None

    def _check(self, x: torch.Tensor, sequence: bool) -> None:
        ndim, shape = (3, "(batch, length, ") if sequence else (2, "(batch, ")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"ResidualBlock: expected a tensor, got {type(x).__name__}")
        if x.dim() != ndim or x.shape[-1] != self.d_model:
            raise ValueError(
                f"ResidualBlock: expected input of shape {shape}{self.d_model}), got "
                f"{tuple(x.shape)}"
            )

    def _residual(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if u.is_complex():
            raise TypeError(
                f"ResidualBlock: the layer {type(self.layer).__name__} returned a complex "
                "output; the block works on real features (take the real part in the layer)"
            )
        return x + self.dropout(self.mixer(u))

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Run a whole sequence.

        Args:
            x: ``(batch, length, d_model)`` real inputs.
            state: the layer's state before the first step (``None``: its default).

        Returns:
            ``(y, state)``: outputs ``(batch, length, d_model)`` and the layer's last state.
        """
        self._check(x, sequence=True)
        u, state = self.layer(self.norm(x), state)  # (B, L, d)
        return self._residual(x, u), state

    def step(self, x_t: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Advance one step: ``x_t`` ``(batch, d_model)`` -> ``(y_t, state)``."""
        self._check(x_t, sequence=False)
        u, state = self.layer.step(self.norm(x_t), state)  # (B, d)
        return self._residual(x_t, u), state

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"
