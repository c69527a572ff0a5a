"""InputNorm / input_gamma: closed forms, the parametrize recipe and its contract."""

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from recurrent_params import ExpMag, InputNorm, input_gamma, normalize_input


def simulate_second_moment(lam: float, rho: float, gamma: float, n=20000, burn=600) -> float:
    """E[h^2] of h_t = lam h_{t-1} + gamma x_t for unit-variance AR(1) inputs (autocorr. rho)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    h = torch.zeros(n, dtype=torch.float64)
    for _ in range(burn):
        x = rho * x + (1 - rho**2) ** 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
        h = lam * h + gamma * x
    return float((h**2).mean())


@pytest.mark.parametrize("lam,rho", [(0.9, 0.0), (0.95, 0.5), (0.8, -0.4)])
def test_exact_normaliser_gives_unit_second_moment(lam, rho):
    kind = "iid" if rho == 0 else "correlated"
    gamma = float(input_gamma(torch.tensor([lam], dtype=torch.float64), kind, rho))
    # Monte-Carlo with 20k samples: standard error of E[h^2] is about sqrt(2/20000) = 1%.
    assert simulate_second_moment(lam, rho, gamma) == pytest.approx(1.0, rel=0.05)


def test_closed_forms_of_each_kind():
    lam = torch.tensor([0.0, 0.6, 0.8j, -0.6], dtype=torch.complex128)
    torch.testing.assert_close(input_gamma(lam, "iid"),
                               torch.tensor([1.0, 0.8, 0.6, 0.8], dtype=torch.float64))
    torch.testing.assert_close(input_gamma(lam, "l1"),
                               torch.tensor([1.0, 0.4, 0.2, 0.4], dtype=torch.float64))
    torch.testing.assert_close(input_gamma(lam, "none"), torch.ones(4, dtype=torch.float64))
    real = torch.tensor([0.5, -0.5], dtype=torch.float64)
    expected = torch.sqrt((1 - real**2) * (1 - 0.3 * real) / (1 + 0.3 * real))
    torch.testing.assert_close(input_gamma(real, "correlated", 0.3), expected)
    torch.testing.assert_close(input_gamma(real, "correlated", 0.0), input_gamma(real, "iid"))


@pytest.mark.parametrize(
    "lam,kind,rho,match",
    [
        (torch.tensor([0.5, 1.5]), "iid", 0.0, "1 of 2"),
        (torch.tensor([float("nan")]), "iid", 0.0, "NaN"),
        (torch.tensor([0.5]), "cosine", 0.0, "kind"),
        (torch.tensor([0.5]), "correlated", 1.0, "rho"),
        (torch.tensor([0.5j]), "correlated", 0.1, "real lam"),
        (torch.tensor([0.5]), "learned", 0.0, "InputNorm"),
    ],
)
def test_bad_input_raises(lam, kind, rho, match):
    with pytest.raises(ValueError, match=match):
        input_gamma(lam, kind, rho)


@pytest.mark.parametrize("kind", ["learned", "learned-direct"])
def test_learned_needs_initial_eigenvalues(kind):
    with pytest.raises(ValueError, match="lam="):
        InputNorm(kind)
    with pytest.raises(ValueError, match="InputNorm"):
        input_gamma(torch.tensor([0.5]), kind)
    with pytest.raises(ValueError, match="initial"):
        InputNorm(kind, lam=torch.tensor([0.5, 1.0]))


def test_learned_direct_gamma_is_its_own_parameter_and_survives_leaving_the_disk():
    lam0 = torch.tensor([0.6 + 0.0j, 0.8j, 0.99], dtype=torch.complex128)
    m = Recurrence(lam0.clone())
    B0 = m.B.detach().clone()
    norm = normalize_input(m, "B", kind="learned-direct")
    assert [n for n, _ in norm.named_parameters()] == ["gamma_direct"]
    gamma0 = torch.sqrt(1 - lam0.abs() ** 2)
    torch.testing.assert_close(norm.gamma_direct.detach(), gamma0)
    torch.testing.assert_close(m.B, gamma0[:, None] * B0)
    # the gradient of B reaches gamma itself (d B_eff / d gamma_i = B0_i), not lam
    m.B.real.sum().backward()
    torch.testing.assert_close(norm.gamma_direct.grad, B0.real.sum(1))
    assert m.lam.grad is None
    # an eigenvalue outside the unit disk: the fixed normaliser is undefined, this one is not
    with torch.no_grad():
        m.lam[2] = 1.05
    with pytest.raises(ValueError, match="|lam| <= 1"):
        input_gamma(m.lam.detach(), "iid")
    torch.testing.assert_close(m.B, gamma0[:, None] * B0)
    # a wrong-sized lam is reported with the parameter's name
    with pytest.raises(ValueError, match="gamma_direct"):
        norm.gamma(torch.ones(2))


@pytest.mark.parametrize("kind", ["learned", "learned-direct", "iid"])
def test_reset_gamma_sets_a_learned_gamma_to_the_fresh_value(kind):
    lam0 = torch.tensor([0.6, 0.8], dtype=torch.float64)
    m = Recurrence(lam0.clone())
    B0 = m.B.detach().clone()
    norm = normalize_input(m, "B", kind=kind)
    lam1 = torch.tensor([0.8, 0.28], dtype=torch.float64)  # gamma 0.6, 0.96
    with torch.no_grad():
        m.lam.copy_(lam1)
    norm.reset_gamma_(lam1)
    torch.testing.assert_close(m.B, torch.tensor([0.6, 0.96], dtype=torch.float64)[:, None] * B0)
    if kind != "iid":  # the parameter stays a trainable leaf
        held = dict(norm.named_parameters())
        assert len(held) == 1 and next(iter(held.values())).requires_grad


class Recurrence(torch.nn.Module):
    """A user's own diagonal recurrence: h_t = lam h_{t-1} + B x_t."""

    def __init__(self, lam, d_input=3):
        super().__init__()
        self.lam = torch.nn.Parameter(lam)
        self.B = torch.nn.Parameter(torch.randn(lam.numel(), d_input, dtype=lam.dtype))


