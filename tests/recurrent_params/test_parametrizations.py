"""Contract tests shared by every eigenvalue parametrization, plus closed-form checks."""

import copy
import io

import pytest
import torch
from torch.nn.utils import parametrize

from recurrent_params import ExpMag, OptimalTanh, Polar, ScaledAngle

PARAMETRIZATIONS = {
    "ExpMag": ExpMag,
    "ExpMag-exp-phase": lambda: ExpMag(phase="exp"),
    "Polar": Polar,
    "ScaledAngle": ScaledAngle,
    "OptimalTanh": OptimalTanh,
}
BOUNDED = ["ExpMag", "ExpMag-exp-phase", "ScaledAngle", "OptimalTanh"]


@pytest.fixture(params=list(PARAMETRIZATIONS))
def make(request):
    return PARAMETRIZATIONS[request.param]


def eigenvalues(complex_: bool, dtype=torch.float64, d=8):
    g = torch.Generator().manual_seed(1)
    r = torch.empty(d, dtype=dtype).uniform_(0.05, 0.999, generator=g)
    if not complex_:
        return r
    theta = torch.empty(d, dtype=dtype).uniform_(-3.1, 3.1, generator=g)
    return torch.polar(r, theta)


class Holder(torch.nn.Module):
    def __init__(self, lam):
        super().__init__()
        self.lam = torch.nn.Parameter(lam)


@pytest.mark.parametrize("complex_", [False, True])
def test_round_trip_keeps_value(make, complex_):
    lam = eigenvalues(complex_)
    m = Holder(lam.clone())
    parametrize.register_parametrization(m, "lam", make())
    torch.testing.assert_close(m.lam.detach(), lam, rtol=1e-12, atol=1e-12)
    originals = [p for n, p in m.named_parameters() if "original" in n]
    assert len(originals) == (2 if complex_ else 1)
    assert all(p.dtype == torch.float64 for p in originals), "stored originals must be real"


@pytest.mark.parametrize("complex_", [False, True])
def test_right_inverse_of_forward_is_identity_on_originals(make, complex_):
    p = make()
    lam = eigenvalues(complex_)
    originals = p.right_inverse(lam)
    originals = originals if isinstance(originals, tuple) else (originals,)
    again = p.right_inverse(p(*originals))
    again = again if isinstance(again, tuple) else (again,)
    for a, b in zip(originals, again):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("complex_", [False, True])
def test_gradcheck_float64(make, complex_):
    p = make()
    originals = p.right_inverse(eigenvalues(complex_, d=4))
    originals = originals if isinstance(originals, tuple) else (originals,)
    inputs = tuple(o.clone().requires_grad_(True) for o in originals)
    if isinstance(p, ScaledAngle) and complex_:
        # sg(1 - |lam|) makes the map non-differentiable by design in nu through the angle;
        # check the gradient of the magnitude alone and of the angle w.r.t. w.
        assert torch.autograd.gradcheck(lambda nu, w: p(nu, w).abs(), inputs)
        assert torch.autograd.gradcheck(lambda w: p(originals[0], w), (inputs[1],))
    else:
        assert torch.autograd.gradcheck(lambda *o: p(*o), inputs)


@pytest.mark.parametrize("complex_", [False, True])
def test_state_dict_round_trip(make, complex_):
    a = Holder(eigenvalues(complex_))
    parametrize.register_parametrization(a, "lam", make())
    b = Holder(eigenvalues(complex_, d=8) * 0.5)
    parametrize.register_parametrization(b, "lam", make())
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf))
    torch.testing.assert_close(b.lam, a.lam)


@pytest.mark.parametrize("complex_", [False, True])
def test_deepcopy_and_remove(make, complex_):
    lam = eigenvalues(complex_)
    m = Holder(lam.clone())
    parametrize.register_parametrization(m, "lam", make())
    c = copy.deepcopy(m)
    torch.testing.assert_close(c.lam, m.lam)
    parametrize.remove_parametrizations(c, "lam")
    assert isinstance(c.lam, torch.nn.Parameter)
    torch.testing.assert_close(c.lam.detach(), lam, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True])
