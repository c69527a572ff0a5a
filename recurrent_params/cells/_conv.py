r"""Private convolution mode of the linear time-invariant cells (shared by every cell).

A linear time-invariant recurrence $h_t = A h_{t-1} + B x_t$, $y_t = C h_t + D x_t$ with
initial state $h_{-1} = h_0$ has the closed form

$$y_t = \sum_{k=0}^{t} K_k x_{t-k} + C A^{t+1} h_0 + D x_t, \qquad K_k = C A^k B,$$
$$h_{L-1} = \sum_{j=0}^{L-1} A^{L-1-j} B x_j + A^L h_0 .$$

``causal_conv`` applies a kernel by FFT with zero padding to $2L$; ``doubling_powers``
builds the powers $A^k$ ($k < n$) applied to a matrix by doubling ($\lceil\log_2 n\rceil$
steps, no loop over time); ``diagonal_conv`` and ``dense_conv`` put the pieces together for
diagonal (``lam``) and dense (``A``) transitions. Everything is out of place and branches only
on shapes, so it runs under ``torch.func`` transforms (``vmap``, ``grad``, ``functional_call``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from recurrent_params.cells._ops import input_proj, real_output

__all__ = [
    "causal_conv",
    "dense_conv",
    "dense_kernel",
    "diagonal_conv",
    "diagonal_kernel",
    "doubling_powers",
]


def causal_conv(x: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    r"""Causal convolution $y_t = \sum_{k \le t} K_k x_{t-k}$ by FFT, zero-padded to $2L$.

    Args:
        x: real inputs ``(batch, L, d_in)``.
        K: real kernel ``(L, d_out, d_in)`` (a full matrix per lag) or ``(L, d_in)``
            (depthwise: channel ``i`` is convolved with ``K[:, i]`` alone).

    Returns:
        ``(batch, L, d_out)`` (``d_out = d_in`` for a depthwise kernel).
    """
    L = x.shape[1]
    if K.shape[0] != L:
        raise ValueError(f"causal_conv: expected a kernel of length {L}, got {K.shape[0]}")
    n = 2 * L
    Xf = torch.fft.rfft(x, n=n, dim=1)  # (B, F, d_in)
    Kf = torch.fft.rfft(K, n=n, dim=0)  # (F, d_out, d_in) or (F, d_in)
    if K.dim() == 2:
        Yf = Xf * Kf  # (B, F, d_in)
    elif K.shape[-1] == 1:
        Yf = Xf * Kf[..., 0]  # (B, F, d_out)
    else:
        Yf = torch.einsum("foi,bfi->bfo", Kf, Xf)  # (B, F, d_out)
    return torch.fft.irfft(Yf, n=n, dim=1)[:, :L]  # (B, L, d_out)


Apply = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def doubling_powers(X: torch.Tensor, A: torch.Tensor, n: int, apply: Apply) -> torch.Tensor:
    r"""The stack $[X, A X, A^2 X, \dots, A^{n-1} X]$ ``(n, *X.shape)`` by doubling.

    With the first $m$ terms known, ``apply(A^m, terms)`` gives the next $m$ and $A^m$ is
    squared: $\lceil\log_2 n\rceil$ steps. ``apply(P, S)`` multiplies the stack ``S`` by the
    power ``P`` (``P * S`` for a diagonal, ``P @ S`` or ``S @ P`` for a matrix, which also sets
    the side the powers act on); the power is squared with the same ``apply``.
    """
    out = X.unsqueeze(0)  # (1, ...)
    P = A
    while out.shape[0] < n:
        out = torch.cat([out, apply(P, out)], 0)  # (2m, ...)
        if out.shape[0] < n:
            P = apply(P, P)
    return out[:n]


def _mul(P: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    return P * S


def _baby_steps(L: int) -> int:
    """Baby-step count $q$, a power of two near $\\sqrt L$: lags $k = a q + b$, $b < q$."""
    return 1 << max(0, math.ceil(math.log2(max(L, 1)) / 2))


def diagonal_kernel(lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    r"""Kernel $K_k = \mathrm{Re}(C\,\mathrm{diag}(\lambda^k) B)$, $k < L$: ``(L, d_out, d_in)``.

    ``lam (N,)``, ``B (N, d_in)``, ``C (d_out, N)``. Baby steps and giant steps: with
    $k = a q + b$ ($q \approx \sqrt L$), $K_{aq+b} = \mathrm{Re}\sum_n (C_n \lambda_n^{qa})
    (\lambda_n^b B_n)$ is one $(p\,d_{out}, N) \times (N, q\,d_{in})$ product of the
    $p + q \approx 2\sqrt L$ powers (by doubling): no $(L, N)$ intermediate.
    """
    q = _baby_steps(L)
    p = -(-L // q)
    V = doubling_powers(torch.ones_like(lam), lam, q + 1, _mul)  # (q+1, N): lam^b
    W = doubling_powers(torch.ones_like(lam), V[q], p, _mul)  # (p, N): lam^(q a)
    K = torch.einsum("pon,qni->pqoi", W[:, None, :] * C, V[:q, :, None] * B)  # (p, q, o, i)
    return (K.real if K.is_complex() else K).flatten(0, 1)[:L]  # (L, d_out, d_in)


def diagonal_conv(
    lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, x: torch.Tensor, h0: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""$h_t = \lambda \odot h_{t-1} + B x_t$, $y_t = \mathrm{Re}(C h_t)$ for all $t$ at once.

    Kernel $K_k = \mathrm{Re}(C\,\mathrm{diag}(\lambda^k) B)$ ``(L, d_out, d_in)`` from the
    powers $\lambda^k$, $k \le L$ (doubling, so $\lambda = 0$ and negative real $\lambda$ are
    exact), applied by :func:`causal_conv`. ``lam (N,)``, ``B (N, d_in)``, ``C (d_out, N)``
    (real, or complex with ``lam``), ``x (batch, L, d_in)`` real, ``h0 (batch, N)`` or
    ``None``. Returns ``(y, h_last)`` without the skip term.
    """
    Bsz, L, d_in = x.shape
    V = doubling_powers(torch.ones_like(lam), lam, L + 1, _mul)  # (L+1, N): lam^k
    G = V[:L, :, None] * B  # (L, N, d_in): lam^k B
    K = real_output(G.transpose(1, 2), C).transpose(1, 2)  # (L, d_out, d_in)
    y = causal_conv(x, K)  # (B, L, d_out)
    Gr = G.flip(0).permute(1, 0, 2).reshape(-1, L * d_in)  # (N, L d_in): lam^(L-1-j) B
    last = input_proj(x.reshape(Bsz, L * d_in), Gr)  # (B, N)
    if h0 is not None:
        M = (V[1:, None, :] * C).reshape(-1, lam.shape[0])  # (L d_out, N): C lam^(k+1)
        y = y + real_output(h0, M).reshape(Bsz, L, -1)  # (B, L, d_out)
        last = last + V[L] * h0
    return y, last