@pytest.mark.parametrize("kind", ["iid", "l1", "learned"])
def test_recipe_with_exp_parametrized_lam(kind):
    lam0 = torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)
    m = Recurrence(lam0.clone())
    B0 = m.B.detach().clone()
    parametrize.register_parametrization(m, "lam", ExpMag())
    normalize_input(m, "B", kind=kind)
    gamma = input_gamma(lam0, "iid" if kind == "learned" else kind)
    torch.testing.assert_close(m.B, gamma[:, None] * B0)
    # gamma follows lam as it trains (except the learned one, which is its own parameter)
    with torch.no_grad():
        m.lam = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    if kind != "learned":
        new_gamma = input_gamma(m.lam.detach(), kind)
        torch.testing.assert_close(m.B, new_gamma[:, None] * B0)
    # gradients reach lam's originals through gamma
    m.B.sum().backward()
    if kind != "learned":
        assert m.parametrizations.lam.original.grad.abs().sum() > 0
    else:
        assert m.parametrizations.B[0].gamma_log.grad.abs().sum() > 0


def test_keep_value_and_assignment_set_the_effective_matrix():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float64))
    B0 = m.B.detach().clone()
    normalize_input(m, "B", keep_value=True)
    torch.testing.assert_close(m.B, B0)
    target = torch.ones_like(B0)
    with torch.no_grad():
        m.B = target
    torch.testing.assert_close(m.B, target)


def test_state_dim_for_transposed_input_matrix():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float64))
    m.B = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64))  # (d_input, d_state)
    normalize_input(m, "B", state_dim=1)
    torch.testing.assert_close(m.B[0], torch.tensor([0.8, 0.6], dtype=torch.float64))


def test_mismatched_sizes_are_reported():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float64))
    with pytest.raises(ValueError, match="state_dim"):
        normalize_input(m, "B", state_dim=1)


