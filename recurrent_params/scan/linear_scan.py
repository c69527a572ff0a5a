r"""The linear-scan core $h_t = \lambda_t h_{t-1} + u_t$ and its reverse-scan backward."""

from __future__ import annotations

import warnings

import torch

from recurrent_params.scan import _kernels

__all__ = ["linear_scan", "scan_implementation"]

_IMPLS = ("auto", "loop", "chunked", "parallel", "autograd")
_PARALLEL_BROKEN: set[str] = set()


def scan_implementation(device: torch.device | str, requires_grad: bool = True) -> str:
    """Name of the kernel that ``linear_scan(..., impl="auto")`` runs on ``device``.

    * CPU: ``"loop"`` (one fused ``addcmul`` per step, fastest measured on CPU; see
      ``docs/benchmarks.md``), wrapped in the custom autograd function.
    * CUDA: ``"parallel"`` (``associative_scan`` compiled with ``torch.compile``), or
      ``"chunked"`` if compiling failed once on this device type (a warning says so).
    * Inside ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``, ``hessian``): ``"autograd"``,
      the chunked scan differentiated by plain autograd (the custom function has no vmap/jvp rule).

    Example:
        >>> scan_implementation("cpu")
        'loop'
    """
    device = torch.device(device)
    if torch._C._are_functorch_transforms_active():
        return "autograd"
    if device.type == "cuda":
        return "chunked" if "cuda" in _PARALLEL_BROKEN else "parallel"
    return "loop"


def _check(lam: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None) -> torch.dtype:
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
        raise ValueError(f"linear_scan: u must have shape (batch, length, d), got {got}")
    B, L, d = u.shape
    if not isinstance(lam, torch.Tensor):
        raise TypeError(f"linear_scan: lam must be a tensor, got {type(lam).__name__}")
    if lam.shape not in (torch.Size([d]), u.shape):
        raise ValueError(
            f"linear_scan: lam must have shape ({d},) or {tuple(u.shape)} to match u, "
            f"got {tuple(lam.shape)}"
        )
    if h0 is not None and h0.shape != (B, d):
        raise ValueError(f"linear_scan: h0 must have shape ({B}, {d}), got {tuple(h0.shape)}")
    for name, t in (("lam", lam), ("u", u), ("h0", h0)):
        if t is None:
            continue
        if not (t.is_floating_point() or t.is_complex()):
            raise TypeError(f"linear_scan: {name} must be floating or complex, got {t.dtype}")
        if t.device != u.device:
            raise ValueError(
                f"linear_scan: {name} is on {t.device} but u is on {u.device}; "
                "expected all tensors on one device"
            )
    dtype = torch.result_type(lam, u)
    if h0 is not None:
        dtype = torch.promote_types(dtype, h0.dtype)
    return dtype


def _kernel(impl: str, lam, u, h0, reverse: bool) -> torch.Tensor:
    if impl == "loop":
        return _kernels.loop_scan(lam, u, h0, reverse)
    if impl in ("chunked", "autograd"):
        return _kernels.chunked_scan(lam, u, h0, reverse)
    if impl == "parallel":
        if u.device.type == "cuda":
            try:
                return _kernels.parallel_scan(lam, u, h0, reverse)
            except Exception as err:  # compile failures: fall back, loudly, once
                _PARALLEL_BROKEN.add("cuda")
                warnings.warn(
                    f"linear_scan: the compiled parallel scan failed ({type(err).__name__}: "
                    f"{err}); falling back to the chunked scan on this device",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return _kernels.chunked_scan(lam, u, h0, reverse)
        return _kernels.parallel_scan(lam, u, h0, reverse, combine_mode="generic")
    raise ValueError(f"linear_scan: impl must be one of {_IMPLS}, got {impl!r}")


def _like(grad: torch.Tensor | None, ref: torch.Tensor | None) -> torch.Tensor | None:
    """Cast a gradient to the dtype of its input (real part for a real input)."""
    if grad is None or ref is None:
        return None
    if grad.is_complex() and not ref.is_complex():
        grad = grad.real
    return grad.to(ref.dtype)


class _LinearScanFn(torch.autograd.Function):
    """Forward by a fast kernel; backward by the reverse scan of the adjoint recurrence.

    For $h_t = \\lambda_t h_{t-1} + u_t$ and incoming gradients $g_t$ the adjoint is
    $a_t = g_t + \\bar\\lambda_{t+1} a_{t+1}$ (a scan in reverse time), and
    $\\partial L/\\partial u_t = a_t$, $\\partial L/\\partial \\lambda_t = a_t \\bar h_{t-1}$,
    $\\partial L/\\partial h_0 = \\bar\\lambda_0 a_0$ (PyTorch's conjugate convention).
    The backward calls :func:`linear_scan` again, so double backward works.
    """

    @staticmethod
    def forward(ctx, lam, u, h0, reverse, impl):
        h = _kernel(impl, lam, u, h0, reverse)
        ctx.save_for_backward(lam, h0, h)
        ctx.reverse, ctx.impl = reverse, impl
        return h

    @staticmethod
    def backward(ctx, g):
        lam, h0, h = ctx.saved_tensors
        reverse, impl = ctx.reverse, ctx.impl
        need_lam, need_u, need_h0 = ctx.needs_input_grad[:3]
        per_step = lam.dim() == 3
        lam_c = lam.conj()
        if per_step:  # the adjoint uses lam of the neighbouring step (wrapped value unused)
            lam_c = lam_c.roll(1 if reverse else -1, dims=1)
        a = _dispatch(lam_c, g, None, not reverse, impl)  # (B, L, d)
        first = -1 if reverse else 0  # the step that reads h0
        g_lam = g_h0 = None
        if need_lam:
            if per_step:
                zero = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)
                if reverse:
                    h_in = torch.cat([h[:, 1:], zero], 1)  # (B, L, d)
                else:
                    h_in = torch.cat([zero, h[:, :-1]], 1)  # (B, L, d)
                g_lam = a * h_in.conj()  # (B, L, d)
            else:
                if reverse:
                    g_lam = (a[:, :-1] * h[:, 1:].conj()).sum((0, 1))  # (d,)
                else:
                    g_lam = (a[:, 1:] * h[:, :-1].conj()).sum((0, 1))  # (d,)
                if h0 is not None:
                    g_lam = g_lam + (a[:, first] * h0.conj()).sum(0)
        if need_h0 and h0 is not None:
            lam_first = lam[:, first] if per_step else lam
            g_h0 = lam_first.conj() * a[:, first]  # (B, d)
        return _like(g_lam, lam), a if need_u else None, _like(g_h0, h0), None, None


