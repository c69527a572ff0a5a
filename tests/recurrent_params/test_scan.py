"""linear_scan against the float64 Python loop, forward and backward, every kernel."""

import importlib
import shutil
import warnings

import pytest
import torch

from recurrent_params import linear_scan
from recurrent_params.scan import _alloc, _compiled, scan_implementation
from recurrent_params.scan._kernels import loop_scan, parallel_scan
from recurrent_params.scan._reference import reference_scan

IMPLS = ["auto", "compiled", "loop", "chunked", "autograd", "parallel"]


def _lam(shape, dtype, r_max=0.999, generator=None):
    r = 0.2 + (r_max - 0.2) * torch.rand(shape, dtype=torch.float64)
    if dtype.is_complex:
        return torch.polar(r, 6.0 * torch.rand(shape, dtype=torch.float64)).to(dtype)
    sign = torch.where(torch.rand(shape) < 0.3, -1.0, 1.0).to(torch.float64)
    return (r * sign).to(dtype)


def _inputs(B, L, d, dtype, per_step, with_h0, device="cpu"):
    lam = _lam((B, L, d) if per_step else (d,), dtype)
    u = torch.randn(B, L, d, dtype=dtype)
    h0 = torch.randn(B, d, dtype=dtype) if with_h0 else None
    out = [t if t is None else t.to(device).requires_grad_() for t in (lam, u, h0)]
    return out


def _rel_close(actual, expected, rtol=1e-10):
    err = (actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30)
    assert err <= rtol, f"relative error {err:.2e} > {rtol:.0e}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_float64_loop_forward_and_backward(impl, dtype, per_step, with_h0, reverse):
    B, L, d = 3, 150, 4  # L not a multiple of the chunk: exercises the tail
    lam, u, h0 = _inputs(B, L, d, dtype, per_step, with_h0)
    h = linear_scan(lam, u, h0, reverse=reverse, impl=impl)
    if reverse:
        flip = (lambda t: t) if not per_step else (lambda t: t.flip(1))
        ref = reference_scan(flip(lam), u.flip(1), h0).flip(1)
    else:
        ref = reference_scan(lam, u, h0)
    _rel_close(h, ref)
    w = torch.randn_like(ref)
    leaves = [t for t in (lam, u, h0) if t is not None]
    grads = torch.autograd.grad((h * w.conj()).real.sum(), leaves)
    grads_ref = torch.autograd.grad((ref * w.conj()).real.sum(), leaves)
    for got, want in zip(grads, grads_ref):
        _rel_close(got, want)


@pytest.mark.parametrize("impl", ["compiled", "loop", "chunked"])
def test_gradcheck_and_gradgradcheck(impl):
    lam, u, h0 = _inputs(2, 9, 3, torch.complex128, True, True)
    fn = lambda lam, u, h0: linear_scan(lam, u, h0, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (lam, u, h0))
    assert torch.autograd.gradgradcheck(fn, (lam, u, h0))
    lam1 = _lam((3,), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda lam, u: linear_scan(lam, u, impl=impl), (lam1, u))


def test_mixed_dtypes_promote_and_real_lam_gets_real_grad():
    lam = _lam((4,), torch.float32).requires_grad_()
    u = torch.randn(2, 7, 4, dtype=torch.complex64)
    h = linear_scan(lam, u)
    assert h.dtype == torch.complex64
    (g,) = torch.autograd.grad(h.abs().sum(), lam)
    assert g.dtype == torch.float32
    ref = reference_scan(lam.detach().double(), u.to(torch.complex128))
    torch.testing.assert_close(h, ref.to(torch.complex64), rtol=1e-5, atol=1e-5)


def test_constant_and_per_step_lam_agree():
    lam, u, h0 = _inputs(2, 33, 3, torch.complex128, False, True)
    full = lam.detach().expand(2, 33, 3)
    torch.testing.assert_close(linear_scan(lam, u, h0), linear_scan(full, u, h0))


@pytest.mark.parametrize("impl", ["compiled", "loop"])
def test_no_per_step_graph_is_kept(impl):
    lam, u, _ = _inputs(2, 64, 3, torch.complex64, False, False)
    h = linear_scan(lam, u, impl=impl)
    assert type(h.grad_fn).__name__ == "_LinearScanFnBackward"
    assert {type(f[0]).__name__ for f in h.grad_fn.next_functions if f[0] is not None} <= {
        "AccumulateGrad"
    }


