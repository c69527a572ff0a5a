"""S4D: diagonal state-space model with zero-order-hold discretisation (Gu et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from recurrent_params.cells._base import RecurrentCell, check_number, check_positive_ints
from recurrent_params.cells._conv import causal_conv
from recurrent_params.parametrizations import RealImag
from recurrent_params.scan import linear_scan

__all__ = ["S4D"]

_INITS = ("lin", "inv")


class _ZOHEigenvalues(nn.Module):
    r"""Parametrization of the discrete eigenvalues $\lambda = \exp(\Delta A)$ of an S4D cell.

    Originals: ``log_A_real`` and ``A_imag`` ``(H, N)`` with
    $A = -\exp(\text{log\_A\_real}) + i\,\text{A\_imag}$; the step $\Delta = \exp(\log\Delta)$
    is read from the owning cell's ``log_dt`` at each call. ``right_inverse`` takes the
    principal logarithm, $A = \log(\lambda) / \Delta$.
    """

    def __init__(self, d_model: int, n_modes: int):
        super().__init__()
        self.shape = (d_model, n_modes)
        object.__setattr__(self, "_owner", None)

    def _dt(self) -> torch.Tensor:
        return torch.exp(self._owner.log_dt).unsqueeze(-1)  # (H, 1)

    def forward(self, log_A_real: torch.Tensor, A_imag: torch.Tensor) -> torch.Tensor:
        A = torch.complex(-torch.exp(log_A_real), A_imag)  # (H, N)
        return torch.exp(self._dt() * A).reshape(-1)  # (H N,)

    def right_inverse(self, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not lam.is_complex() or lam.numel() != math.prod(self.shape):
            raise ValueError(
                f"S4D lam: expected a complex tensor of {math.prod(self.shape)} entries, "
                f"got {lam.dtype} of shape {tuple(lam.shape)}"
            )
        r = lam.detach().abs()
        if not bool(((r > 0) & (r < 1)).all()):
            raise ValueError(f"S4D lam: expected every |lam| in (0, 1), got max {r.max():.6g}")
        A = torch.log(lam.detach().reshape(self.shape)) / self._dt().to(lam.real.dtype)  # (H, N)
        return torch.log(-A.real), A.imag.clone()


class S4D(RecurrentCell):
    r"""S4D layer: per channel $h$, $N$ complex modes with
    $x'(t) = A x(t) + B u(t)$, discretised by zero-order hold with step $\Delta_h$:

    $\lambda = \exp(\Delta A)$, $\bar B = (\exp(\Delta A) - 1) / A$ (with $B = 1$),
    $h_t = \lambda \odot h_{t-1} + \bar B\, x_t$, $y_t = 2\,\mathrm{Re}\sum_n C_n h_{t,n} + D x_t$.

    Sequence mode (``mode="fft"``, default) convolves with the kernel
    $K_l = 2\,\mathrm{Re}\sum_n C_n \bar B_n \lambda_n^l$ by FFT with zero padding to $2L$
    ($O(L \log L)$, independent of $N$); the kernel's powers $\lambda^l$ are built blockwise
    ($\lambda^{cT} \lambda^k$), so no $(H, N, L)$ tensor is formed. ``mode="scan"`` runs the
    same model on :func:`~recurrent_params.linear_scan`. ``step`` runs the recurrence. All three
    use the same $\lambda$ and $\bar B$ and agree to float precision (the reference code's
    convolution and step modes do not); an initial state enters the FFT mode through the
    closed form $2\,\mathrm{Re}\sum_n C_n \lambda_n^{t+1} h_{0,n}$.

    NaN in, NaN out, causally in every mode: a NaN/inf at step $t$ of a sequence reaches
    that sequence's outputs from $t$ on and nothing else (``mode="fft"`` runs such sequences
    on the scan; see [non-finite input](../concepts/scan_and_cells.md#convolution-mode)).
    Runs in float32 or float64 only (``.half()`` and
    ``bfloat16`` are a ``TypeError``: the state is complex).

    ``lam`` (the discrete eigenvalues, flattened channel-major to ``(d_model * n_modes,)``,
    matching the state) is a parametrized tensor: its originals are ``log_A_real`` and
    ``A_imag`` under ``parametrizations.lam``, and $\Delta$ comes from the parameter
    ``log_dt``; ``assign_(cell, "lam", value)`` keeps $\Delta$ and sets
    $A = \log(\lambda)/\Delta$. With ``parametrization=None`` the cell keeps a plain complex
    ``lam`` (register any map on it) and uses $\bar B = \Delta (\lambda - 1) / \log \lambda$,
    the same ZOH formula written in $\lambda$. That formula takes the principal logarithm,
    so it equals the ZOH gain of the original $A$ only while $|\mathrm{Im}(\Delta A)| < \pi$;
    removing the default map from a trained cell with larger phases therefore changes
    $\bar B$ (S4D-Lin reaches $\Delta\pi n > \pi$ for large $n$).

    Inits: S4D-Lin $A_n = -\tfrac12 + i\pi n$; S4D-Inv
    $A_n = -\tfrac12 + i \tfrac{N}{\pi}\left(\tfrac{N}{2n+1} - 1\right)$;
    $\log\Delta \sim U[\log \Delta_{min}, \log \Delta_{max}]$; $C \sim \mathcal{CN}(0, 1)$;
    $D \sim N(0, 1)$.

    Sizes: ``n_modes`` ($N$, the argument and the attribute) counts the complex modes of one
    channel; ``d_state`` (an attribute, as on every cell) is the size of the whole state,
    $H N$ = ``d_model * n_modes``.

    Args:
        d_model: channels $H$ (input and output features).
        n_modes: complex modes $N$ per channel (the state has ``d_model * n_modes`` entries,
            read as ``cell.d_state``).
        init: ``"lin"`` or ``"inv"``.
        dt_min: smallest initial step.
        dt_max: largest initial step.
        mode: ``"fft"`` or ``"scan"`` for ``forward`` (settable later: ``cell.mode``).
        parametrization: ``"zoh"`` (default) or ``None`` (plain ``lam``).

    References:
        Gu, Gupta, Goel & Ré, "On the parameterization and initialization of diagonal state
        space models", arXiv 2206.11893 (https://arxiv.org/abs/2206.11893).

    Examples:
        >>> import torch
        >>> cell = S4D(d_model=2, n_modes=4).double()
        >>> cell.n_modes, cell.d_state
        (4, 8)
        >>> dt = cell.log_dt.exp()[:, None]
        >>> A = torch.complex(torch.full((2, 4), -0.5), torch.pi * torch.arange(4.0))
        >>> torch.allclose(cell.lam, torch.exp(dt * A.to(torch.complex128)).reshape(-1))  # S4D-Lin
        True
        >>> x = torch.randn(1, 16, 2, dtype=torch.float64)
        >>> y_fft, h_fft = cell(x)
        >>> cell.mode = "scan"
        >>> y_scan, h_scan = cell(x)
        >>> torch.allclose(y_fft, y_scan) and torch.allclose(h_fft, h_scan)
        True
    """

    def __init__(
        self,
        d_model: int,
        n_modes: int = 64,
        *,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        mode: str = "fft",
        parametrization: str | None = "zoh",
    ):
        super().__init__()
        check_positive_ints("S4D", d_model=d_model, n_modes=n_modes)
        if init not in _INITS:
            raise ValueError(f"S4D: init must be one of {_INITS}, got {init!r}")
        if parametrization not in ("zoh", None):
            raise ValueError(f"S4D: parametrization must be 'zoh' or None, got {parametrization!r}")
        dt_min = check_number("S4D", "dt_min", dt_min, low=0.0, closed=False)
        dt_max = check_number("S4D", "dt_max", dt_max, low=0.0, closed=False)
        if not dt_min <= dt_max:
            raise ValueError(f"S4D: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.mode = mode
        self.d_model = self.d_input = self.d_output = d_model
        self.n_modes = n_modes
        self.d_state = d_model * n_modes
        self.is_complex = True
        self.init = init
        H, N = d_model, n_modes
        n = torch.arange(N, dtype=torch.float64)
        if init == "lin":
            A_imag = math.pi * n
        else:
            A_imag = N / math.pi * (N / (2 * n + 1) - 1)
        A_imag = A_imag.expand(H, N).to(torch.get_default_dtype())
        log_A_real = torch.full((H, N), math.log(0.5))
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.C = nn.Parameter(torch.complex(torch.randn(H, N), torch.randn(H, N)) / math.sqrt(2))
        self.D = nn.Parameter(torch.randn(H))
        A = torch.complex(-torch.exp(log_A_real), A_imag)  # (H, N)
        self.lam = nn.Parameter(torch.exp(torch.exp(log_dt)[:, None] * A).reshape(-1))
        parametrize.register_parametrization(self, "C", RealImag())
        if parametrization == "zoh":
            zoh = _ZOHEigenvalues(H, N)
            object.__setattr__(zoh, "_owner", self)
            parametrize.register_parametrization(self, "lam", zoh, unsafe=True)
            with torch.no_grad():  # exact init values (right_inverse would wrap the phase)
                self.parametrizations.lam.original0.copy_(log_A_real)
                self.parametrizations.lam.original1.copy_(A_imag)

    def _zoh(self) -> _ZOHEigenvalues | None:
        if not parametrize.is_parametrized(self, "lam"):
            return None
        plist = self.parametrizations.lam
        return plist[0] if len(plist) == 1 and isinstance(plist[0], _ZOHEigenvalues) else None

    @property
    def A(self) -> torch.Tensor:
        """Continuous eigenvalues ``(d_model, n_modes)`` ($\\log(\\lambda)/\\Delta$)."""
        if self._zoh() is not None:
            p = self.parametrizations.lam
            return torch.complex(-torch.exp(p.original0), p.original1)
        return torch.log(self.lam.reshape(self.d_model, self.n_modes)) / self.dt[:, None]

    @property
    def dt(self) -> torch.Tensor:
        """Steps $\\Delta$ ``(d_model,)``."""
        return torch.exp(self.log_dt)

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam, dB)``, each ``(d_model, n_modes)``: discrete eigenvalues and input gains."""
        lam = self.lam.reshape(self.d_model, self.n_modes)  # (H, N)
        if self._zoh() is not None:
            dB = (lam - 1) / self.A  # (H, N)
        else:
            dB = self.dt[:, None].to(lam.dtype) * (lam - 1) / torch.log(lam)  # (H, N)
        return lam, dB

    def kernel(self, length: int) -> torch.Tensor:
        """Kernel $K_l = 2\\,\\mathrm{Re}\\sum_n C_n \\bar B_n \\lambda_n^l$, ``(H, length)``."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"S4D: expected length a positive int, got {length!r}")
        lam, dB = self.discretize()
        return 2 * _power_sum(self.C * dB, lam, length).real  # (H, L)

    def _kernel(self, length):
        return torch.diag_embed(self.kernel(length).T), torch.diag(self.D)  # (L, H, H), (H, H)

    def _sequence(self, x, state, mode):
        lam, dB = self.discretize()  # (H, N)
        C = self.C
        Bsz, L, H = x.shape
        if mode == "scan":
            u = (x.unsqueeze(-1) * dB).reshape(Bsz, L, self.d_state)  # (B, L, H N)
            h = linear_scan(lam.reshape(-1), u, state)  # (B, L, H N)
            y = _modal_output(h.reshape(Bsz, L, H, self.n_modes), C) + self.D * x  # (B, L, H)
            return y, h[:, -1]
        K = 2 * _power_sum(C * dB, lam, L).real  # (H, L)
        y = causal_conv(x, K.T) + self.D * x  # (B, L, H), depthwise
        # state after the last step: lam^L h0 + dB * sum_r lam^r x_{L-1-r}
        xr = x.flip(1).transpose(1, 2).to(lam.dtype)  # (B, H, L)
        last = dB * _power_sum_input(lam, xr)  # (B, H, N)
        if state is not None:
            h0 = state.reshape(Bsz, H, self.n_modes)
            y = y + 2 * _power_sum(C * lam * h0, lam, L).real.transpose(1, 2)  # (B, L, H)
            last = last + lam ** L * h0
        return y, last.reshape(Bsz, self.d_state)

    def _step(self, x_t, state):
        lam, dB = self.discretize()
        Bsz = x_t.shape[0]
        h = lam * state.reshape(Bsz, self.d_model, self.n_modes) + dB * x_t.unsqueeze(-1)
        h = h.reshape(Bsz, self.d_state)  # (B, H N)
        return self._readout(x_t, h), h

    def _readout(self, x_t, state):
        h = state.reshape(*state.shape[:-1], self.d_model, self.n_modes)  # (B, H, N)
        return _modal_output(h, self.C) + self.D * x_t  # (B, H)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_modes={self.n_modes}, d_state={self.d_state}, "
            f"init={self.init!r}, mode={self.mode!r}"
        )


def _modal_output(h: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    r"""$2\,\mathrm{Re}\sum_n C_{hn} h_{hn}$ per channel: ``h (..., H, N)`` -> ``(..., H)``
    (the conjugate modes are implicit, hence the factor 2)."""
    return 2 * (h.real * C.real - h.imag * C.imag).sum(-1)


def _blocks(length: int) -> tuple[int, int]:
    T = max(1, math.isqrt(length))
    return T, -(-length // T)


def _block_powers(lam: torch.Tensor, length: int):
    r"""Powers $\lambda^k$ ($k < T$) and $\lambda^{cT}$ ($c < n_C$), with $T n_C \ge L$."""
    T, nC = _blocks(length)
    logl = torch.log(lam)  # (H, N)
    k = torch.arange(T, device=lam.device, dtype=lam.real.dtype)
    c = torch.arange(nC, device=lam.device, dtype=lam.real.dtype) * T
    VT = torch.exp(logl.unsqueeze(-1) * k)  # (H, N, T)
    VC = torch.exp(logl.unsqueeze(-1) * c)  # (H, N, nC)
    return T, nC, VT, VC


def _power_sum(W: torch.Tensor, lam: torch.Tensor, length: int) -> torch.Tensor:
    """$S_{..., h, l} = \\sum_n W_{..., h, n} \\lambda_{h, n}^l$ for $l < L$, blockwise powers."""
    T, nC, VT, VC = _block_powers(lam, length)
    S = torch.einsum("...hnc,hnk->...hck", W.unsqueeze(-1) * VC, VT)  # (..., H, nC, T)
    return S.reshape(*S.shape[:-2], nC * T)[..., :length]


def _power_sum_input(lam: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """$\\sum_r \\lambda_{h,n}^r\\, xr_{b,h,r}$ for ``xr (B, H, L)``: ``(B, H, N)``, blockwise."""
    L = xr.shape[-1]
    T, nC, VT, VC = _block_powers(lam, L)
    xp = torch.nn.functional.pad(xr, (0, nC * T - L)).reshape(*xr.shape[:-1], nC, T)
    inner = torch.einsum("hnk,bhck->bhnc", VT, xp)  # (B, H, N, nC)
    return (inner * VC).sum(-1)  # (B, H, N)
