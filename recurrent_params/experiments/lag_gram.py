r"""The exact batch loss of a linear time-invariant model from the batch's lag Gram matrix.

A linear time-invariant map from a zero state, $y_t = \sum_{k=0}^{t} R_k x_{t-k}$ (its
impulse response $R$, see ``RecurrentCell.impulse_response``), trained to imitate another one
with impulse response $R^\star$, makes the error $e_{b,t} = \sum_k E_k x_{b,t-k}$ with
$E = R - R^\star$. Its half mean squared error over a batch ``x (B, L, d_in)`` is a quadratic
form in $E$ whose matrix depends on the batch alone:

$$\tfrac12\,\mathrm{mean}_{b,t,o}\, e_{b,t,o}^2 = \frac{1}{2 B L d_{out}}
\sum_o E_o^\top G\, E_o,\qquad
G_{(k,i),(k',j)} = \sum_b \sum_{t=\max(k,k')}^{L-1} x_{b,t-k,i}\, x_{b,t-k',j},$$

with $E_o$ the row $o$ of $E$ flattened over (lag, input). This is an identity, not an
approximation: the same batch, the same loss and the same gradient in every parameter (up to
rounding, which is smaller here because no two large outputs are subtracted).

Cost: $G$ takes one $(L d, B) \times (B, L d)$ product ($B L^2 d^2$ multiply-adds) and $O(L^2 d^2)$
prefix sums, and is shared by every model that sees the same batch; each model then costs
$O(L^2 d_{in}^2 d_{out})$ instead of the $O(B L \log L)$ FFTs of its outputs and their
gradients. The teacher-student experiment trains each seed's five learning rates on the same
batch, so one Gram serves five models (``recurrent-params teacher-student --loss gram``,
the default; ``docs/benchmarks.md`` has the measured speed-up).

How $G$ is formed: with $M_{ij} = \sum_b x_{b,:,i} x_{b,:,j}^\top$ ``(L, L)``, on and above
its diagonal block $ij$ of $G$ is a prefix sum along one diagonal of $M_{ij}$,
$G_{ij}[k, k + d] = \sum_{s=0}^{L-1-k-d} M_{ij}[s + d, s]$, which a strided view of $M_{ij}$
padded to width $2L$ turns into rows (one ``cumsum``, no Python loop over time); below,
$G_{ij} = G_{ji}^\top$.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", arXiv 2405.21064 (the teacher-student task this speeds up).
"""

from __future__ import annotations

import torch

__all__ = ["kernel_half_mse", "lag_gram"]


def _upper_diagonal_sums(M: torch.Tensor) -> torch.Tensor:
    r"""``U[..., k, k'] = sum_{t = k'}^{L-1} M[..., t - k, t - k']`` for ``k <= k'``, zero below.

    With $d = k' - k$ this is the prefix sum $\sum_{s \le L-1-k'} M[s, s + d]$ along the
    $d$-th upper diagonal of ``M``. The diagonals are read as the rows of a strided view of
    ``M`` padded to width ``2L``, summed cumulatively, written back through the same view
    (entry ``[s, s + d]`` then holds the sum up to ``s``) and flipped into place.
    """
    L = M.shape[-1]
    batch = M.shape[:-2]
    padded = torch.nn.functional.pad(M, (0, L)).reshape(-1, L, 2 * L)  # (n, L, 2L)
    n = padded.shape[0]
    view = (n, L, L), (2 * L * L, 1, 2 * L + 1)  # [m, d, s] -> padded[m, s, s + d]
    sums = padded.as_strided(*view).contiguous().cumsum(-1)  # (n, L, L): prefix sums along s
    out = torch.zeros_like(padded)
    out.as_strided(*view).copy_(sums)  # out[s, s + d] = sum up to s of diagonal d
    return out[..., :L].flip(-1, -2).transpose(-1, -2).reshape(*batch, L, L)


