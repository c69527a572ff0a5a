"""Transitions of ALIF stacks: the protocol's maps against torch.func.jacrev and the closed-form
Jacobians (float64), the radii against eigenvalues of those Jacobians, and the decay floor."""

import pytest
import torch
from torch import nn

from diagnostics import model_transitions, transition_radii
from recurrent_params import ALIF, FastSigmoid

DT = torch.float64


def _stack():
    torch.manual_seed(1)
    l0 = ALIF(3, 5, alpha=torch.linspace(0.5, 0.8, 5), rho=torch.linspace(0.6, 0.9, 5),
              beta=torch.linspace(0.0, 1.5, 5), threshold=0.6, input_gain=3.0)
    l1 = ALIF(5, 5, alpha=0.7, rho=0.85, beta=1.0, threshold=0.8, refractory=2,
              surrogate=FastSigmoid(sharpness=2.0, dampening=0.5), input_gain=3.0)
    return nn.Sequential(l0, l1).to(DT)


def _p(cell, s):
    """Surrogate derivative of the spikes w.r.t. u, masked by the refractory counter."""
    p = cell.surrogate.derivative(cell.scaled_distance(s))
    r = cell.split_state(s)[2]
    return p if r is None else p * (r == 0).to(p.dtype)


def _time_jacobian(cell, s):
    """Closed form of d[v, a(, r)]_t / d[v, a(, r)]_{t-1} at one state ``s`` (n_state,)."""
    n, th = cell.d_hidden, cell.threshold
    al, rho, beta = cell.alpha, cell.rho, cell.beta
    p = _p(cell, s)
    A = cell.A.detach()
    dzdv, dzda = torch.diag(p / th), torch.diag(-beta * p / th)
    current = torch.diag(1 - al) @ A - th * torch.eye(n, dtype=DT)  # d v_t / d z_{t-1}
    J = torch.zeros(cell.d_state, cell.d_state, dtype=DT)
    J[:n, :n] = torch.diag(al) + current @ dzdv
    J[:n, n:2 * n] = current @ dzda
    J[n:2 * n, :n] = torch.diag(1 - rho) @ dzdv
    J[n:2 * n, n:2 * n] = torch.diag(rho) + torch.diag(1 - rho) @ dzda
    return J


def _depth_jacobian(cell, lower, s_lower):
    n = cell.d_hidden
    p = _p(lower, s_lower)
    dz = torch.cat([torch.diag(p), torch.diag(-lower.beta * p)], 1) / lower.threshold
    J = torch.zeros(cell.d_state, lower.d_state, dtype=DT)
    J[:n, :2 * lower.d_hidden] = torch.diag(1 - cell.alpha) @ cell.B.detach() @ dz
    return J


def _jacrev(t, b):
    ctx = [c[b:b + 1] for c in t.context]
    return torch.func.jacrev(lambda s: t.fn(s[None], *ctx)[0])(t.point[b])


def test_transitions_match_jacrev_and_the_closed_form():
    stack = _stack()
    x = 2 * torch.rand(6, 15, 3, dtype=DT)
    transitions = model_transitions(stack, x, torch.Generator().manual_seed(0))
    assert [t.name for t in transitions] == ["layer0.time", "layer0.depth", "layer1.time",
                                             "layer1.depth"]
    by_name = {t.name: t for t in transitions}
    active = 0
    for b in range(6):
        for l, cell in enumerate(stack):
            t = by_name[f"layer{l}.time"]
            J = _jacrev(t, b)
            assert J.shape == (cell.d_state, cell.d_state)
            torch.testing.assert_close(J, _time_jacobian(cell, t.point[b]))
            active += int((_p(cell, t.point[b]) > 0).sum())
        # layer 0 depth: from the input, d v / d x = diag(1 - alpha) B, a does not see x
        t = by_name["layer0.depth"]
        expected = torch.zeros(10, 3, dtype=DT)
        expected[:5] = torch.diag(1 - stack[0].alpha) @ stack[0].B.detach()
        torch.testing.assert_close(_jacrev(t, b), expected)
        # layer 1 depth: through the spikes of layer 0 (surrogate), into v^1 only
        t = by_name["layer1.depth"]
        torch.testing.assert_close(_jacrev(t, b), _depth_jacobian(stack[1], stack[0], t.point[b]))
    assert active > 10  # the surrogate path is exercised, not only the decays


