"""Bad inputs to the core package: parametrizations, input normalisation, scan, cells."""

from __future__ import annotations

import torch
from torch import nn

from optim.stacked import StackedTrainer
from recurrent_params import (
    ALIF,
    LRU,
    S4D,
    DenseRNN,
    DiagonalRNN,
    ExpMag,
    InputNorm,
    Polar,
    assign_,
    input_gamma,
    linear_scan,
    normalize_input,
)
from tests.bad_inputs.case import Case

NAN, INF = float("nan"), float("inf")

#: every cell with a convolution mode, in FFT mode (S4D's default).
_FFT_CELLS = {
    "s4d": lambda: S4D(2, 4),
    "lru": lambda: LRU(2, 4, mode="fft"),
    "diagonal_rnn": lambda: DiagonalRNN(2, 4, 2, mode="fft"),
    "diagonal_rnn-real": lambda: DiagonalRNN(2, 4, 2, complex=False, mode="fft"),
    "dense_rnn": lambda: DenseRNN(2, 4, 2, mode="fft"),
}
_COMPLEX_CELLS = {k: _FFT_CELLS[k] for k in ("s4d", "lru", "diagonal_rnn")}
_ALL_CELLS = {**_FFT_CELLS, "alif": lambda: ALIF(2, 4)}


def _fft_nonfinite(make, bad):
    """FFT output on a sequence with one NaN/inf at step 5, with the clean and scan outputs."""
    torch.manual_seed(0)
    cell = make().double()
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    xb = x.clone()
    xb[0, 5, 0] = bad
    with torch.no_grad():
        y_clean = cell(x)[0]
        y = cell(xb)[0]
        cell.mode = "scan"
        y_scan = cell(xb)[0]
    return y, y_clean, y_scan


def _check_causal(out):
    y, y_clean, y_scan = out
    torch.testing.assert_close(y[0, :5], y_clean[0, :5])  # before the bad step: untouched
    torch.testing.assert_close(y[1:], y_clean[1:])  # the other sequences: untouched
    assert not bool(torch.isfinite(y[0, 5:]).all())  # NaN in, NaN out, from that step on
    torch.testing.assert_close(y, y_scan, equal_nan=True)  # = scan mode


def _check_empty(cell):
    def check(out):
        y, h = out
        assert y.shape == (0, 7, cell.d_output) and h.shape == (0, cell.d_state)

    return check


def _scan_nan(reverse=False):
    lam = torch.tensor([0.5, 0.9])
    u = torch.ones(2, 6, 2)
    u[0, 3, 1] = NAN
    return linear_scan(lam, u, reverse=reverse), linear_scan(lam, torch.ones(2, 6, 2),
                                                             reverse=reverse)


def _check_scan_nan(reverse):
    def check(out):
        h, clean = out
        before, after = (slice(4, None), slice(0, 4)) if reverse else (slice(0, 3), slice(3, None))
        assert torch.equal(h[0, before, 1], clean[0, before, 1])
        assert torch.equal(h[:, :, 0], clean[:, :, 0]) and torch.equal(h[1], clean[1])
        assert bool(torch.isnan(h[0, after, 1]).all())

    return check


def _gamma_zero_cell():
    cell = DiagonalRNN(1, 2, 1, complex=False, normalization="iid")
    assign_(cell, "lam", torch.tensor([0.5, 1.0]))
    return cell


def _plain_module():
    m = nn.Module()
    m.lam = nn.Parameter(torch.tensor([0.6, 0.8]))
    m.B = nn.Parameter(torch.ones(2, 3))
    return m


def _stacked_step(active):
    torch.manual_seed(0)
    trainer = StackedTrainer([DenseRNN(1, 3, 1) for _ in range(2)], [1e-2, 1e-2],
                             schedule="constant")
    return trainer.step(lambda o: (o ** 2).mean(), torch.randn(4, 5, 1), active=active)


