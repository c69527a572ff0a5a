r"""Private scan kernels. Each computes $h_t = \lambda_t h_{t-1} + u_t$ (or the time-reversed
recurrence $h_t = \lambda_t h_{t+1} + u_t$) for inputs already validated and promoted to one
dtype. ``lam`` is ``(d,)`` or ``(B, L, d)``, ``u`` is ``(B, L, d)``, ``h0`` is ``(B, d)`` or
``None``.

* :func:`loop_scan`: one fused ``addcmul`` per time step into a preallocated output. Not
  differentiable (used inside the custom autograd function only). The compiled C version of
  the same scan, the CPU default, lives in ``_compiled.py``; this loop is its fallback.
* :func:`chunked_scan`: two-level scan. The sequence is cut into chunks of ``T`` steps; all
  chunks are scanned at once from a zero state (``T`` sequential steps on ``(B, L/T, d)``
  tensors), the chunk-end states are chained (``L/T`` steps on ``(B, d)``), and the carried
  state is added back with the within-chunk cumulative products of ``lam``. Only products of
  ``lam`` appear (never ``lam**-t``), so it is safe for ``|lam|`` close to 1 and for tiny
  ``|lam|``. Written with out-of-place ops, so it is also differentiable by plain autograd
  (and by ``torch.func`` transforms); its graph holds O(B L d) memory.
* :func:`parallel_scan`: ``associative_scan`` with a pointwise combine under
  ``torch.compile`` (CUDA only); complex numbers are carried as real pairs because the
  compiler backend does not handle complex dtypes.
"""

from __future__ import annotations

import torch

from recurrent_params.scan._alloc import empty_output

__all__ = ["loop_scan", "chunked_scan", "parallel_scan"]


def _time_flip(x: torch.Tensor | None) -> torch.Tensor | None:
    return x if x is None or x.dim() == 1 else x.flip(1)