def lag_gram(x: torch.Tensor) -> torch.Tensor:
    r"""The lag Gram matrix $G$ of a batch (module docstring), one per leading index.

    Args:
        x: ``(..., batch, length, d_in)`` real inputs (finite).

    Returns:
        ``(..., length * d_in, length * d_in)`` symmetric positive semi-definite matrix,
        indexed by (lag, input channel) with the lag outermost.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[1.0], [2.0], [3.0]]])  # one sequence 1, 2, 3
        >>> lag_gram(x)  # G[k, k'] = sum_{t >= max(k, k')} x_{t-k} x_{t-k'}
        tensor([[14.,  8.,  3.],
                [ 8.,  5.,  2.],
                [ 3.,  2.,  1.]])
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        raise ValueError("lag_gram: expected x of shape (..., batch, length, d_in), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(f"lag_gram: expected a real floating-point x, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("lag_gram: x has non-finite entries")
    L, d = x.shape[-2], x.shape[-1]
    M = torch.einsum("...bui,...bvj->...ijuv", x, x)  # (..., d, d, L, L)
    U = _upper_diagonal_sums(M.transpose(-1, -2))  # (..., d, d, L, L): G_ij on/above diagonal
    # below the diagonal, block ij of the symmetric G is block ji transposed; adding it
    # whole counts the diagonal (equal in both) twice
    G = U + U.transpose(-4, -3).transpose(-1, -2)
    G.diagonal(dim1=-2, dim2=-1).sub_(U.diagonal(dim1=-2, dim2=-1))
    nb = G.dim() - 4
    G = G.permute(*range(nb), nb + 2, nb, nb + 3, nb + 1)  # (..., L, d, L, d): (k, i, k', j)
    return G.reshape(*x.shape[:-3], L * d, L * d)


def kernel_half_mse(error: torch.Tensor, gram: torch.Tensor, count: int) -> torch.Tensor:
    r"""$\frac{1}{2\,\mathrm{count}\,d_{out}} \sum_o E_o^\top G E_o$: the half MSE of an
    output error with kernel $E$ over the batch whose lag Gram is $G$.

    Args:
        error: ``(..., L, d_out, d_in)`` difference of two impulse responses.
        gram: ``(..., L * d_in, L * d_in)`` from :func:`lag_gram` (leading dims broadcast with
            ``error``'s; a size-1 dim shares one Gram among models without copies).
        count: the number of (sequence, time) pairs of the batch, $B L$.

    Returns:
        The ``(...)`` losses: ``0.5 * mean((y - y_target) ** 2)`` over batch, time and outputs.

    Examples:
        >>> import torch
        >>> x = torch.randn(4, 5, 1, dtype=torch.float64)
        >>> E = torch.randn(5, 1, 1, dtype=torch.float64)
        >>> y = torch.stack([sum(E[k, 0, 0] * x[:, t - k, 0] for k in range(t + 1))
        ...                  for t in range(5)], 1)
        >>> direct = 0.5 * (y ** 2).mean()
        >>> torch.allclose(kernel_half_mse(E, lag_gram(x), 4 * 5), direct)
        True
    """
    if error.dim() < 3:
        raise ValueError(f"kernel_half_mse: expected error (..., L, d_out, d_in), got "
                         f"{tuple(error.shape)}")
    L, d_out, d_in = error.shape[-3:]
    if gram.shape[-1] != L * d_in or gram.shape[-2] != L * d_in:
        raise ValueError(f"kernel_half_mse: error has {L} lags x {d_in} inputs, so the Gram "
                         f"must be ({L * d_in}, {L * d_in}), got {tuple(gram.shape[-2:])}")
    if count < 1:
        raise ValueError(f"kernel_half_mse: count must be positive, got {count}")
    e = error.movedim(-2, -3).reshape(*error.shape[:-3], d_out, L * d_in)  # (..., d_out, L d_in)
    Ge = torch.einsum("...ok,...kl->...ol", e, gram)  # (..., d_out, L d_in)
    return 0.5 * (e * Ge).sum((-1, -2)) / (count * d_out)
