"""Diagonal linear RNN, real or complex, with optional input normalisation."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from recurrent_params.cells._base import RecurrentCell, check_positive_ints, normal, ring_init
from recurrent_params.cells._conv import diagonal_conv, diagonal_kernel
from recurrent_params.cells._ops import input_proj, real_output
from recurrent_params.input_norm import InputNorm, normalize_input
from recurrent_params.parametrizations import RealImag
from recurrent_params.scan import linear_scan

__all__ = ["DiagonalRNN"]

_NORMS = (None, "none", "iid", "l1", "correlated", "learned", "learned-direct")


class DiagonalRNN(RecurrentCell):
    r"""Diagonal linear recurrence $h_t = \lambda \odot h_{t-1} + \gamma(\lambda) \odot (B x_t)$,
    $y_t = \mathrm{Re}(C h_t) + D x_t$ (``cell.B`` reads $\gamma(\lambda) \odot B$).

    ``lam`` is a *plain* parameter (complex, or real with ``complex=False``), so the
    eigenvalue parametrization is the user's choice:
    ``parametrize.register_parametrization(cell, "lam", ExpMag())``. ``B`` and ``C`` are
    complex (stored as two real tensors through :class:`~recurrent_params.RealImag`) for a
    complex cell and plain real parameters otherwise; ``D`` is real.

    Input normalisation $\gamma(\lambda)$ is registered on ``B`` with
    :func:`~recurrent_params.normalize_input`, so ``cell.B`` reads the *effective* matrix
    $\gamma(\lambda)_i B^{raw}_{ij}$, recomputed from the current ``lam`` at every access
    (whatever parametrization ``lam`` carries, including one registered after construction),
    and ``assign_(cell, "B", value)`` sets the effective matrix:

    * ``None`` (or ``"none"``): $\gamma = 1$, nothing is registered;
    * ``"iid"``: $\sqrt{1 - |\lambda|^2}$; ``"l1"``: $1 - |\lambda|$;
    * ``"correlated"``: the exact normaliser for real $\lambda$ and inputs with
      autocorrelation ``rho``;
    * ``"learned"``: $\exp(\gamma_{log})$ with a parameter ``gamma_log`` initialised at
      $\log\sqrt{1 - |\lambda|^2}$ of the initial eigenvalues;
    * ``"learned-direct"``: a parameter ``gamma_direct`` that is $\gamma$ itself, initialised
      at $\sqrt{1 - |\lambda|^2}$ (the authors' choice for real/imaginary and polar
      eigenvalues; like ``"learned"``, defined wherever $\lambda$ goes).

    Initialisation: ring init $|\lambda|^2 \sim U[r_{min}^2, r_{max}^2]$,
    $\arg\lambda \sim U[0, \theta_{max}]$ (real cell: positive magnitudes),
    $E|B_{ij}|^2 = 1/d_{in}$, $E|C_{ij}|^2 = 1/N$, $D \sim N(0, 1/d_{in})$. The recurrence runs on
    :func:`~recurrent_params.linear_scan`. No check of $|\lambda| < 1$ is made in ``forward``.

    Sequence mode: ``mode="scan"`` (default) runs the recurrence on the scan, $O(B L N)$;
    ``mode="fft"`` computes the same outputs as the causal convolution of $x$ with the kernel
    $K_k = \mathrm{Re}(C\,\mathrm{diag}(\gamma \odot \lambda^k) B)$ by FFT (zero padding to
    $2L$), $O(B L \log L\,(d_{in} + d_{out}) + B L\, d_{in} d_{out} + L N d_{in} d_{out})$
    plus $O(B L N d_{in})$ matmuls for the last state (and an initial state's
    $\mathrm{Re}(C \lambda^{t+1} h_0)$). It wins for few input/output channels and long
    sequences, loses when $d_{in} d_{out}$ is large (see the
    [benchmarks](../benchmarks.md)). Both take gradients through ``lam``'s parametrization and
    $\gamma$; ``step`` runs the recurrence.

    NaN in, NaN out, causally in every mode: a NaN/inf at step $t$ of a sequence reaches
    that sequence's outputs from $t$ on and nothing else (``mode="fft"`` runs such sequences
    on the scan; see [non-finite input](../concepts/scan_and_cells.md#convolution-mode)).
    A complex cell runs in float32 or float64 only
    (``.half()`` and ``bfloat16`` are a ``TypeError``).

    Args:
        d_input: input features.
        d_state: number of eigenvalues $N$.
        d_output: output features.
        complex: complex (default) or real eigenvalues.
        normalization: ``None``, ``"none"``, ``"iid"``, ``"l1"``, ``"correlated"``,
            ``"learned"`` or ``"learned-direct"``.
        rho: input autocorrelation for ``normalization="correlated"``.
        r_min: smallest initial $|\lambda|$.
        r_max: largest initial $|\lambda|$.
        max_phase: largest initial $\arg\lambda$.
        mode: ``"scan"`` or ``"fft"`` for ``forward`` (settable later: ``cell.mode``).

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", arXiv 2405.21064.

    Examples:
        >>> import torch
        >>> from recurrent_params import assign_
        >>> cell = DiagonalRNN(1, 1, 1, complex=False)
        >>> for name, v in [("lam", [0.5]), ("B", [[1.0]]), ("C", [[1.0]]), ("D", [[0.0]])]:
        ...     assign_(cell, name, torch.tensor(v))
        >>> cell(torch.ones(1, 3, 1))[0][0, :, 0]  # 1, 1.5, 1.75
        tensor([1.0000, 1.5000, 1.7500], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self,
        d_input: int,
        d_state: int,
        d_output: int,
        *,
        complex: bool = True,
        normalization: str | None = None,
        rho: float = 0.0,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        mode: str = "scan",
    ):
        super().__init__()
        self.mode = mode
        check_positive_ints("DiagonalRNN", d_input=d_input, d_state=d_state, d_output=d_output)
        if not isinstance(complex, bool):
            raise TypeError(f"DiagonalRNN: expected complex a bool, got {complex!r}")
        if normalization not in _NORMS:
            raise ValueError(
                f"DiagonalRNN: normalization must be one of {_NORMS}, got {normalization!r}"
            )
        self.d_input, self.d_state, self.d_output = d_input, d_state, d_output
        self.is_complex = bool(complex)
        self.normalization, self.rho = normalization, rho
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        self.lam = nn.Parameter(ring_init(d_state, r_min, r_max, max_phase, complex))
        self.B = nn.Parameter(normal(d_state, d_input, std=d_input**-0.5, complex=complex))
        self.C = nn.Parameter(normal(d_output, d_state, std=d_state**-0.5, complex=complex))
        self.D = nn.Parameter(normal(d_output, d_input, std=d_input**-0.5))
        if complex:
            parametrize.register_parametrization(self, "B", RealImag())
            parametrize.register_parametrization(self, "C", RealImag())
        if normalization not in (None, "none"):
            normalize_input(self, "B", eig_name="lam", kind=normalization, rho=rho)

    def gamma(self) -> torch.Tensor | None:
        """The input normaliser $\\gamma(\\lambda)$ ``(N,)`` at the current ``lam``, or ``None``."""
        if not parametrize.is_parametrized(self, "B"):
            return None
        norms = [p for p in self.parametrizations.B if isinstance(p, InputNorm)]
        return norms[-1].gamma(self.lam) if norms else None

    def _effective(self):
        return self.lam, self.B  # (N,), (N, d_in) with gamma already applied

    def _sequence(self, x, state, mode):
        lam, B = self._effective()
        if mode == "fft":
            y, last = diagonal_conv(lam, B, self.C, x, state)  # (B, L, d_out), (B, N)
            return y + x @ self.D.T, last
        h = linear_scan(lam, input_proj(x, B), state)  # (B, L, N)
        y = real_output(h, self.C) + x @ self.D.T  # (B, L, d_out)
        return y, h[:, -1]

    def _kernel(self, length):
        lam, B = self._effective()
        return diagonal_kernel(lam, B, self.C, length), self.D

    def _step(self, x_t, state):
        lam, B = self._effective()
        h = lam * state + input_proj(x_t, B)  # (B, N)
        return self._readout(x_t, h), h

    def _readout(self, x_t, state):
        return real_output(state, self.C) + x_t @ self.D.T  # (B, d_out)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", normalization={self.normalization!r}, r_min={self.r_min}, r_max={self.r_max}"
            + f", mode={self.mode!r}"
        )
