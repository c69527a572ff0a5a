r"""The linear-scan core $h_t = \lambda_t h_{t-1} + u_t$ and its reverse-scan backward."""

from __future__ import annotations

import warnings

import torch
import torch.autograd.forward_ad as fwAD

from recurrent_params.scan import _compiled, _kernels
from recurrent_params.scan._alloc import empty_output

__all__ = ["linear_scan", "scan_implementation"]

_IMPLS = ("auto", "compiled", "loop", "chunked", "parallel", "autograd")
_SEQUENTIAL = ("compiled", "loop")  # kernels that fuse the shared-lam gradient into backward
_PARALLEL_BROKEN: set[str] = set()


def scan_implementation(device: torch.device | str, requires_grad: bool = True) -> str:
    """Name of the kernel that ``linear_scan(..., impl="auto")`` runs on ``device``.

    * CPU: ``"compiled"`` (the sequential scan in C, built at first use with the system C
      compiler and streamed over contiguous memory; see ``docs/benchmarks.md``), wrapped in the
      custom autograd function; ``"loop"`` (one ``addcmul`` per step in Python) where no C
      compiler is available (one ``RuntimeWarning`` says so) or
      ``RECURRENT_PARAMS_NO_COMPILED_SCAN=1`` is set.
    * CUDA: ``"parallel"`` (``associative_scan`` compiled with ``torch.compile``), or
      ``"chunked"`` if compiling failed once on this device type (a warning says so).
    * Inside ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``, ``hessian``): ``"autograd"``,
      the chunked scan differentiated by plain autograd (the custom function has no vmap/jvp rule).

    Examples:
        >>> scan_implementation("cpu") in ("compiled", "loop")
        True
    """
    device = torch.device(device)
    if torch._C._are_functorch_transforms_active():
        return "autograd"
    if device.type == "cuda":
        return "chunked" if device.type in _PARALLEL_BROKEN else "parallel"
    if device.type == "cpu" and _compiled.available():
        return "compiled"
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
    if h0 is not None and not isinstance(h0, torch.Tensor):
        raise TypeError(f"linear_scan: h0 must be a tensor or None, got {type(h0).__name__}")
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


def _compiled_ok(*tensors) -> bool:
    """Whether the compiled kernel takes these (non-``None``) tensors: CPU, one supported dtype."""
    dtype = tensors[0].dtype
    return dtype in _compiled.DTYPES and all(
        t.device.type == "cpu" and t.dtype == dtype for t in tensors if t is not None
    )


def _sequential(impl: str, lam, u, h0, reverse: bool, dot_with=None):
    """The compiled kernel or the Python loop (same arguments, same results)."""
    if impl == "compiled":
        if u.device.type != "cpu":
            raise ValueError(f"linear_scan: impl='compiled' runs on CPU only, got {u.device}")
        if _compiled.available() and _compiled_ok(u, lam, h0, dot_with):
            return _compiled.compiled_scan(lam, u, h0, reverse, dot_with=dot_with)
    return _kernels.loop_scan(lam, u, h0, reverse, dot_with=dot_with)