CASES: list = [
    Case(
        "diagonal_rnn-wrong-feature-size",
        lambda: DiagonalRNN(2, 4, 2)(torch.randn(3, 5, 7)),
        raises=ValueError,
        match="2",
    ),
    # -- 1. FFT mode on NaN / inf: causal, equal to scan mode (a documented pass-through) ------
    *[
        Case(f"{name}-fft-{label}-stays-causal",
             lambda make=make, bad=bad: _fft_nonfinite(make, bad),
             raises=None, check=_check_causal)
        for name, make in _FFT_CELLS.items()
        for label, bad in (("nan", NAN), ("inf", INF))
    ],
    # -- 2. a second input normalisation -------------------------------------------------------
    Case("normalize_input-twice-on-a-cell",
         lambda: normalize_input(DiagonalRNN(2, 4, 2, normalization="iid"), "B"),
         match=r"already normalised by InputNorm\(kind='iid'\).*gamma twice"),
    Case("normalize_input-on-lru-learned",
         lambda: normalize_input(LRU(2, 4), "B", kind="iid"),
         match=r"LRU\.B is already normalised"),
    Case("normalize_input-state_dim-out-of-range",
         lambda: normalize_input(_plain_module(), "B", state_dim=5),
         match=r"state_dim must be an int in \[-2, 2\)"),
    Case("normalize_input-missing-tensor",
         lambda: normalize_input(_plain_module(), "W"),
         match="no tensor 'W' to normalise"),
    Case("input_gamma-not-a-tensor", lambda: input_gamma([0.5]), raises=TypeError,
         match="lam must be a tensor"),
    Case("input_gamma-nan", lambda: input_gamma(torch.tensor([NAN])), match="no NaN"),
    Case("input_norm-correlated-rho-nan", lambda: InputNorm("correlated", rho=NAN),
         match=r"rho .* must lie in \(-1, 1\)"),
    Case("input_norm-correlated-rho-text", lambda: InputNorm("correlated", rho="high"),
         match=r"rho .* must be a number"),
    # -- 3. setting B where gamma = 0 ------------------------------------------------------------
    Case("assign-B-with-gamma-zero",
         lambda: assign_(_gamma_zero_cell(), "B", torch.ones(2, 1)),
         match=r"gamma\(lam\) is 0 or not finite for 1 of 2"),
    Case("assign-not-a-tensor", lambda: assign_(DenseRNN(1, 2, 1), "A", [[0.5]]),
         raises=TypeError, match="expected a tensor of shape"),
    Case("assign-complex-into-real",
         lambda: assign_(DiagonalRNN(1, 2, 1, complex=False), "lam", torch.tensor([0.5j, 0.2])),
         match="imaginary part would be dropped"),
    Case("assign-wrong-shape", lambda: assign_(DenseRNN(1, 2, 1), "A", torch.ones(3, 3)),
         match=r"expected shape \(2, 2\)"),
    # -- 4. NaN / inf / out-of-range constructor settings ---------------------------------------
    Case("dense_rnn-radius-nan", lambda: DenseRNN(2, 4, 2, radius=NAN),
         match="radius a finite number >= 0, got nan"),
    Case("dense_rnn-radius-inf", lambda: DenseRNN(2, 4, 2, radius=INF), match="radius"),
    Case("dense_rnn-radius-negative", lambda: DenseRNN(2, 4, 2, radius=-0.5), match="radius"),
    Case("dense_rnn-radius-text", lambda: DenseRNN(2, 4, 2, radius="big"), match="radius"),
    Case("dense_rnn-d_state-bool", lambda: DenseRNN(2, True, 2), match="d_state a positive int"),
    Case("diagonal_rnn-max_phase-nan", lambda: DiagonalRNN(2, 4, 2, max_phase=NAN),
         match="max_phase a finite number"),
    Case("diagonal_rnn-max_phase-inf", lambda: DiagonalRNN(2, 4, 2, max_phase=INF),
         match="max_phase"),
    Case("diagonal_rnn-r_max-nan", lambda: DiagonalRNN(2, 4, 2, r_max=NAN), match="r_max"),
    Case("diagonal_rnn-complex-not-bool", lambda: DiagonalRNN(2, 4, 2, complex="yes"),
         raises=TypeError, match="complex a bool"),
    Case("diagonal_rnn-rho-nan", lambda: DiagonalRNN(2, 4, 2, complex=False,
                                                     normalization="correlated", rho=NAN),
         match="rho"),
    Case("lru-max_phase-nan", lambda: LRU(2, 4, max_phase=NAN), match="max_phase"),
    Case("lru-r_min-inf", lambda: LRU(2, 4, r_min=INF), match="r_min"),
    Case("lru-parametrization-not-a-module", lambda: LRU(2, 4, parametrization=5),
         raises=TypeError, match="parametrization must be 'exp', None or an nn.Module"),
    Case("s4d-dt_max-inf", lambda: S4D(2, 4, dt_max=INF), match="dt_max a finite number > 0"),
    Case("s4d-dt_min-nan", lambda: S4D(2, 4, dt_min=NAN), match="dt_min a finite number > 0"),
    Case("s4d-dt_min-zero", lambda: S4D(2, 4, dt_min=0.0), match="dt_min"),
    Case("s4d-kernel-length-zero", lambda: S4D(2, 4).kernel(0),
         match="length a positive int, got 0"),
    Case("expmag-nan-eigenvalue", lambda: ExpMag().right_inverse(torch.tensor([NAN])),
         match="NaN or infinite"),
    Case("polar-originals-not-tensors", lambda: Polar()([0.5]), raises=TypeError,
         match="expects tensor originals"),
    # -- 5. empty batch, zero length, half / bfloat16, wrong input -------------------------------
    *[
        Case(f"{name}-fft-empty-batch", lambda make=make: make()(torch.zeros(0, 7, 2)),
             raises=None, check=_check_empty(make()))
        for name, make in _FFT_CELLS.items()
    ],
    Case("s4d-scan-empty-batch", lambda: S4D(2, 4, mode="scan")(torch.zeros(0, 7, 2)),
         raises=None, check=_check_empty(S4D(2, 4))),
    Case("s4d-step-empty-batch", lambda: S4D(2, 4).step(torch.zeros(0, 2)), raises=None,
         check=lambda out: (out[0].shape == (0, 2) and out[1].shape == (0, 8)) or
         (_ for _ in ()).throw(AssertionError(out))),
    *[
        Case(f"{name}-zero-length", lambda make=make: make()(torch.zeros(3, 0, 2)),
             match=r"length >= 1, got input of shape \(3, 0, 2\)")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-{method}", lambda make=make, method=method: getattr(make(), method)(),
             raises=TypeError, match=rf"float32 or float64.*torch\.{dtype}")
        for name, make in _COMPLEX_CELLS.items()
        for method, dtype in (("half", "float16"), ("bfloat16", "bfloat16"))
    ],
    Case("lru-to-float16", lambda: LRU(2, 4).to(torch.float16), raises=TypeError,
         match=r"float32 or float64.*torch\.float16"),
    *[
        Case(f"{name}-forward-not-a-tensor", lambda make=make: make()([[1.0, 2.0]]),
             raises=TypeError, match=r"expected a tensor \(batch, length, d_input\)")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-forward-2d", lambda make=make: make()(torch.zeros(3, 2)),
             match=r"expected input of shape \(batch, length, 2\), got \(3, 2\)")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-forward-float64-input", lambda make=make: make()(
            torch.zeros(3, 5, 2, dtype=torch.float64)),
             raises=TypeError, match="expected input dtype torch.float32, got torch.float64")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-step-3d", lambda make=make: make().step(torch.zeros(3, 5, 2)),
             match=r"expected input of shape \(batch, 2\), got \(3, 5, 2\)")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-step-state-wrong-shape", lambda make=make: make().step(
            torch.zeros(3, 2), torch.zeros(2, 1)), match=r"expected state of shape \(3, ")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-forward-wrong-device", lambda make=make: make()(
            torch.zeros(3, 5, 2, device="meta")), match="expected input on cpu, got meta")
        for name, make in _ALL_CELLS.items()
    ],
    *[
        Case(f"{name}-step-wrong-device", lambda make=make: make().step(
            torch.zeros(3, 2, device="meta")), match="expected input on cpu, got meta")
        for name, make in _ALL_CELLS.items()
    ],
    Case("linear_scan-devices-differ", lambda: linear_scan(torch.ones(1, device="meta"),
                                                           torch.ones(2, 3, 1)),
         match="lam is on meta but u is on cpu"),
    Case("lru-step-state-real", lambda: LRU(2, 4).step(torch.zeros(3, 2), torch.zeros(3, 4)),
         raises=TypeError, match="expected state dtype torch.complex64, got torch.float32"),
    Case("linear_scan-u-2d", lambda: linear_scan(torch.ones(2), torch.ones(3, 2)),
         match=r"u must have shape \(batch, length, d\), got \(3, 2\)"),
    Case("linear_scan-lam-shape", lambda: linear_scan(torch.ones(3), torch.ones(1, 4, 2)),
         match=r"lam must have shape \(2,\)"),
    Case("linear_scan-int-u", lambda: linear_scan(torch.ones(2), torch.ones(1, 3, 2).long()),
         raises=TypeError, match="u must be floating or complex, got torch.int64"),
    Case("linear_scan-lam-list", lambda: linear_scan([0.5], torch.ones(1, 3, 1)),
         raises=TypeError, match="lam must be a tensor"),
    Case("linear_scan-h0-list", lambda: linear_scan(torch.ones(1), torch.ones(2, 3, 1), [[0.0]]),
         raises=TypeError, match="h0 must be a tensor or None"),
    Case("linear_scan-h0-shape", lambda: linear_scan(torch.ones(1), torch.ones(2, 3, 1),
                                                     torch.zeros(3, 1)),
         match=r"h0 must have shape \(2, 1\)"),
    Case("linear_scan-reverse-text", lambda: linear_scan(torch.ones(1), torch.ones(2, 3, 1),
                                                         reverse="yes"),
         raises=TypeError, match="reverse must be a bool"),
    Case("linear_scan-impl", lambda: linear_scan(torch.ones(1), torch.ones(2, 3, 1), impl="gpu"),
         match="impl must be one of"),
    # -- 6. StackedTrainer's active flags --------------------------------------------------------
    Case("stacked-active-wrong-length", lambda: _stacked_step(torch.tensor([True, False, True])),
         match=r"one flag per model, shape \(2,\), got shape \(3,\)"),
    Case("stacked-active-float", lambda: _stacked_step(torch.tensor([0.5, 1.0])),
         raises=TypeError, match="bool tensor .*got dtype torch.float32"),
    Case("stacked-eps-nan", lambda: StackedTrainer([DenseRNN(1, 2, 1)], [1e-2], eps=NAN,
                                                   schedule="constant"),
         match="eps a finite number >= 0"),
    # -- 7. NaN in, NaN out for the scan (documented, causal) ------------------------------------
    Case("linear_scan-nan-in-nan-out", _scan_nan, raises=None, check=_check_scan_nan(False)),
    Case("linear_scan-nan-reverse", lambda: _scan_nan(True), raises=None,
         check=_check_scan_nan(True)),
    *[
        Case(f"{name}-scan-nan-in-nan-out", lambda make=make: _fft_nonfinite(
            lambda: _set_mode(make(), "scan"), NAN), raises=None, check=_check_causal)
        for name, make in _FFT_CELLS.items()
    ],
]


def _set_mode(cell, mode):
    cell.mode = mode
    return cell