@pytest.mark.parametrize("impl", ["compiled", "loop"])
@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_mode_ad_matches_the_reference(per_step, reverse, impl):
    import torch.autograd.forward_ad as fwAD

    lam, u, h0 = (t.detach() for t in _inputs(2, 40, 3, torch.complex128, per_step, True))
    tangents = [torch.randn_like(t) for t in (lam, u, h0)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(p, t) for p, t in zip((lam, u, h0), tangents)]
        out = fwAD.unpack_dual(linear_scan(*duals, reverse=reverse, impl=impl)).tangent

    def ref(lam, u, h0):
        if not reverse:
            return reference_scan(lam, u, h0)
        flip = (lambda t: t.flip(1)) if per_step else (lambda t: t)
        return reference_scan(flip(lam), u.flip(1), h0).flip(1)

    _, expected = torch.func.jvp(ref, (lam, u, h0), tuple(tangents))
    _rel_close(out, expected)


def test_torch_func_transforms_use_the_autograd_path():
    lam, u, h0 = (t.detach() for t in _inputs(2, 20, 3, torch.float64, False, True))

    def loss(lam):
        return linear_scan(lam, u, h0).pow(2).sum()

    def loss_ref(lam):
        return reference_scan(lam, u, h0).pow(2).sum()

    torch.testing.assert_close(torch.func.hessian(loss)(lam), torch.func.hessian(loss_ref)(lam))
    batched = torch.func.vmap(lambda uu: linear_scan(lam, uu.unsqueeze(0)))(u)
    torch.testing.assert_close(batched.squeeze(1), reference_scan(lam, u))


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_parallel_combine_on_cpu_generic_mode(dtype):
    lam, u, h0 = (t.detach() for t in _inputs(2, 37, 3, dtype, True, True))
    h = parallel_scan(lam, u, h0, combine_mode="generic")
    torch.testing.assert_close(h, reference_scan(lam, u, h0).to(dtype), rtol=1e-4, atol=1e-4)


def test_parallel_failure_falls_back_to_chunked_with_a_warning(monkeypatch):
    from recurrent_params.scan import _kernels

    module = importlib.import_module("recurrent_params.scan.linear_scan")  # not the function

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(_kernels, "parallel_scan", broken)
    monkeypatch.setattr(module, "_PARALLEL_BROKEN", set())
    lam, u, h0 = _inputs(2, 30, 3, torch.complex128, False, True)
    with pytest.warns(RuntimeWarning, match="falling back to the chunked scan"):
        h = linear_scan(lam, u, h0, impl="parallel")
    _rel_close(h, reference_scan(lam, u, h0))
    assert module._PARALLEL_BROKEN == {"cpu"}


def test_cpu_default_is_the_compiled_scan_where_a_compiler_exists():
    expected = "compiled" if _compiled.available() else "loop"
    assert scan_implementation("cpu") == expected
    if shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"):
        assert expected == "compiled", _compiled._state["error"]


def test_compiled_scan_reads_conjugate_negative_and_strided_views():
    lam, u, h0 = (t.detach() for t in _inputs(2, 40, 5, torch.complex128, True, True))
    wide = torch.randn(2, 40, 10, dtype=torch.complex128)[:, :, ::2]  # non-contiguous
    for lam_in, u_in in [(lam.conj(), -u.conj()), (lam, wide), (lam.transpose(0, 1).contiguous()
                         .transpose(0, 1), u)]:
        got = linear_scan(lam_in, u_in, h0, impl="compiled")
        want = reference_scan(lam_in.resolve_conj(), u_in.resolve_conj().resolve_neg(), h0)
        _rel_close(got, want, 1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_compiled_single_precision_matches_the_float64_reference(dtype):
    lam, u, h0 = _inputs(16, 300, 8, dtype, False, True)
    h = linear_scan(lam, u, h0, impl="compiled")
    wide = [t.detach().to(torch.promote_types(dtype, torch.float64)).requires_grad_()
            for t in (lam, u, h0)]
    ref = reference_scan(*wide)
    torch.testing.assert_close(h.detach(), ref.detach().to(dtype), rtol=1e-4, atol=1e-4)
    w = torch.randn_like(ref)
    g = torch.autograd.grad((h * w.to(dtype).conj()).real.sum(), (lam, u, h0))
    g_ref = torch.autograd.grad((ref * w.conj()).real.sum(), wide)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64,
                                   torch.complex128])