def _kernel(impl: str, lam, u, h0, reverse: bool) -> torch.Tensor:
    if impl in _SEQUENTIAL:
        return _sequential(impl, lam, u, h0, reverse)
    if impl in ("chunked", "autograd"):
        return _kernels.chunked_scan(lam, u, h0, reverse)
    if impl == "parallel":
        mode = "pointwise" if u.device.type == "cuda" else "generic"
        try:
            return _kernels.parallel_scan(lam, u, h0, reverse, combine_mode=mode)
        except Exception as err:  # compile failures: fall back, loudly, once per device type
            _PARALLEL_BROKEN.add(u.device.type)
            warnings.warn(
                f"linear_scan: the parallel scan failed on {u.device.type} "
                f"({type(err).__name__}: {err}); falling back to the chunked scan",
                RuntimeWarning,
                stacklevel=3,
            )
            return _kernels.chunked_scan(lam, u, h0, reverse)
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
        # primal values only (forward-mode AD hands dual tensors to forward)
        h = _kernel(impl, lam.detach(), u.detach(), None if h0 is None else h0.detach(), reverse)
        ctx.save_for_backward(lam, h0, h)
        ctx.save_for_forward(lam, h0, h)
        ctx.reverse, ctx.impl = reverse, impl
        return h

    @staticmethod
    def jvp(ctx, d_lam, d_u, d_h0, _reverse, _impl):
        """Forward mode: the tangent obeys the same scan,
        $\\dot h_t = \\lambda_t \\dot h_{t-1} + \\dot\\lambda_t h_{t-1} + \\dot u_t$."""
        lam, h0, h = (None if t is None else t.detach() for t in ctx.saved_tensors)
        v = torch.zeros_like(h) if d_u is None else d_u
        if d_lam is not None:
            edge = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)
            parts = [h[:, 1:], edge] if ctx.reverse else [edge, h[:, :-1]]
            h_in = torch.cat(parts, 1)  # state multiplied by lam_t
            v = v + d_lam * h_in  # (B, L, d)
        return _dispatch(lam, v, d_h0, ctx.reverse, ctx.impl)

    @staticmethod
    def backward(ctx, g):
        lam, h0, h = ctx.saved_tensors
        reverse, impl = ctx.reverse, ctx.impl
        need_lam, need_u, need_h0 = ctx.needs_input_grad[:3]
        per_step = lam.dim() == 3
        lam_c = lam.conj().resolve_conj()  # materialise once, not at every step
        if per_step:  # the adjoint uses lam of the neighbouring step (wrapped value unused)
            lam_c = lam_c.roll(1 if reverse else -1, dims=1)
        fused = None
        if need_lam and not per_step and impl in _SEQUENTIAL and not torch.is_grad_enabled():
            # adjoint scan and the lam gradient in one pass over memory
            a, fused = _sequential(impl, lam_c, g, None, not reverse, dot_with=h)
        else:
            a = _dispatch(lam_c, g, None, not reverse, impl)  # (B, L, d)
        first = -1 if reverse else 0  # the step that reads h0
        g_lam = g_h0 = None
        if need_lam:
            # h_in[:, t] is the state that lam_t multiplies: h[:, t-1] (h0 at the first step)
            a_in, h_in = (a[:, :-1], h[:, 1:]) if reverse else (a[:, 1:], h[:, :-1])
            if per_step and torch.is_grad_enabled():  # double backward: differentiable ops
                edge = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)
                parts = [h_in, edge] if reverse else [edge, h_in]
                g_lam = a * torch.cat(parts, 1).conj()  # (B, L, d)
            elif per_step:
                g_lam = empty_output(a)  # (B, L, d)
                rest = g_lam[:, :-1] if reverse else g_lam[:, 1:]
                torch.mul(a_in, h_in.conj(), out=rest)
                edge = g_lam[:, first]
                if h0 is None:
                    edge.zero_()
                else:
                    torch.mul(a[:, first], h0.conj(), out=edge)
            else:
                g_lam = _dot_over_batch_time(a_in, h_in) if fused is None else fused  # (d,)
                if h0 is not None:
                    g_lam = g_lam + (a[:, first] * h0.conj()).sum(0)
        if need_h0 and h0 is not None:
            lam_first = lam[:, first] if per_step else lam
            g_h0 = lam_first.conj() * a[:, first]  # (B, d)
        return _like(g_lam, lam), a if need_u else None, _like(g_h0, h0), None, None


def _dot_over_batch_time(a: torch.Tensor, h: torch.Tensor, block: int = 64) -> torch.Tensor:
    """``(a * conj(h)).sum((0, 1))`` in time blocks, so no (B, L, d) temporary is allocated
    (fresh large temporaries are page-fault bound on CPU)."""
    if torch.is_grad_enabled() and (a.requires_grad or h.requires_grad):
        return (a * h.conj()).sum((0, 1))  # double backward: keep it differentiable
    acc = torch.zeros_like(a[0, 0])  # (d,)
    for s in range(0, a.shape[1], block):
        acc += (a[:, s : s + block] * h[:, s : s + block].conj()).sum((0, 1))
    return acc


