"""memory_sensitivity vs the closed forms of the curse of memory (Monte-Carlo tolerances)."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from diagnostics import (
    correlated_inputs,
    memory_sensitivity,
    normalized_exp_sensitivity,
    second_moment,
    sensitivity,
)
from recurrent_params import ExpMag, OptimalTanh, Polar, ScaledAngle, input_gamma

# 8192 samples: relative standard error of a mean of squared Gaussians is sqrt(2/8192) = 1.6%.
N = 8192
TOL = 0.07


class ToyDiagonal(nn.Module):
    """Minimal cell of the package interface: h_t = lam h_{t-1} + gamma(lam) x_t."""

    d_input = 1

    def __init__(self, lam, normalize=False):
        super().__init__()
        self.lam = nn.Parameter(lam)
        self.normalize = normalize

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, self.lam.numel(), dtype=self.lam.dtype)

    def step(self, x_t, state):
        gamma = input_gamma(self.lam) if self.normalize else 1.0
        h = self.lam * state + gamma * x_t  # (B, N)
        return h.real.sum(-1, keepdim=True), h


def generator():
    return torch.Generator().manual_seed(3)


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_plain_real_recurrence_matches_closed_forms(rho):
    lam = torch.tensor([0.5, 0.9, 0.97], dtype=torch.float64)
    report = memory_sensitivity(ToyDiagonal(lam), batch_size=N, rho=rho, generator=generator())
    torch.testing.assert_close(report.input_variance, torch.ones(3, dtype=torch.float64),
                               rtol=0.05, atol=0)
    torch.testing.assert_close(report.second_moment, second_moment(lam, rho), rtol=TOL, atol=0)
    torch.testing.assert_close(report.sensitivity["lam"], sensitivity(lam, rho), rtol=TOL, atol=0)
    torch.testing.assert_close(report.second_moment_theory, second_moment(lam, rho) *
                               report.input_variance)


def test_normalized_exponential_recurrence_is_cured():
    lam = torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)
    cell = ToyDiagonal(lam, normalize=True)
    parametrize.register_parametrization(cell, "lam", ExpMag())
    report = memory_sensitivity(cell, batch_size=N, generator=generator())
    assert set(report.sensitivity) == {"nu"}
    torch.testing.assert_close(report.second_moment, torch.ones(3, dtype=torch.float64),
                               rtol=TOL, atol=0)
    torch.testing.assert_close(report.sensitivity["nu"], normalized_exp_sensitivity(lam),
                               rtol=TOL, atol=0)
    assert report.sensitivity["nu"].max() < 0.3  # bounded, while the plain one is ~1e6 at 0.99


def test_complex_eigenvalues_with_iid_inputs():
    lam = torch.polar(torch.tensor([0.6, 0.95], dtype=torch.float64),
                      torch.tensor([0.3, 2.0], dtype=torch.float64))
    cell = ToyDiagonal(lam)
    parametrize.register_parametrization(cell, "lam", ExpMag())
    report = memory_sensitivity(cell, batch_size=N, generator=generator())
    assert set(report.sensitivity) == {"nu", "theta"}
    torch.testing.assert_close(report.second_moment, second_moment(lam), rtol=TOL, atol=0)
    # |dh/dtheta|^2 = |i lam dh/dlam|^2 = |lam|^2 |dh/dlam|^2
    torch.testing.assert_close(report.sensitivity["theta"], lam.abs() ** 2 * sensitivity(lam),
                               rtol=TOL, atol=0)


def test_plain_complex_lam_reports_real_and_imaginary_parts():
    lam = torch.tensor([0.5 + 0.5j], dtype=torch.complex128)
    report = memory_sensitivity(ToyDiagonal(lam), batch_size=N, generator=generator())
    assert set(report.sensitivity) == {"lam.re", "lam.im"}
    # a holomorphic map: the derivative along 1 and along i have the same modulus
    torch.testing.assert_close(report.sensitivity["lam.re"], report.sensitivity["lam.im"])
    torch.testing.assert_close(report.sensitivity["lam.re"], sensitivity(lam), rtol=TOL, atol=0)


def test_report_dict_and_repr():
    report = memory_sensitivity(ToyDiagonal(torch.tensor([0.5])), batch_size=64, length=20)
    d = report.to_dict()
    assert d["length"] == 20 and d["batch_size"] == 64 and "lam" in d["sensitivity"]
    assert "E|dh/dlam|^2" in repr(report)


def test_bad_inputs_are_reported():
    cell = ToyDiagonal(torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"\(batch, length, 1\)"):
        memory_sensitivity(cell, inputs=torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="eigenvalue"):
        memory_sensitivity(nn.Linear(1, 1))


def test_correlated_inputs_statistics():
    x = correlated_inputs(N, 30, 2, rho=-0.6, generator=generator(), dtype=torch.float64)
    assert x.shape == (N, 30, 2)
    assert float(x[:, 5].var()) == pytest.approx(1.0, rel=0.05)
    assert float((x[:, 5] * x[:, 7]).mean()) == pytest.approx(0.36, abs=0.03)
    with pytest.raises(ValueError, match="rho"):
        correlated_inputs(2, 2, 1, rho=1.0)


def test_closed_form_limits():
    lam = torch.tensor([1 - 1e-4], dtype=torch.float64)
    # the curse: E[h^2] ~ (1-lam)^-1 / 2, E[(dh/dlam)^2] ~ (1-lam)^-3 / 4
    assert float(second_moment(lam) * 2e-4) == pytest.approx(1, rel=1e-3)
    assert float(sensitivity(lam) * 4 * 1e-12) == pytest.approx(1, rel=1e-3)
    with pytest.raises(ValueError, match="real lam"):
        second_moment(torch.tensor([0.5j]), rho=0.3)


@pytest.mark.parametrize("make,expected", [
    (lambda: ExpMag(phase="exp"), {"nu", "theta_log"}),
    (ScaledAngle, {"nu", "w_theta"}),
    (OptimalTanh, {"w_nu", "w_theta"}),
    (Polar, {"magnitude", "theta"}),
])
def test_sensitivities_are_keyed_by_the_parametrization_names(make, expected):
    cell = ToyDiagonal(torch.tensor([0.5 + 0.2j], dtype=torch.complex128))
    parametrize.register_parametrization(cell, "lam", make())
    report = memory_sensitivity(cell, batch_size=16, length=10)
    assert set(report.sensitivity) == expected