def test_radii_are_the_spectral_radii_of_the_independent_jacobians():
    stack = _stack()
    x = 2 * torch.rand(5, 12, 3, dtype=DT)
    transitions = model_transitions(stack, x, torch.Generator().manual_seed(2))
    radii = transition_radii(transitions, method="exact")
    for t in transitions:
        per_sample = []
        for b in range(5):
            J = _jacrev(t, b)
            k = min(J.shape)
            per_sample.append(torch.linalg.eigvals(J[:k, :k]).abs().max())
        torch.testing.assert_close(torch.tensor(radii[t.name], dtype=DT),
                                   torch.stack(per_sample).mean(), rtol=1e-9, atol=1e-12)
    matrix_free = transition_radii(transitions, method="matrix_free", krylov_dim=15, tol=1e-10)
    for name, r in radii.items():
        assert abs(matrix_free[name] - r) < 1e-6 * max(1.0, r)


def test_time_floor_is_the_radius_at_zero_recurrent_kernel():
    stack = _stack()
    with torch.no_grad():
        for cell in stack:
            cell.A.zero_()
    x = 2 * torch.rand(8, 12, 3, dtype=DT)
    transitions = model_transitions(stack, x, torch.Generator().manual_seed(4))
    radii = transition_radii(transitions, method="exact", as_tensors=True)
    for l, cell in enumerate(stack):
        t = transitions[2 * l]
        assert t.kind == "time" and "alpha" in t.floor_why and "rho" in t.floor_why
        floor = t.floor(t.point, *t.context)  # (B,)
        per_sample = torch.stack([torch.linalg.eigvals(_jacrev(t, b)).abs().max()
                                  for b in range(8)])
        torch.testing.assert_close(floor, per_sample)
        torch.testing.assert_close(radii[t.name], floor.mean())
        # neurons away from threshold contribute their decays alpha and rho as eigenvalues
        quiet = _p(cell, t.point) == 0  # (B, N)
        decays = torch.maximum(cell.alpha, cell.rho).expand_as(quiet)
        lower = torch.where(quiet, decays, torch.zeros_like(decays)).amax(-1)
        assert bool((floor >= lower - 1e-12).all())


def test_floor_with_a_recurrent_kernel_is_a_lower_bound_only_in_the_limit():
    # with A != 0 the radius differs from the floor; the floor is what A -> 0 gives
    stack = _stack()
    x = 2 * torch.rand(4, 10, 3, dtype=DT)
    t = model_transitions(stack, x, torch.Generator().manual_seed(5))[0]
    full = transition_radii([t], method="exact")[t.name]
    with torch.no_grad():
        stack[0].A.mul_(1e-9)
    shrunk = transition_radii([t], method="exact")[t.name]
    torch.testing.assert_close(torch.tensor(shrunk, dtype=DT), t.floor(t.point, *t.context).mean())
    # some neuron of this batch is near threshold (p_i > 0), so the kernel A reaches the
    # Jacobian and shrinking it moves the radius
    assert bool((_p(stack[0], t.point) > 0).any())
    assert full != pytest.approx(shrunk, abs=1e-9)


def test_quiet_neurons_bound_the_time_radius_for_any_kernel():
    # a neuron with p_i = 0 (triangular surrogate, outside its support) makes e_{v_i} and
    # e_{a_i} eigenvectors of the time Jacobian with eigenvalues alpha_i and rho_i, whatever
    # A and B: no kernel can bring the radius below them
    stack = _stack()
    cell = stack[0]
    x = 2 * torch.rand(8, 12, 3, dtype=DT)
    for scale in (0.1, 1.0, 10.0):
        with torch.no_grad():
            cell.A.mul_(scale)
        t = model_transitions(stack, x, torch.Generator().manual_seed(6))[0]
        quiet = _p(cell, t.point) == 0  # (B, N)
        assert quiet.any(dim=1).all()
        per_sample = torch.stack([torch.linalg.eigvals(_jacrev(t, b)).abs().max()
                                  for b in range(8)])
        decays = torch.maximum(cell.alpha, cell.rho).expand_as(quiet)
        bound = torch.where(quiet, decays, torch.zeros_like(decays)).amax(-1)
        assert bool((per_sample >= bound - 1e-12).all())