def test_deepcopy_binds_the_copy_and_state_dict_round_trips():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float64))
    normalize_input(m, "B", kind="learned")
    c = copy.deepcopy(m)
    assert c.parametrizations.B[0]._owner is c
    with torch.no_grad():
        c.lam.fill_(0.1)  # the copy's gamma must not follow the original's lam, and vice versa
    torch.testing.assert_close(m.B, c.B)  # learned gamma does not depend on lam
    d = Recurrence(torch.tensor([0.1, 0.2], dtype=torch.float64))
    normalize_input(d, "B", kind="learned")
    d.load_state_dict(m.state_dict())
    torch.testing.assert_close(d.B, m.B)


def test_deepcopy_follows_its_own_eigenvalues():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float64))
    normalize_input(m, "B", kind="iid")
    c = copy.deepcopy(m)
    with torch.no_grad():
        c.lam.fill_(0.0)
    torch.testing.assert_close(c.B, c.parametrizations.B.original)
    assert not torch.allclose(m.B, c.B)


def test_unbound_norm_explains_how_to_bind():
    with pytest.raises(RuntimeError, match="normalize_input"):
        InputNorm("iid")(torch.ones(2, 2))


def test_dtype_move_follows_the_module():
    m = Recurrence(torch.tensor([0.6, 0.8], dtype=torch.float32))
    normalize_input(m, "B", kind="learned")
    m.double()
    assert m.B.dtype == torch.float64
    assert m.parametrizations.B[0].gamma_log.dtype == torch.float64


# -- issue 21: a second InputNorm, and gamma = 0 ------------------------------------------------


@pytest.mark.parametrize("kind", ["iid", "learned"])
def test_normalize_input_twice_is_a_clear_error(kind):
    from recurrent_params import DiagonalRNN

    cell = DiagonalRNN(2, 3, 2, normalization=kind)
    B = cell.B.detach().clone()
    with pytest.raises(ValueError, match=rf"DiagonalRNN\.B is already normalised by "
                                         rf"InputNorm\(kind='{kind}'\).*gamma twice"):
        normalize_input(cell, "B", kind="iid")
    torch.testing.assert_close(cell.B, B, rtol=0, atol=0)  # nothing was registered
    assert sum(isinstance(p, InputNorm) for p in cell.parametrizations.B) == 1


def test_normalize_input_on_a_plain_module_twice():
    m = torch.nn.Module()
    m.lam = torch.nn.Parameter(torch.tensor([0.6, 0.8]))
    m.B = torch.nn.Parameter(torch.ones(2, 3))
    normalize_input(m, "B")
    with pytest.raises(ValueError, match="already normalised"):
        normalize_input(m, "B", kind="l1")


@pytest.mark.parametrize("kind", ["iid", "l1"])
def test_setting_b_where_gamma_is_zero_is_a_clear_error(kind):
    from recurrent_params import DiagonalRNN, assign_

    cell = DiagonalRNN(1, 2, 1, complex=False, normalization=kind)
    assign_(cell, "lam", torch.tensor([0.5, 1.0]))  # |lam| = 1: gamma = 0
    stored = cell.parametrizations.B.original.detach().clone()
    with pytest.raises(ValueError, match=r"gamma\(lam\) is 0 or not finite for 1 of 2"):
        assign_(cell, "B", torch.ones(2, 1))
    assert torch.equal(cell.parametrizations.B.original, stored)  # no NaN stored
    assert torch.isfinite(cell.B).all()


def test_setting_b_inside_the_disk_still_divides_by_gamma():
    from recurrent_params import DiagonalRNN, assign_

    cell = DiagonalRNN(1, 2, 1, complex=False, normalization="iid")
    assign_(cell, "lam", torch.tensor([0.6, 0.8]))
    assign_(cell, "B", torch.ones(2, 1))
    torch.testing.assert_close(cell.parametrizations.B.original[:, 0],
                               torch.tensor([1 / 0.8, 1 / 0.6]))
    torch.testing.assert_close(cell.B, torch.ones(2, 1))


def test_assign_wants_a_tensor():
    from recurrent_params import DiagonalRNN, assign_

    with pytest.raises(TypeError, match=r"expected a tensor of shape \(3,\), got list"):
        assign_(DiagonalRNN(1, 3, 1), "lam", [0.5, 0.5, 0.5])
