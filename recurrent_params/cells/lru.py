"""Linear Recurrent Unit (Orvieto et al. 2023)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from recurrent_params.cells._base import RecurrentCell, check_positive_ints, normal, ring_init
from recurrent_params.cells._conv import diagonal_conv, diagonal_kernel
from recurrent_params.cells._ops import input_proj, real_output
from recurrent_params.input_norm import InputNorm, normalize_input
from recurrent_params.parametrizations import ExpMag, RealImag
from recurrent_params.scan import linear_scan

__all__ = ["LRU"]

_NORMS = (None, "none", "iid", "l1", "learned")


class LRU(RecurrentCell):
    r"""Linear Recurrent Unit: $h_t = \lambda \odot h_{t-1} + \gamma \odot (B x_t)$,
    $y_t = \mathrm{Re}(C h_t) + D \odot x_t$.

    As in the paper, by default ``lam`` carries the exponential parametrization
    ``ExpMag(phase="exp")`` ($\lambda = \exp(-\exp(\nu) + i \exp(\theta_{log}))$) and ``B``
    carries a learned normalisation ``InputNorm("learned")`` ($\gamma = \exp(\gamma_{log})$,
    initialised at $\sqrt{1 - |\lambda|^2}$), both registered through ``parametrize``:
    ``cell.lam`` reads the eigenvalues, ``cell.B`` the effective (normalised) input matrix,
    and ``parametrize.remove_parametrizations(cell, "lam")`` gives back a plain ``lam``.
    Pass ``parametrization=None`` to build it with a plain ``lam`` (then register any map
    yourself), or ``normalization=None`` to drop $\gamma$.

    Initialisation (paper defaults): $|\lambda|^2 \sim U[r_{min}^2, r_{max}^2]$,
    $\arg\lambda \sim U[0, \theta_{max}]$, $B_{ij} \sim \mathcal{CN}(0, 1/d_{model})$
    (variance $1/(2 d_{model})$ per part), $C_{ij}$ with variance $1/N$ per part,
    $D \sim N(0, 1)$. The original also wraps the recurrence in an MLP/GLU block with
    normalisation and residual; this class is the recurrent layer alone.

    Sequence mode: ``mode="scan"`` (default) runs the recurrence on the scan, $O(B L N)$;
    ``mode="fft"`` convolves $x$ with the kernel
    $K_k = \mathrm{Re}(C\,\mathrm{diag}(\gamma \odot \lambda^k) B)$ by FFT (zero padding to
    $2L$), $O(B L \log L\, d + B L d^2 + L N d^2)$ with $d$ = ``d_model``: much faster for
    one or a few channels and long sequences (the curse-of-memory teacher-student task,
    ``d_model=1``), slower when ``d_model`` is large (see the
    [benchmarks](../benchmarks.md)). Both agree to float precision, with gradients through
    ``ExpMag`` and the learned $\gamma$; ``step`` runs the recurrence.

    NaN in, NaN out, causally in every mode: a NaN/inf at step $t$ of a sequence reaches
    that sequence's outputs from $t$ on and nothing else (``mode="fft"`` runs such sequences
    on the scan; see [non-finite input](../concepts/scan_and_cells.md#convolution-mode)).
    Runs in float32 or float64 only (``.half()`` and
    ``bfloat16`` are a ``TypeError``: the state is complex).

    Args:
        d_model: input and output features.
        d_state: number of complex eigenvalues $N$.
        r_min: smallest initial $|\lambda|$.
        r_max: largest initial $|\lambda|$.
        max_phase: largest initial $\arg\lambda$.
        parametrization: a parametrization module for ``lam``, ``"exp"`` (default:
            ``ExpMag(phase="exp")``) or ``None`` (plain complex ``lam``).
        normalization: ``"learned"`` (default), ``"iid"``, ``"l1"``, ``"none"`` or ``None``.
        mode: ``"scan"`` or ``"fft"`` for ``forward`` (settable later: ``cell.mode``).

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (https://arxiv.org/abs/2303.06349).

    Examples:
        >>> import torch
        >>> cell = LRU(d_model=2, d_state=8, r_min=0.9, r_max=0.99)
        >>> bool(((cell.lam.abs() >= 0.9) & (cell.lam.abs() <= 0.99)).all())
        True
        >>> gamma = cell.parametrizations.B[1].gamma(cell.lam)  # learned, at sqrt(1 - |lam|^2)
        >>> torch.allclose(gamma, (1 - cell.lam.abs() ** 2).sqrt())
        True
        >>> y, h = cell(torch.randn(3, 5, 2))
        >>> tuple(y.shape), tuple(h.shape), h.dtype
        ((3, 5, 2), (3, 8), torch.complex64)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        parametrization: nn.Module | str | None = "exp",
        normalization: str | None = "learned",
        mode: str = "scan",
    ):
        super().__init__()
        self.mode = mode
        check_positive_ints("LRU", d_model=d_model, d_state=d_state)
        if normalization not in _NORMS:
            raise ValueError(f"LRU: normalization must be one of {_NORMS}, got {normalization!r}")
        if isinstance(parametrization, str):
            if parametrization != "exp":
                raise ValueError(
                    f"LRU: parametrization must be 'exp', None or a module, got {parametrization!r}"
                )
            parametrization = ExpMag(phase="exp")
        elif parametrization is not None and not isinstance(parametrization, nn.Module):
            raise TypeError(
                "LRU: parametrization must be 'exp', None or an nn.Module, got "
                f"{type(parametrization).__name__}"
            )
        self.d_model = self.d_input = self.d_output = d_model
        self.d_state = d_state
        self.is_complex = True
        self.normalization = normalization
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        self.lam = nn.Parameter(ring_init(d_state, r_min, r_max, max_phase, complex=True))
        self.B = nn.Parameter(normal(d_state, d_model, std=d_model**-0.5, complex=True))
        self.C = nn.Parameter(normal(d_model, d_state, std=(2 / d_state) ** 0.5, complex=True))
        self.D = nn.Parameter(torch.randn(d_model))
        if parametrization is not None:
            parametrize.register_parametrization(self, "lam", parametrization)
        parametrize.register_parametrization(self, "B", RealImag())
        parametrize.register_parametrization(self, "C", RealImag())
        if normalization not in (None, "none"):
            normalize_input(self, "B", eig_name="lam", kind=normalization)

    def gamma(self) -> torch.Tensor | None:
        """The input normaliser $\\gamma$ ``(N,)`` at the current ``lam``, or ``None``."""
        norms = [p for p in self.parametrizations.B if isinstance(p, InputNorm)]
        return norms[-1].gamma(self.lam) if norms else None

    def _sequence(self, x, state, mode):
        if mode == "fft":
            y, last = diagonal_conv(self.lam, self.B, self.C, x, state)  # (B, L, H), (B, N)
            return y + self.D * x, last
        h = linear_scan(self.lam, input_proj(x, self.B), state)  # (B, L, N)
        return real_output(h, self.C) + self.D * x, h[:, -1]

    def _kernel(self, length):
        return diagonal_kernel(self.lam, self.B, self.C, length), torch.diag(self.D)

    def _step(self, x_t, state):
        h = self.lam * state + input_proj(x_t, self.B)  # (B, N)
        return self._readout(x_t, h), h

    def _readout(self, x_t, state):
        return real_output(state, self.C) + self.D * x_t  # (B, H)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, r_min={self.r_min}, "
            f"r_max={self.r_max}, max_phase={self.max_phase:.4g}, "
            f"normalization={self.normalization!r}, mode={self.mode!r}"
        )