def loop_scan(
    lam: torch.Tensor,
    u: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool = False,
    dot_with: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sequential scan, one ``addcmul`` per step (no autograd).

    With ``dot_with`` (a ``(B, L, d)`` tensor ``s``) it also returns
    $\\sum_{b,t} h_{b,t} \\bar s_{b,t'}$ with $t' = t - 1$ when ``reverse`` (else $t + 1$),
    accumulated while $h_t$ is still in cache: the gradient of a shared ``lam`` in backward.
    """
    B, L, d = u.shape
    out = empty_output(u)  # (B, L, d)
    if L == 0:
        return out if dot_with is None else (out, torch.zeros_like(u[0, 0]))
    order = range(L - 1, -1, -1) if reverse else range(L)
    outs, us = out.unbind(1), u.unbind(1)
    lams = lam.unbind(1) if lam.dim() == 3 else None
    acc = None if dot_with is None else torch.zeros_like(out[:, 0])  # (B, d)
    shift = -1 if reverse else 1
    h = h0
    for t in order:
        o = outs[t]  # (B, d) view
        if h is None:
            o.copy_(us[t])
        else:
            torch.addcmul(us[t], lam if lams is None else lams[t], h, out=o)
        if acc is not None and 0 <= t + shift < L:
            acc.addcmul_(o, dot_with[:, t + shift].conj())
        h = o
    if acc is None:
        return out
    return out, acc.sum(0)


def chunked_scan(
    lam: torch.Tensor,
    u: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool = False,
    chunk: int = 64,
) -> torch.Tensor:
    """Two-level chunked scan in out-of-place ops (differentiable by autograd)."""
    if reverse:
        return _time_flip(chunked_scan(_time_flip(lam), _time_flip(u), h0, False, chunk))
    B, L, d = u.shape
    if L == 0:
        return u.clone()
    T = max(1, min(chunk, L))
    C = L // T
    main = C * T
    per_step = lam.dim() == 3
    u4 = u[:, :main].reshape(B, C, T, d)  # (B, C, T, d)
    if per_step:
        lam4 = lam[:, :main].reshape(B, C, T, d)  # (B, C, T, d)
        P = torch.cumprod(lam4, dim=2)  # (B, C, T, d)
        A = P[:, :, -1]  # (B, C, d)
        lams = lam4.unbind(2)
    else:
        P = torch.cumprod(lam.expand(T, d), dim=0)  # (T, d) = lam^(k+1)
        A = P[-1].expand(B, C, d)  # (B, C, d)
        lams = [lam] * T
    # level 1: every chunk from a zero state, all chunks at once
    loc = []
    prev = None
    for k, u_k in enumerate(u4.unbind(2)):  # u_k: (B, C, d)
        prev = u_k if prev is None else torch.addcmul(u_k, lams[k], prev)
        loc.append(prev)
    local = torch.stack(loc, 2)  # (B, C, T, d)
    # level 2: chain the chunk-end states
    carried = []
    H = h0
    for c in range(C):
        carried.append(torch.zeros_like(prev[:, 0]) if H is None else H)  # state before chunk c
        end = loc[-1][:, c]  # (B, d)
        H = end if H is None else torch.addcmul(end, A[:, c], H)
    Hprev = torch.stack(carried, 1)  # (B, C, d)
    h = torch.addcmul(local, P, Hprev.unsqueeze(2)).reshape(B, main, d)  # (B, main, d)
    if main == L:
        return h
    tail = []
    lam_t = lam
    for t in range(main, L):
        if per_step:
            lam_t = lam[:, t]
        H = torch.addcmul(u[:, t], lam_t, H)
        tail.append(H)
    return torch.cat([h, torch.stack(tail, 1)], 1)


_COMPILED: dict = {}


def _combine_complex(left, right):
    # (a1, b1) o (a2, b2) = (a2 a1, a2 b1 + b2) with complex numbers as (re, im) pairs
    ar1, ai1, br1, bi1 = left
    ar2, ai2, br2, bi2 = right
    return (
        ar2 * ar1 - ai2 * ai1,
        ar2 * ai1 + ai2 * ar1,
        ar2 * br1 - ai2 * bi1 + br2,
        ar2 * bi1 + ai2 * br1 + bi2,
    )


def _combine_real(left, right):
    a1, b1 = left
    a2, b2 = right
    return a2 * a1, a2 * b1 + b2


def _assoc(elems, complex_pairs: bool, combine_mode: str):
    from torch._higher_order_ops.associative_scan import associative_scan

    fn = _combine_complex if complex_pairs else _combine_real
    return associative_scan(fn, elems, dim=1, combine_mode=combine_mode)


def parallel_scan(
    lam: torch.Tensor,
    u: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool = False,
    combine_mode: str = "pointwise",
) -> torch.Tensor:
    """Parallel (log-depth) scan by ``associative_scan`` (compiled when ``"pointwise"``).

    The initial state is folded into the first input (``u_0 + lam_0 h0``).
    """
    if reverse:
        return _time_flip(
            parallel_scan(_time_flip(lam), _time_flip(u), h0, False, combine_mode)
        )
    B, L, d = u.shape
    lam3 = lam.expand(B, L, d) if lam.dim() == 1 else lam  # (B, L, d)
    if h0 is not None:
        first = u[:, :1] + lam3[:, :1] * h0.unsqueeze(1)  # (B, 1, d)
        u = torch.cat([first, u[:, 1:]], 1)
    if combine_mode == "pointwise":
        key = "pointwise"
        if key not in _COMPILED:
            _COMPILED[key] = torch.compile(_assoc, fullgraph=True)
        run = _COMPILED[key]
    else:
        run = _assoc
    if u.is_complex():
        lr = torch.view_as_real(lam3.contiguous())
        ur = torch.view_as_real(u.contiguous())
        elems = (lr[..., 0], lr[..., 1], ur[..., 0], ur[..., 1])
        _, _, hr, hi = run(elems, True, combine_mode)
        return torch.complex(hr, hi)
    _, h = run((lam3.contiguous(), u.contiguous()), False, combine_mode)
    return h
