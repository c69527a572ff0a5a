"""Dense linear RNN: the full-matrix baseline."""

from __future__ import annotations

import math

import torch
from torch import nn

from recurrent_params.cells._base import RecurrentCell, check_number, check_positive_ints, normal
from recurrent_params.cells._conv import dense_conv, dense_kernel

__all__ = ["DenseRNN"]


class DenseRNN(RecurrentCell):
    r"""Linear RNN with a full recurrent matrix: $h_t = A h_{t-1} + B x_t$, $y_t = C h_t + D x_t$.

    The baseline of the curse-of-memory paper: its eigenvalues are those of $A$, so no
    per-eigenvalue parametrization or normalisation applies, which is what makes it hard to
    train when memory is long.

    Initialisation: $A_{ij} \sim N(0, r^2/N)$ (spectral radius close to ``radius`` by the
    circular law), $B \sim N(0, 1/d_{in})$, $C \sim N(0, 1/N)$, $D \sim N(0, 1/d_{in})$.

    Sequence mode: ``mode="scan"`` loops over time with autograd (a dense recurrence has no
    diagonal scan; it iterates over ``unbind`` so backward stays O(L)), $O(B L N^2)$ in $L$
    Python steps. ``mode="fft"`` convolves $x$ with the kernel $K_k = C A^k B$ by FFT (zero
    padding to $2L$); the powers $A^k B$ come by doubling ($\lceil\log_2 L\rceil$ batched
    matmuls, no loop over time), $O(L N^2 d_{in} + N^3 \log L)$ for the kernel, plus
    $O(B L \log L\,(d_{in} + d_{out}) + B L\, d_{in} d_{out})$ for the convolution and
    $O(B L N d_{in})$ for the last state; an initial state adds $C A^{t+1} h_0$ through
    $C A^k$ by doubling. Both agree to float precision; ``step`` runs the recurrence.

    NaN in, NaN out, causally in every mode: a NaN/inf at step $t$ of a sequence reaches
    that sequence's outputs from $t$ on and nothing else (``mode="fft"`` runs such sequences
    on the scan; see [non-finite input](../concepts/scan_and_cells.md#convolution-mode)).

    Args:
        d_input: input features.
        d_state: hidden size $N$.
        d_output: output features.
        radius: scale of the initial $A$ (default 0.9), a finite number >= 0.
        mode: ``"scan"`` or ``"fft"`` for ``forward`` (settable later: ``cell.mode``).

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", arXiv 2405.21064.

    Examples:
        >>> import torch
        >>> from recurrent_params import assign_
        >>> cell = DenseRNN(1, 1, 1)
        >>> assign_(cell, "A", torch.tensor([[0.5]]))
        >>> assign_(cell, "B", torch.tensor([[1.0]]))
        >>> assign_(cell, "C", torch.tensor([[1.0]]))
        >>> assign_(cell, "D", torch.tensor([[0.0]]))
        >>> y, h = cell(torch.ones(1, 3, 1))
        >>> y[0, :, 0]  # 1, 1 + 0.5, 1 + 0.5 + 0.25
        tensor([1.0000, 1.5000, 1.7500], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self, d_input: int, d_state: int, d_output: int, *, radius: float = 0.9, mode: str = "scan"
    ):
        super().__init__()
        self.mode = mode
        check_positive_ints("DenseRNN", d_input=d_input, d_state=d_state, d_output=d_output)
        radius = check_number("DenseRNN", "radius", radius, low=0.0)
        self.d_input, self.d_state, self.d_output = d_input, d_state, d_output
        self.is_complex = False
        self.radius = radius
        self.A = nn.Parameter(normal(d_state, d_state, std=radius / math.sqrt(d_state)))
        self.B = nn.Parameter(normal(d_state, d_input, std=1 / math.sqrt(d_input)))
        self.C = nn.Parameter(normal(d_output, d_state, std=1 / math.sqrt(d_state)))
        self.D = nn.Parameter(normal(d_output, d_input, std=1 / math.sqrt(d_input)))

    def _sequence(self, x, state, mode):
        A, C = self.A, self.C
        if mode == "fft":
            y, last = dense_conv(A, self.B, C, x, state)  # (B, L, d_out), (B, N)
            return y + x @ self.D.T, last
        bx = x @ self.B.T  # (B, L, N)
        h = torch.zeros_like(bx[:, 0]) if state is None else state  # (B, N)
        hs = []
        for bx_t in bx.unbind(1):
            h = torch.addmm(bx_t, h, A.T)  # (B, N)
            hs.append(h)
        H = torch.stack(hs, 1)  # (B, L, N)
        y = H @ C.T + x @ self.D.T  # (B, L, d_out)
        return y, h

    def _kernel(self, length):
        return dense_kernel(self.A, self.B, self.C, length), self.D

    def _step(self, x_t, state):
        h = state @ self.A.T + x_t @ self.B.T  # (B, N)
        return self._readout(x_t, h), h

    def _readout(self, x_t, state):
        return state @ self.C.T + x_t @ self.D.T  # (B, d_out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", radius={self.radius}, mode={self.mode!r}"