def test_dtype_and_device_propagation(make, complex_, device):
    m = Holder(eigenvalues(complex_, dtype=torch.float32))
    parametrize.register_parametrization(m, "lam", make())
    m.to(device=device, dtype=torch.float64)
    lam = m.lam
    assert lam.device.type == device.type
    assert lam.dtype == (torch.complex128 if complex_ else torch.float64)
    torch.testing.assert_close(
        lam.cpu(), eigenvalues(complex_, dtype=torch.float32).to(lam.dtype), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("bad", [1.0, 1.5, float("nan"), float("inf")])
def test_bad_eigenvalues_raise_value_error(make, bad):
    lam = torch.tensor([0.5, bad, 0.3], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"1 of 3"):
        make().right_inverse(lam)
    with pytest.raises(ValueError, match=r"1 of 3"):
        make().right_inverse(lam.to(torch.complex128))


def test_error_message_names_the_range_found():
    with pytest.raises(ValueError, match=r"2 of 4 entries are outside .*1\.2"):
        ExpMag().right_inverse(torch.tensor([0.5, 1.2, 0.2, 1.0]))


def test_zero_magnitude_rejected_by_exponential_maps():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        ExpMag().right_inverse(torch.tensor([0.0, 0.5]))


def test_negative_real_eigenvalues():
    lam = torch.tensor([-0.5, 0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="positive"):
        ExpMag().right_inverse(lam)
    for p in (Polar(), OptimalTanh()):
        torch.testing.assert_close(p(p.right_inverse(lam)), lam)


def test_non_float_input_raises_type_error():
    with pytest.raises(TypeError, match="floating"):
        ExpMag().right_inverse(torch.tensor([1, 2]))


def test_stacking_on_a_complex_parametrized_tensor_is_detected():
    m = Holder(eigenvalues(True))
    parametrize.register_parametrization(m, "lam", ExpMag())
    with pytest.raises(ValueError, match="remove_parametrizations"):
        parametrize.register_parametrization(m, "lam", ExpMag())


@pytest.mark.parametrize("name", BOUNDED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_originals_stay_in_the_unit_disk(name, dtype):
    p = PARAMETRIZATIONS[name]()
    mag = torch.tensor([-30.0, -30.0, 30.0, 30.0, 0.0], dtype=dtype)
    ang = torch.tensor([1e6, -1e30, 1e30, -1e6, 1e38], dtype=dtype)
    if name == "ExpMag-exp-phase":
        ang = torch.tensor([30.0, -30.0, 100.0, 1e30, 88.0], dtype=dtype)
    for lam in (p(mag), p(mag, ang)):
        assert torch.isfinite(lam).all()
        assert (lam.abs() < 1).all() and (lam.abs() >= 0).all()


def test_exp_mag_derivative_closed_form():
    # d lam / d nu = lam log lam
    nu = torch.linspace(-6, 2, 9, dtype=torch.float64, requires_grad=True)
    lam = ExpMag()(nu)
    (grad,) = torch.autograd.grad(lam.sum(), nu)
    torch.testing.assert_close(grad, (lam * torch.log(lam)).detach())


def test_exp_mag_close_to_one_keeps_precision_float32():
    lam = torch.tensor([1 - 1e-7, 1 - 1e-6, 0.5], dtype=torch.float32)
    p = ExpMag()
    torch.testing.assert_close(p(p.right_inverse(lam)), lam, rtol=0, atol=0)


def test_exp_phase_right_inverse_maps_angle_to_zero_two_pi():
    p = ExpMag(phase="exp")
    lam = torch.polar(torch.full((3,), 0.9, dtype=torch.float64),
                      torch.tensor([0.0, -1.0, 3.0], dtype=torch.float64))
    nu, theta_log = p.right_inverse(lam)
    theta = torch.exp(theta_log)
    assert ((theta > 0) & (theta <= 2 * torch.pi + 1e-12)).all()
    torch.testing.assert_close(theta[0], torch.tensor(2 * torch.pi, dtype=torch.float64))
    torch.testing.assert_close(p(nu, theta_log), lam)


def test_scaled_angle_stops_gradient_of_the_scale():
    p = ScaledAngle()
    nu = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    lam = p(nu, w)
    (g_nu,) = torch.autograd.grad(torch.angle(lam).sum(), nu)
    assert g_nu.abs().item() < 1e-12  # ~0.74 without the stop-gradient
    r = torch.exp(-torch.exp(torch.tensor(0.0, dtype=torch.float64)))
    torch.testing.assert_close(torch.angle(lam).detach(), (1 - r) * 2.0 * torch.ones(1,
                               dtype=torch.float64))


def test_optimal_tanh_angle_scale_closed_form():
    p = OptimalTanh()
    r = torch.tensor([0.3, 0.9], dtype=torch.float64)
    w_nu, w_theta = torch.atanh(r), torch.tensor([1.0, 1.0], dtype=torch.float64)
    lam = p(w_nu, w_theta)
    torch.testing.assert_close(lam.abs(), r)
    torch.testing.assert_close(torch.angle(lam), (1 - r**2) / (r * torch.sqrt(1 + r**2)))


def test_unknown_phase_is_rejected():
    with pytest.raises(ValueError, match="phase"):
        ExpMag(phase="log")


def test_user_contract_line_on_a_plain_module():
    cell = Holder(eigenvalues(True, dtype=torch.float32))
    before = cell.lam.detach().clone()
    parametrize.register_parametrization(cell, "lam", ExpMag())
    torch.testing.assert_close(cell.lam.detach(), before)