def _left_matmul(P: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``P @ S`` for a matrix ``P (N, N)`` and ``S (N, N)`` or a stack ``S (m, N, d)``, the stack
    as one ``(N, N) @ (N, m d)`` product (``torch.matmul`` would broadcast ``P`` to ``m``
    copies and run ``m`` small products: 10x slower under ``vmap``)."""
    if S.dim() == 2:
        return P @ S
    m, n, d = S.shape
    return (P @ S.transpose(0, 1).reshape(n, m * d)).reshape(n, m, d).transpose(0, 1)


def _thin_matmul(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``A @ v`` for ``A (N, N)``, ``v (N, d)``; a single column as a broadcast multiply and
    sum, which under ``vmap`` on a CPU costs several times less than a batched matrix-vector
    BLAS call (measured: 50 models of N = 64, about 8x less forward + backward)."""
    if v.shape[-1] != 1:
        return A @ v
    return (A * v.transpose(-1, -2)).sum(-1, keepdim=True)  # (N, 1)


def dense_kernel(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    r"""Kernel $K_k = C A^k B$, $k < L$: ``(L, d_out, d_in)``.

    Baby steps and giant steps: with $k = a q + b$ ($q$ a power of two near $\sqrt L$),
    $K_{aq+b} = (C A^{qa})(A^b B)$. The baby steps $A^b B$ come by doubling, whose squarings
    end at $A^q$ ($\log_2 q$ of them); the giant steps $C A^{qa}$ by $p - 1$ row-vector
    products with $A^q$. $O(N^3 \log_2 q + \sqrt L\,N^2 (d_{in} + d_{out}) + L N d_{in}
    d_{out})$: about half the matrix work of doubling all $L$ powers (which squares $A$
    $\lceil\log_2 L\rceil$ times) when $d_{in}, d_{out} \ll N$.
    """
    q = _baby_steps(L)
    p = -(-L // q)
    V = B.unsqueeze(0)  # (m, N, d_in): A^b B, b < m
    P = A  # A^m
    while V.shape[0] < q:
        V = torch.cat([V, _left_matmul(P, V)], 0)
        P = P @ P
    W = [C]  # C A^(q a), a < p
    for _ in range(p - 1):
        W.append(_thin_matmul(P.T, W[-1].T).T)
    K = torch.einsum("pon,qni->pqoi", torch.stack(W), V)  # (p, q, d_out, d_in)
    return K.flatten(0, 1)[:L]


def dense_conv(
    A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, x: torch.Tensor, h0: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""$h_t = A h_{t-1} + B x_t$, $y_t = C h_t$ for all $t$ at once (real matrices).

    $A^k B$ ($k < L$) by doubling from the left gives the kernel $K_k = C A^k B$ and the last
    state; with ``h0``, $C A^{k+1}$ by doubling from the right gives its contribution and
    ``torch.linalg.matrix_power`` (repeated squaring) gives $A^L h_0$. Returns ``(y, h_last)``
    without the skip term.
    """
    Bsz, L, d_in = x.shape
    N = A.shape[0]
    P = doubling_powers(B, A, L, _left_matmul)  # (L, N, d_in): A^k B
    K = C @ P  # (L, d_out, d_in)
    y = causal_conv(x, K)  # (B, L, d_out)
    Pr = P.flip(0).permute(1, 0, 2).reshape(N, L * d_in)  # (N, L d_in): A^(L-1-j) B
    last = x.reshape(Bsz, L * d_in) @ Pr.T  # (B, N)
    if h0 is not None:
        M = doubling_powers(C @ A, A, L, lambda P_, S: S @ P_)  # (L, d_out, N): C A^(k+1)
        y = y + (h0 @ M.reshape(-1, N).T).reshape(Bsz, L, -1)  # (B, L, d_out)
        last = last + h0 @ torch.linalg.matrix_power(A, L).T
    return y, last
