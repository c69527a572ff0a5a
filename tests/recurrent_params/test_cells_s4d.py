"""S4D specifics: ZOH inits, the kernel against the Vandermonde sum, FFT == scan == step."""

import math

import pytest
import torch
from torch.nn.utils import parametrize

from recurrent_params import S4D, ExpMag, assign_


def _cell(**kw):
    return S4D(3, 6, **kw).double()


def test_lin_and_inv_inits_and_zoh():
    cell = _cell()
    n = torch.arange(6, dtype=torch.float64)
    A = torch.complex(torch.full((3, 6), -0.5, dtype=torch.float64), math.pi * n.expand(3, 6))
    torch.testing.assert_close(cell.A, A)
    dt = cell.log_dt.exp()
    assert ((dt >= 1e-3) & (dt <= 1e-1)).all()
    lam, dB = cell.discretize()
    torch.testing.assert_close(lam, torch.exp(dt[:, None] * A))
    torch.testing.assert_close(dB, (torch.exp(dt[:, None] * A) - 1) / A)
    inv = S4D(2, 4, init="inv").double()
    expected = 4 / math.pi * (4 / (2 * torch.arange(4.0, dtype=torch.float64) + 1) - 1)
    torch.testing.assert_close(inv.A.imag, expected.expand(2, 4))


def test_kernel_matches_explicit_vandermonde_sum():
    cell = _cell()
    L = 37
    lam, dB = cell.discretize()
    V = lam.unsqueeze(-1) ** torch.arange(L, dtype=torch.float64)  # (H, N, L)
    K = 2 * torch.einsum("hn,hnl->hl", cell.C * dB, V).real
    torch.testing.assert_close(cell.kernel(L), K, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("L", [1, 2, 50, 97])
def test_fft_scan_and_step_agree_with_a_state(L):
    cell = _cell()
    x = torch.randn(2, L, 3, dtype=torch.float64)
    h0 = torch.randn(2, cell.d_state, dtype=torch.complex128)
    y_fft, h_fft = cell(x, h0)
    cell.mode = "scan"
    y_scan, h_scan = cell(x, h0)
    ys, h = [], h0
    for x_t in x.unbind(1):
        y_t, h = cell.step(x_t, h)
        ys.append(y_t)
    for y in (y_scan, torch.stack(ys, 1)):
        torch.testing.assert_close(y_fft, y, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(h_fft, h_scan, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(h_fft, h, rtol=1e-10, atol=1e-11)


def test_float32_fft_and_scan_agree_on_long_sequences():
    cell = S4D(4, 8)
    x = torch.randn(2, 1024, 4)
    y_fft, h_fft = cell(x)
    cell.mode = "scan"
    y_scan, h_scan = cell(x)
    scale = y_scan.abs().max()
    assert (y_fft - y_scan).abs().max() / scale < 1e-4
    assert (h_fft - h_scan).abs().max() / h_scan.abs().max() < 1e-4


def test_lam_is_exposed_and_assignable_keeping_dt():
    cell = _cell()
    dt = cell.dt.detach().clone()
    assert cell.lam.shape == (18,) and cell.lam.is_complex()
    target = torch.polar(
        torch.full((18,), 0.9, dtype=torch.float64), torch.linspace(-3, 3, 18, dtype=torch.float64)
    )
    assign_(cell, "lam", target)
    torch.testing.assert_close(cell.lam, target)
    torch.testing.assert_close(cell.dt, dt)
    torch.testing.assert_close(torch.exp(dt[:, None] * cell.A).reshape(-1), target)


def test_plain_lam_takes_a_user_parametrization():
    cell = S4D(2, 3, parametrization=None).double()
    assert isinstance(cell.lam, torch.nn.Parameter)
    lam0 = cell.lam.detach().clone()
    x = torch.randn(1, 20, 2, dtype=torch.float64)
    y0, _ = cell(x)
    parametrize.register_parametrization(cell, "lam", ExpMag())
    torch.testing.assert_close(cell.lam, lam0)
    torch.testing.assert_close(cell(x)[0], y0)


def test_log_dt_gradient_is_finite_and_matches_the_scan():
    cell = S4D(2, 4, dt_min=1e-4, dt_max=1.0).double()
    x = torch.randn(2, 64, 2, dtype=torch.float64)
    (g_fft,) = torch.autograd.grad(cell(x)[0].pow(2).sum(), cell.log_dt)
    cell.mode = "scan"
    (g_scan,) = torch.autograd.grad(cell(x)[0].pow(2).sum(), cell.log_dt)
    assert torch.isfinite(g_fft).all()
    torch.testing.assert_close(g_fft, g_scan, rtol=1e-9, atol=1e-11)


def test_n_modes_is_per_channel_and_d_state_is_the_whole_state():
    cell = S4D(3, n_modes=5)
    assert (cell.n_modes, cell.d_state) == (5, 15)
    assert cell.lam.shape == (15,) and cell.initial_state(2).shape == (2, 15)
    assert "n_modes=5, d_state=15" in repr(cell)
    with pytest.raises(TypeError, match="d_state"):
        S4D(3, d_state=5)  # renamed: d_state is the total, not a constructor argument
    with pytest.raises(ValueError, match="expected n_modes a positive int"):
        S4D(3, 0)


def test_errors():
    with pytest.raises(ValueError, match="init must be one of"):
        S4D(2, 4, init="legs")
    with pytest.raises(ValueError, match="mode must be one of"):
        S4D(2, 4, mode="conv")
    cell = S4D(2, 4)
    with pytest.raises(ValueError, match=r"expected every \|lam\| in \(0, 1\)"):
        assign_(cell, "lam", torch.full((8,), 1.5 + 0j))