def _dispatch(lam, u, h0, reverse: bool, impl: str) -> torch.Tensor:
    if impl == "auto":
        impl = scan_implementation(u.device)
    if impl == "autograd" or torch._C._are_functorch_transforms_active():
        return _kernels.chunked_scan(lam, u, h0, reverse)
    needs_graph = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (lam, u, h0)
    )
    if not needs_graph:
        return _kernel(impl, lam, u, h0, reverse)
    return _LinearScanFn.apply(lam, u, h0, reverse, impl)


@torch.compiler.disable
def linear_scan(
    lam: torch.Tensor,
    u: torch.Tensor,
    h0: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    r"""Diagonal linear recurrence $h_t = \lambda_t \odot h_{t-1} + u_t$ over a batch of sequences.

    Computes every state of the recurrence, real or complex, with a hand-written backward
    (the reverse scan $a_t = g_t + \bar\lambda_{t+1} a_{t+1}$), so no per-step autograd graph is
    kept and memory stays O(batch x length x d). Safe for $|\lambda|$ up to $1 - 10^{-7}$ and
    long sequences: only products of $\lambda$ are formed, never $\lambda^{-t}$.

    Which kernel runs (``impl="auto"``): see :func:`scan_implementation`; the CPU runs a
    sequential loop, CUDA a compiled parallel scan with a chunked-scan fallback, and
    ``torch.func`` transforms an autograd-differentiable chunked scan.

    Args:
        lam: ``(d,)`` (shared over batch and time) or ``(batch, length, d)`` (input-dependent).
        u: ``(batch, length, d)`` inputs.
        h0: optional ``(batch, d)`` state before the first step; zeros if ``None``.
        reverse: run the recurrence backwards in time, $h_t = \lambda_t h_{t+1} + u_t$, with
            ``h0`` the state after the last step.
        impl: ``"auto"``, ``"loop"``, ``"chunked"``, ``"parallel"`` or ``"autograd"``.

    Returns:
        ``(batch, length, d)`` states, in the promoted dtype of the inputs.

    Raises:
        ValueError: wrong shapes or mismatched devices (the message gives expected and received).
        TypeError: integer or boolean inputs.

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (scan operator
        $(a_i, b_i) \circ (a_j, b_j) = (a_j a_i, a_j b_i + b_j)$).

    Example:
        >>> import torch
        >>> lam = torch.tensor([0.5])
        >>> u = torch.ones(1, 4, 1)
        >>> linear_scan(lam, u)[0, :, 0]  # h_t = 2 (1 - 0.5^(t+1))
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    if impl not in _IMPLS:
        raise ValueError(f"linear_scan: impl must be one of {_IMPLS}, got {impl!r}")
    dtype = _check(lam, u, h0)
    lam, u = lam.to(dtype), u.to(dtype)
    h0 = None if h0 is None else h0.to(dtype)
    return _dispatch(lam, u, h0, reverse, impl)