def _has_tangent(*tensors) -> bool:
    """Whether forward-mode AD (``torch.autograd.forward_ad``) is tracking any input."""
    if fwAD._current_level < 0:
        return False
    return any(t is not None and fwAD.unpack_dual(t).tangent is not None for t in tensors)


def _dispatch(lam, u, h0, reverse: bool, impl: str) -> torch.Tensor:
    if impl == "auto":
        impl = scan_implementation(u.device)
    if impl == "autograd" or torch._C._are_functorch_transforms_active():
        return _kernels.chunked_scan(lam, u, h0, reverse)
    needs_graph = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (lam, u, h0)
    )
    needs_graph = needs_graph or _has_tangent(lam, u, h0)
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

    Which kernel runs (``impl="auto"``): see :func:`scan_implementation`; the CPU runs the
    sequential scan compiled from C (a Python loop over time where no C compiler exists),
    CUDA a compiled parallel scan with a chunked-scan fallback, and ``torch.func`` transforms
    an autograd-differentiable chunked scan.

    Cost on CPU: forward + backward stream about 40 bytes per complex64 element (20 in
    float32) through memory: read ``u``, write ``h``; read the incoming gradient and ``h``,
    write the input gradient (the shared-``lam`` gradient is summed in the same pass). CPU
    outputs of 4 MiB or more are taken from a small cache of this package's own freed buffers
    instead of being page-faulted in afresh at every call (``RECURRENT_PARAMS_SCAN_CACHE_MB``,
    default 1024, ``0`` switches it off; :func:`recurrent_params.scan.empty_cache` releases the
    idle ones).

    Args:
        lam: ``(d,)`` (shared over batch and time) or ``(batch, length, d)`` (input-dependent).
        u: ``(batch, length, d)`` inputs.
        h0: optional ``(batch, d)`` state before the first step; zeros if ``None``.
        reverse: run the recurrence backwards in time, $h_t = \lambda_t h_{t+1} + u_t$, with
            ``h0`` the state after the last step.
        impl: ``"auto"``, ``"compiled"`` (CPU only), ``"loop"``, ``"chunked"``, ``"parallel"``
            or ``"autograd"``.

    Returns:
        ``(batch, length, d)`` states, in the promoted dtype of the inputs. An empty batch or
        length gives an empty result of that shape.

    Raises:
        ValueError: wrong shapes or mismatched devices (the message gives expected and received).
        TypeError: non-tensor, integer or boolean inputs, or a ``reverse`` that is not a bool.

    Non-finite values are not checked (NaN in, NaN out), and they travel only forward in
    time, as the recurrence says: a NaN or inf in ``u`` at step $t$ turns the states of that
    sequence and channel from step $t$ on (up to $t$ with ``reverse=True``) NaN/inf and leaves
    every other state as it was; one in ``h0`` or in a shared ``lam`` reaches every state it
    multiplies.

    References:
        Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
        arXiv 2303.06349 (scan operator
        $(a_i, b_i) \circ (a_j, b_j) = (a_j a_i, a_j b_i + b_j)$).

    Examples:
        >>> import torch
        >>> lam = torch.tensor([0.5])
        >>> u = torch.ones(1, 4, 1)
        >>> linear_scan(lam, u)[0, :, 0]  # h_t = 2 (1 - 0.5^(t+1))
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    if impl not in _IMPLS:
        raise ValueError(f"linear_scan: impl must be one of {_IMPLS}, got {impl!r}")
    if not isinstance(reverse, bool):
        raise TypeError(f"linear_scan: reverse must be a bool, got {reverse!r}")
    dtype = _check(lam, u, h0)
    lam, u = lam.to(dtype), u.to(dtype)
    h0 = None if h0 is None else h0.to(dtype)
    return _dispatch(lam, u, h0, reverse, impl)
