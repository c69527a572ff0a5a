"""The compiled CPU scan split across threads gives what one thread gives."""

import pytest
import torch

from recurrent_params import linear_scan
from recurrent_params.scan import _compiled

pytestmark = pytest.mark.skipif(not _compiled.available(), reason="no C compiler here")


@pytest.fixture
def threads():
    before = torch.get_num_threads()

    def use(n):
        torch.set_num_threads(n)
        return torch.get_num_threads()

    yield use
    torch.set_num_threads(before)


def _lam(d, dtype):
    if dtype.is_complex:
        return torch.polar(torch.rand(d, dtype=torch.float64) * 0.99,
                           torch.rand(d, dtype=torch.float64) * 6.28).to(dtype)
    return (torch.rand(d, dtype=torch.float64) * 1.8 - 0.9).to(dtype)


def test_row_chunks_cover_the_batch_once(threads, monkeypatch):
    monkeypatch.setattr(_compiled, "MIN_PARALLEL_ELEMENTS", 1)
    got = threads(3)
    for batch in (1, 2, 3, 7, 16):
        chunks = _compiled._row_chunks(batch, 5)
        assert len(chunks) == min(got, batch)
        assert chunks[0][0] == 0 and chunks[-1][1] == batch
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(chunks, chunks[1:]))


def test_small_scans_stay_on_one_call(threads):
    threads(4)
    assert _compiled._row_chunks(16, (_compiled.MIN_PARALLEL_ELEMENTS // 16) - 1) == [(0, 16)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64,
                                   torch.complex128])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("per_step", [False, True])
def test_threads_match_one_thread(threads, monkeypatch, dtype, reverse, per_step):
    monkeypatch.setattr(_compiled, "MIN_PARALLEL_ELEMENTS", 1)
    B, L, d = 5, 9, 6
    lam = _lam(d, dtype)
    if per_step:
        lam = lam * torch.rand(B, L, d, dtype=torch.float64).to(lam.real.dtype)
    u = torch.randn(B, L, d, dtype=dtype)
    h0 = torch.randn(B, d, dtype=dtype)
    dot = torch.randn(B, L, d, dtype=dtype)
    threads(1)
    one = _compiled.compiled_scan(lam, u, h0, reverse)
    one_dot = _compiled.compiled_scan(lam, u, h0, reverse, dot_with=dot)
    assert threads(3) == 3
    assert len(_compiled._row_chunks(B, L * d)) == 3
    many = _compiled.compiled_scan(lam, u, h0, reverse)
    many_dot = _compiled.compiled_scan(lam, u, h0, reverse, dot_with=dot)
    assert torch.equal(one, many)  # rows are independent: bitwise the same
    assert torch.equal(one_dot[0], many_dot[0])
    torch.testing.assert_close(one_dot[1], many_dot[1])


def test_threaded_gradients_match_float64_loop(threads, monkeypatch):
    monkeypatch.setattr(_compiled, "MIN_PARALLEL_ELEMENTS", 1)
    threads(2)
    B, L, d = 4, 12, 3
    lam = _lam(d, torch.complex128).requires_grad_()
    u = torch.randn(B, L, d, dtype=torch.complex128, requires_grad=True)
    g = torch.randn(B, L, d, dtype=torch.complex128)
    got = torch.autograd.grad((linear_scan(lam, u, impl="compiled") * g).real.sum(), (lam, u))
    want = torch.autograd.grad((linear_scan(lam, u, impl="loop") * g).real.sum(), (lam, u))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