@pytest.mark.parametrize("d", [1, 3, 8, 9, 17, 40])
@pytest.mark.parametrize("reverse", [False, True])
def test_compiled_kernel_at_every_row_width_matches_the_loop(dtype, d, reverse):
    """Row widths on both sides of a 64-byte cache line (the reverse scan walks rows line by
    line from the end, then the leftover head), with and without h0, shared and per-step lam,
    and the fused lam-gradient sum, against the Python loop of the same scan in float64."""
    if not _compiled.available():
        pytest.skip("no C compiler")
    wide = torch.promote_types(dtype, torch.float64)
    tol = 1e-12 if dtype in (torch.float64, torch.complex128) else 2e-5
    for per_step, with_h0 in [(False, False), (False, True), (True, True)]:
        lam, u, h0 = (None if t is None else t.detach() for t in
                      _inputs(3, 37, d, dtype, per_step, with_h0))
        s = torch.randn_like(u)
        got, acc = _compiled.compiled_scan(lam, u, h0, reverse, dot_with=s)
        want, acc_want = loop_scan(*(None if t is None else t.to(wide) for t in (lam, u, h0)),
                                   reverse, dot_with=s.to(wide))
        _rel_close(got.to(wide), want, tol)
        _rel_close(acc.to(wide), acc_want, tol)


def test_plain_build_without_instruction_set_clones_agrees(monkeypatch, tmp_path):
    """The portable build (-DRP_NO_CLONES: SSE2 only on x86-64) gives the same scan."""
    if not _compiled.available():
        pytest.skip("no C compiler")
    lam, u, h0 = (t.detach() for t in _inputs(2, 50, 21, torch.complex64, False, True))
    s = torch.randn_like(u)
    fast = _compiled.compiled_scan(lam, u, h0, True, dot_with=s)
    monkeypatch.setenv("RECURRENT_PARAMS_CACHE", str(tmp_path))
    monkeypatch.setattr(_compiled, "_FLAGS", [*_compiled._FLAGS, "-DRP_NO_CLONES"])
    monkeypatch.setattr(_compiled, "_state", {"lib": _compiled._build(), "tried": True,
                                              "error": None})
    plain = _compiled.compiled_scan(lam, u, h0, True, dot_with=s)
    assert list(tmp_path.glob("cpu_scan_*.so"))
    for a, b in zip(fast, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_missing_compiler_falls_back_to_the_loop_with_one_warning(monkeypatch):
    monkeypatch.setattr(_compiled, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setattr(_compiled, "_compiler", lambda: None)
    monkeypatch.delenv("RECURRENT_PARAMS_NO_COMPILED_SCAN", raising=False)
    lam, u, h0 = _inputs(2, 30, 3, torch.complex128, False, True)
    with pytest.warns(RuntimeWarning, match="compiled CPU scan is unavailable") as record:
        assert scan_implementation("cpu") == "loop"
        h = linear_scan(lam, u, h0, impl="compiled")
        linear_scan(lam, u, h0)
    assert len([w for w in record if "compiled CPU scan" in str(w.message)]) == 1
    _rel_close(h, reference_scan(lam, u, h0))
    g = torch.autograd.grad(h.abs().sum(), lam)[0]
    _rel_close(g, torch.autograd.grad(reference_scan(lam, u, h0).abs().sum(), lam)[0])


def test_opt_out_switch_is_silent(monkeypatch, recwarn):
    monkeypatch.setattr(_compiled, "_state", {"lib": None, "tried": False, "error": None})
    monkeypatch.setenv("RECURRENT_PARAMS_NO_COMPILED_SCAN", "1")
    assert scan_implementation("cpu") == "loop"
    assert not [w for w in recwarn if "compiled CPU scan" in str(w.message)]


def test_compiled_impl_rejects_other_devices():
    u = torch.randn(1, 3, 2, device="meta")
    with pytest.raises(ValueError, match="runs on CPU only"):
        linear_scan(torch.ones(2, device="meta"), u, impl="compiled")


def test_errors_name_expected_and_received():
    u = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"\(batch, length, d\), got \(2, 5\)"):
        linear_scan(torch.ones(3), u[:, :, 0])
    with pytest.raises(ValueError, match=r"\(3,\) or \(2, 5, 3\).*got \(4,\)"):
        linear_scan(torch.ones(4), u)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3\), got \(3,\)"):
        linear_scan(torch.ones(3), u, torch.zeros(3))
    with pytest.raises(TypeError, match="floating or complex, got torch.int64"):
        linear_scan(torch.ones(3, dtype=torch.long), u)
    with pytest.raises(ValueError, match="impl must be one of"):
        linear_scan(torch.ones(3), u, impl="fft")


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["compiled", "loop", "chunked"])
def test_long_sequence_near_unit_modulus(impl):
    L, d = 65_536, 2
    r = torch.tensor([1 - 1e-7, 0.999], dtype=torch.float64)
    lam = torch.polar(r, torch.tensor([0.01, 1.0], dtype=torch.float64)).requires_grad_()
    u = torch.randn(1, L, d, dtype=torch.complex128, requires_grad=True)
    h = linear_scan(lam, u, impl=impl)
    assert torch.isfinite(torch.view_as_real(h)).all()
    ref = reference_scan(lam, u)
    _rel_close(h, ref, 1e-9)
    w = torch.randn_like(h)
    g = torch.autograd.grad((h * w.conj()).real.sum(), (lam, u))
    g_ref = torch.autograd.grad((ref * w.conj()).real.sum(), (lam, u))
    for a, b in zip(g, g_ref):
        _rel_close(a, b, 1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_cuda_parallel_matches_reference(device, dtype):
    lam, u, h0 = _inputs(4, 300, 8, dtype, False, True, device=device)
    h = linear_scan(lam, u, h0)
    ref = reference_scan(lam.double(), u, h0)
    torch.testing.assert_close(h, ref.to(dtype), rtol=1e-4, atol=1e-4)
    g = torch.autograd.grad(h.abs().sum(), (lam, u, h0))
    g_ref = torch.autograd.grad(ref.abs().sum(), (lam, u, h0))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-3, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_compiled_single_precision_long_sequence_near_unit_modulus(dtype):
    """|lam| = 1 - 1e-7 (rounded to float32), L = 65,536: finite and close to float64."""
    L = 65_536
    r = torch.tensor([1 - 1e-7, 0.999, 1e-3])
    lam = (torch.polar(r, torch.tensor([0.01, 1.0, 2.0])) if dtype.is_complex else r).to(dtype)
    lam.requires_grad_()
    u = torch.randn(2, L, 3, dtype=dtype, requires_grad=True)
    h = linear_scan(lam, u, impl="compiled")
    ref = reference_scan(lam.detach(), u.detach())
    assert torch.isfinite(torch.view_as_real(h) if h.is_complex() else h).all()
    scale = ref.abs().amax(1, keepdim=True)  # per-channel scale (the channels differ by 1e3)
    assert ((h.detach() - ref) / scale).abs().max() < 1e-3
    w = torch.randn_like(ref)
    g = torch.autograd.grad((h * w.to(dtype).conj()).real.sum(), (lam, u))
    lam64 = lam.detach().to(ref.dtype).requires_grad_()
    u64 = u.detach().to(ref.dtype).requires_grad_()
    g_ref = torch.autograd.grad((reference_scan(lam64, u64) * w.conj()).real.sum(), (lam64, u64))
    for a, b in zip(g, g_ref):
        err = (a - b).abs().max() / b.abs().max()
        assert err < 1e-3, f"relative gradient error {err:.2e}"


def test_output_cache_reuses_a_buffer_only_once_nothing_references_it(monkeypatch):
    monkeypatch.setattr(_alloc, "_cache", [])
    monkeypatch.setenv("RECURRENT_PARAMS_SCAN_CACHE_MB", "4")  # room for one buffer only
    like = torch.empty(2, 1024, 512)  # 4 MiB: the smallest size the cache takes
    first = _alloc.empty_output(like)
    ptr = first.data_ptr()
    assert first.shape == like.shape and first.is_contiguous() and first._base is None
    holders = {
        "tensor": lambda t: t,
        "view": lambda t: t[1:, ::2],
        "storage": lambda t: t.untyped_storage(),
        "numpy": lambda t: t.numpy(),
        "grad": lambda t: setattr(leaf, "grad", t) or leaf,
        "saved for backward": lambda t: (leaf * t).sum(),
    }
    leaf = torch.zeros_like(like, requires_grad=True)
    for name, hold in holders.items():
        kept = hold(first)
        del first
        other = _alloc.empty_output(like)
        assert other.data_ptr() != ptr, f"reused while a {name} still references it"
        del other
        leaf.grad = None
        if name == "saved for backward":
            kept.backward()  # frees the saved tensor
        del kept
        first = _alloc.empty_output(like)
        assert first.data_ptr() == ptr, f"not reused after the {name} was dropped"
    del first
    assert len(_alloc._cache) == 1
    assert _alloc.empty_cache() == like.numel() * like.element_size()
    assert _alloc._cache == []


def test_output_cache_keeps_results_apart_and_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(_alloc, "_cache", [])
    lam, u = _lam((256,), torch.complex64), torch.randn(2, 1024, 256, dtype=torch.complex64)
    h1 = linear_scan(lam, u)
    kept = h1.clone()
    h2 = linear_scan(lam, 2 * u)  # h1 is alive: h2 gets another buffer
    assert h1.data_ptr() != h2.data_ptr()
    torch.testing.assert_close(h1, kept, rtol=0, atol=0)
    torch.testing.assert_close(h2, 2 * kept)
    ptr = h2.data_ptr()
    del h2
    assert linear_scan(lam, u).data_ptr() == ptr  # freed: taken again
    monkeypatch.setenv("RECURRENT_PARAMS_SCAN_CACHE_MB", "0")
    h3 = linear_scan(lam, u)
    assert h3.data_ptr() not in [e[0].data_ptr() for e in _alloc._cache]
    assert len(_alloc._cache) == 1  # only h1's buffer, still in use, stays
    torch.testing.assert_close(h3, kept)


# -- non-finite values travel forward in time only (issue 21) -----------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("reverse", [False, True])
def test_nonfinite_input_stays_causal(impl, dtype, bad, reverse):
    g = torch.Generator().manual_seed(3)
    lam = _lam((3,), dtype, generator=g)
    u = torch.randn(2, 200, 3, dtype=torch.float64, generator=g).to(dtype)
    ub = u.clone()
    ub[0, 120, 1] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a parallel-scan fallback notice
        clean = linear_scan(lam, u, impl=impl, reverse=reverse)
        h = linear_scan(lam, ub, impl=impl, reverse=reverse)
    ref = reference_scan(lam, ub.flip(1)).flip(1) if reverse else reference_scan(lam, ub)
    before = slice(121, None) if reverse else slice(0, 120)
    after = slice(0, 121) if reverse else slice(120, None)
    torch.testing.assert_close(h[0, before, 1], clean[0, before, 1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h[:, :, [0, 2]], clean[:, :, [0, 2]], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h[1], clean[1], rtol=1e-12, atol=1e-12)
    assert not torch.isfinite(h[0, after, 1]).any()
    # the float64 loop has non-finite values at the same places (complex inf arithmetic may
    # write inf or NaN into a part, differently per kernel) and the same finite ones
    finite = torch.isfinite(h)
    assert torch.equal(finite, torch.isfinite(ref))
    torch.testing.assert_close(h[finite], ref[finite], rtol=1e-10, atol=1e-12)


def test_bad_reverse_and_h0_are_clear_errors():
    lam, u = torch.tensor([0.5]), torch.ones(2, 3, 1)
    with pytest.raises(TypeError, match="reverse must be a bool, got 'yes'"):
        linear_scan(lam, u, reverse="yes")
    with pytest.raises(TypeError, match="h0 must be a tensor or None, got list"):
        linear_scan(lam, u, [[0.0], [0.0]])


def test_empty_batch_and_length_give_empty_states():
    lam = torch.tensor([0.5, 0.25])
    assert linear_scan(lam, torch.ones(0, 3, 2)).shape == (0, 3, 2)
    assert linear_scan(lam, torch.ones(2, 0, 2)).shape == (2, 0, 2)
