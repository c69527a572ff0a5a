"""Effective learning rates vs a hand computation of each optimiser's formula."""

import copy
import math
import warnings

import adabelief_pytorch
import pytest
import torch

from diagnostics import EffectiveLRTracker, effective_learning_rates, supported_optimizers

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch_optimizer as topt

DT = torch.float64
B1, B2 = 0.9, 0.999


def _grads(steps, shape=(3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, dtype=DT, generator=g) * (1 + i) for i in range(steps)]


def _run(make, grads):
    """Feed fixed gradients; return (param, optimizer, param before the last step)."""
    p = torch.nn.Parameter(torch.randn(*grads[0].shape, dtype=DT))
    opt = make([p])
    before = None
    for g in grads:
        before = p.detach().clone()
        opt.zero_grad()
        p.grad = g.clone()
        opt.step()
    return p, opt, before


def _moments(grads, b1=B1, b2=B2):
    m = torch.zeros_like(grads[0])
    v = torch.zeros_like(grads[0])
    vmax = torch.zeros_like(grads[0])
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = torch.maximum(vmax, v)
    return m, v, vmax


def _rho(t, b2=B2):
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf - 2 * t * b2**t / (1 - b2**t), rho_inf


def _rect(t, b2=B2):
    rho, rho_inf = _rho(t, b2)
    return math.sqrt((1 - b2**t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf
                     / (rho_inf - 2))


# ---------------------------------------------------------------------------- hand formulas
def hand_adam(grads, lr, eps, amsgrad=False):
    t = len(grads)
    _, v, vmax = _moments(grads)
    vv = vmax if amsgrad else v
    return lr / (1 - B1**t) / ((vv / (1 - B2**t)).sqrt() + eps)


def _belief(grads, eps, amsgrad, eps_on_max):
    m = torch.zeros_like(grads[0])
    s = torch.zeros_like(grads[0])
    smax = torch.zeros_like(grads[0])
    for g in grads:
        m = B1 * m + (1 - B1) * g
        s = B2 * s + (1 - B2) * (g - m) ** 2
        if amsgrad and eps_on_max:  # torch-optimizer: max first, eps added to the max
            smax = torch.maximum(smax, s) + eps
        else:  # adabelief-pytorch: eps added to exp_avg_var in place, then the max
            s = s + eps
            smax = torch.maximum(smax, s)
    return s, smax


def hand_adabelief_pytorch(grads, lr, eps, rectify, amsgrad=False, sgd=True):
    t = len(grads)
    s, smax = _belief(grads, eps, amsgrad, eps_on_max=False)
    if not rectify:
        vv = smax if amsgrad else s
        return lr / (1 - B1**t) / (vv.sqrt() / math.sqrt(1 - B2**t) + eps)
    if _rho(t)[0] >= 5:
        return lr * _rect(t) / (1 - B1**t) / (s.sqrt() + eps)
    return torch.full_like(s, lr / (1 - B1**t) if sgd else 0.0)


def hand_adabelief_topt(grads, lr, eps, rectify, amsgrad=False):
    t = len(grads)
    s, smax = _belief(grads, eps, amsgrad, eps_on_max=True)
    denom = (smax if amsgrad else s).sqrt() / math.sqrt(1 - B2**t) + eps
    if not rectify:
        return lr / (1 - B1**t) / denom
    rho, rho_inf = _rho(t)
    if rho > 4:
        rt = math.sqrt((rho - 4) * (rho - 2) * rho_inf / (rho_inf - 4) / (rho_inf - 2) / rho)
        return rt * lr / (1 - B1**t) / denom
    return torch.full_like(s, lr)


def hand_radam(grads, lr, eps):
    t = len(grads)
    _, v, _ = _moments(grads)
    if _rho(t)[0] >= 5:
        return lr * _rect(t) / (1 - B1**t) / (v.sqrt() + eps)
    return torch.full_like(v, lr / (1 - B1**t))


def hand_yogi(grads, lr, eps, init=1e-6):
    t = len(grads)
    v = torch.full_like(grads[0], init)
    for g in grads:
        v = v - (1 - B2) * torch.sign(v - g * g) * g * g
    return lr / (1 - B1**t) / (v.sqrt() / math.sqrt(1 - B2**t) + eps)


def _scaled(grads, lr, eps, t=None, v=None):
    t = len(grads) if t is None else t
    if v is None:
        _, v, _ = _moments(grads)
    return lr * math.sqrt(1 - B2**t) / (1 - B1**t) / (v.sqrt() + eps)


def hand_adamod(grads, lr, eps, b3=0.999):
    ea = torch.zeros_like(grads[0])
    for t in range(1, len(grads) + 1):
        step = _scaled(grads[:t], lr, eps)
        ea = b3 * ea + (1 - b3) * step
    return torch.minimum(step, ea)


def hand_adabound(grads, lr, eps, final_lr=0.1, gamma=1e-3):
    t = len(grads)
    lower = final_lr * (1 - 1 / (gamma * t + 1))
    upper = final_lr * (1 + 1 / (gamma * t))
    return _scaled(grads, lr, eps).clamp(lower, upper)


def hand_lamb(grads, lr, eps, before):
    m, v, _ = _moments(grads)
    adam_step = m / (v.sqrt() + eps)
    trust = float(before.norm().clamp(0, 10) / adam_step.norm())
    return lr * trust / (v.sqrt() + eps)


T_LATE, T_EARLY = 9, 3  # rectified optimisers: adaptive phase (rho_t >= 5) and warm-up

CASES = {
    "adam": (lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-8),
             lambda g, b: hand_adam(g, 1e-2, 1e-8), T_LATE),
    "adam-amsgrad": (lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-8, amsgrad=True),
                     lambda g, b: hand_adam(g, 1e-2, 1e-8, amsgrad=True), T_LATE),
    "adamw": (lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, amsgrad=True),
              lambda g, b: hand_adam(g, 1e-2, 1e-8, amsgrad=True), T_LATE),
    "adabelief-pytorch": (
        lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-2, eps=1e-10, rectify=False,
                                               print_change_log=False),
        lambda g, b: hand_adabelief_pytorch(g, 1e-2, 1e-10, rectify=False), T_LATE),
    "adabelief-pytorch-amsgrad": (
        lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-2, eps=1e-10, rectify=False,
                                               amsgrad=True, print_change_log=False),
        lambda g, b: hand_adabelief_pytorch(g, 1e-2, 1e-10, rectify=False, amsgrad=True),
        T_LATE),
    "adabelief-pytorch-rectified": (
        lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-2, eps=1e-10, rectify=True,
                                               print_change_log=False),
        lambda g, b: hand_adabelief_pytorch(g, 1e-2, 1e-10, rectify=True), T_LATE),
    "adabelief-pytorch-rectified-warmup": (
        lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-2, eps=1e-10, rectify=True,
                                               print_change_log=False),
        lambda g, b: hand_adabelief_pytorch(g, 1e-2, 1e-10, rectify=True), T_EARLY),
    "adabelief-pytorch-rectified-warmup-nosgd": (
        lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-2, eps=1e-10, rectify=True,
                                               degenerated_to_sgd=False,
                                               print_change_log=False),
        lambda g, b: hand_adabelief_pytorch(g, 1e-2, 1e-10, rectify=True, sgd=False), T_EARLY),
    "topt-adabelief": (lambda ps: topt.AdaBelief(ps, lr=1e-2, eps=1e-8),
                       lambda g, b: hand_adabelief_topt(g, 1e-2, 1e-8, False), T_LATE),
    "topt-adabelief-amsgrad": (
        lambda ps: topt.AdaBelief(ps, lr=1e-2, eps=1e-8, amsgrad=True),
        lambda g, b: hand_adabelief_topt(g, 1e-2, 1e-8, False, amsgrad=True), T_LATE),
    "topt-adabelief-rectified": (
        lambda ps: topt.AdaBelief(ps, lr=1e-2, eps=1e-8, rectify=True),
        lambda g, b: hand_adabelief_topt(g, 1e-2, 1e-8, True), T_LATE),
    "topt-adabelief-rectified-warmup": (
        lambda ps: topt.AdaBelief(ps, lr=1e-2, eps=1e-8, rectify=True),
        lambda g, b: hand_adabelief_topt(g, 1e-2, 1e-8, True), T_EARLY),
    "topt-radam": (lambda ps: topt.RAdam(ps, lr=1e-2), lambda g, b: hand_radam(g, 1e-2, 1e-8),
                   T_LATE),
    "topt-radam-warmup": (lambda ps: topt.RAdam(ps, lr=1e-2),
                          lambda g, b: hand_radam(g, 1e-2, 1e-8), T_EARLY),
    "topt-yogi": (lambda ps: topt.Yogi(ps, lr=1e-2), lambda g, b: hand_yogi(g, 1e-2, 1e-3),
                  T_LATE),
    "topt-adamp": (lambda ps: topt.AdamP(ps, lr=1e-2),
                   lambda g, b: hand_adam(g, 1e-2, 1e-8), T_LATE),
    "topt-diffgrad": (lambda ps: topt.DiffGrad(ps, lr=1e-2),
                      lambda g, b: _scaled(g, 1e-2, 1e-8), T_LATE),
    "topt-adamod": (lambda ps: topt.AdaMod(ps, lr=1e-2),
                    lambda g, b: hand_adamod(g, 1e-2, 1e-8), T_LATE),
    "topt-adabound": (lambda ps: topt.AdaBound(ps, lr=1e-2),
                      lambda g, b: hand_adabound(g, 1e-2, 1e-8), T_LATE),
    "topt-lamb": (lambda ps: topt.Lamb(ps, lr=1e-2), lambda g, b: hand_lamb(g, 1e-2, 1e-6, b),
                  T_LATE),
}

PHASES = {"adabelief-pytorch-rectified-warmup": "momentum",
          "adabelief-pytorch-rectified-warmup-nosgd": "frozen",
          "topt-adabelief-rectified-warmup": "momentum", "topt-radam-warmup": "momentum"}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_matches_hand_formula(case, capsys):
    make, hand, steps = CASES[case]
    grads = _grads(steps)
    p, opt, before = _run(make, grads)
    res = effective_learning_rates(opt, [("w", p)])
    expected = hand(grads, before)
    if case.startswith("topt-radam"):  # torch-optimizer's RAdam keeps float32 moments
        expected, rtol = expected.float(), 1e-5
    else:
        rtol = 1e-10
    torch.testing.assert_close(res.rates["w"], expected, rtol=rtol, atol=0)
    assert res.phase["w"] == PHASES.get(case, "adaptive")
    assert res.step == steps
    s = res.summary["w"]
    a = res.rates["w"].abs()
    if s["geo_mean"] > 0:
        assert s["geo_mean"] == pytest.approx(float(a.double().log().mean().exp()), rel=1e-6)
    assert s["min"] == pytest.approx(float(a.min())) and s["max"] == pytest.approx(float(a.max()))
    assert s["median"] == pytest.approx(float(a.reshape(-1).median()) if a.numel() % 2 else
                                        float(a.reshape(-1).sort().values[2:4].mean()))


@pytest.mark.filterwarnings("ignore::UserWarning")
# DiffGrad scales m by a friction factor, AdamW decays weights, and torch-optimizer's RAdam
# round-trips float64 weights through float32, so its step is not exactly -eta * m
@pytest.mark.parametrize("case", [c for c in CASES if c not in ("topt-diffgrad", "adamw")
                                  and not c.startswith("topt-radam")])
def test_last_update_is_eta_times_first_moment(case, capsys):
    """The definition: the last step was -eta * exp_avg (weight decay off)."""
    make, _, steps = CASES[case]
    grads = _grads(steps, shape=(5,))  # 1-D: AdamP does not project vectors
    p, opt, before = _run(make, grads)
    eta = effective_learning_rates(opt, {"w": p}).rates["w"]
    m = opt.state[p]["exp_avg"]
    if effective_learning_rates(opt, {"w": p}).phase["w"] == "frozen":
        torch.testing.assert_close(p.detach(), before)
    else:
        torch.testing.assert_close(before - p.detach(), eta * m, rtol=1e-9, atol=1e-15)


def test_complex_parameter_through_real_view():
    c = torch.nn.Parameter(torch.randn(3, dtype=torch.complex128))
    r = torch.nn.Parameter(torch.view_as_real(c.detach()).clone())
    oc, orr = torch.optim.Adam([c], lr=1e-2), torch.optim.Adam([r], lr=1e-2)
    for _ in range(4):
        for p, o in ((c, oc), (r, orr)):
            o.zero_grad()
            (p.abs() ** 2).sum().backward() if p.is_complex() else (p**2).sum().backward()
            o.step()
    ec = effective_learning_rates(oc, {"c": c}).rates["c"]
    er = effective_learning_rates(orr, {"r": r}).rates["r"]
    assert ec.shape == (3, 2)
    torch.testing.assert_close(ec, er)


def test_all_ones_update_matches_next_step_and_restores_everything():
    grads = _grads(5)
    p, opt, _ = _run(lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.0), grads)
    twin_p = torch.nn.Parameter(p.detach().clone())
    twin = torch.optim.Adam([twin_p], lr=1e-2)
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append(1))
    p.grad = None
    res = effective_learning_rates(opt, {"w": p}, definition="all_ones")
    # hand: one more Adam step on g = 1
    m, v, _ = _moments(grads + [torch.ones_like(grads[0])])
    t = len(grads) + 1
    expected = 1e-2 * (m / (1 - B1**t)) / ((v / (1 - B2**t)).sqrt() + 1e-8)
    torch.testing.assert_close(res.rates["w"], expected, rtol=1e-10, atol=0)
    assert calls == [] and p.grad is None and res.definition == "all_ones"
    # the optimiser continues exactly as its untouched twin
    for q, o in ((p, opt), (twin_p, twin)):
        o.zero_grad()
        q.grad = torch.full_like(q, 0.3)
        o.step()
    torch.testing.assert_close(p.detach(), twin_p.detach(), rtol=0, atol=0)


def test_all_ones_works_for_any_optimizer_and_preconditioner_refuses_unknown():
    p = torch.nn.Parameter(torch.zeros(4))
    sgd = torch.optim.SGD([p], lr=0.5, weight_decay=1.0)
    res = effective_learning_rates(sgd, definition="all_ones")
    torch.testing.assert_close(res.rates["group0.param0"], torch.full((4,), 0.5))
    assert res.phase["group0.param0"] == "not_started"
    with pytest.raises(TypeError, match="SGD"):
        effective_learning_rates(sgd)
    with pytest.raises(ValueError, match="definition"):
        effective_learning_rates(sgd, definition="nope")
    assert "torch.optim.adam.Adam" in supported_optimizers()


def test_not_started_gives_nan():
    p = torch.nn.Parameter(torch.zeros(2))
    res = effective_learning_rates(torch.optim.Adam([p]))
    assert res.phase["group0.param0"] == "not_started"
    assert torch.isnan(res.rates["group0.param0"]).all()


def test_tracker_records_every_k_steps_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    tracker = EffectiveLRTracker(opt, model.named_parameters(), every=3, keep_tensors=True)
    for _ in range(9):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    assert tracker.steps == [3, 6, 9]
    steps, values = tracker.series("weight", "geo_mean")
    direct = effective_learning_rates(opt, model.named_parameters())
    assert values[-1] == pytest.approx(direct.summary["weight"]["geo_mean"])
    torch.testing.assert_close(tracker.records[-1].rates["bias"], direct.rates["bias"])
    fig = tracker.plot()
    fig.savefig(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 0
    tracker.remove()
    opt.step()
    assert len(tracker.records) == 3
    assert tracker.to_dict()["steps"] == [3, 6, 9]
    with pytest.raises(ValueError, match="unknown parameter"):
        tracker.series("nope")
    with pytest.raises(TypeError, match="SGD"):
        EffectiveLRTracker(torch.optim.SGD(model.parameters(), lr=0.1))


def test_tracker_with_all_ones_does_not_recurse():
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([p], lr=0.1)
    with EffectiveLRTracker(opt, {"p": p}, definition="all_ones") as tracker:
        for _ in range(3):
            opt.zero_grad()
            (p**2).sum().backward()
            opt.step()
    assert tracker.steps == [1, 2, 3] and len(tracker.records) == 3
    assert tracker.records[0].rates == {}


def test_effective_lrs_on_device(device):
    p = torch.nn.Parameter(torch.randn(4, device=device))
    opt = torch.optim.Adam([p], lr=1e-2)
    grads = [torch.randn(4, device=device) for _ in range(3)]
    for g in grads:
        opt.zero_grad()
        p.grad = g.clone()
        opt.step()
    res = effective_learning_rates(opt, {"p": p})
    expected = hand_adam([g.double().cpu() for g in grads], 1e-2, 1e-8).float()
    torch.testing.assert_close(res.rates["p"].cpu(), expected, rtol=1e-5, atol=0)
    ones = effective_learning_rates(opt, {"p": p}, definition="all_ones")
    assert ones.rates["p"].device.type == device.type


def _adam_steps(opt, p, grads):
    for g in grads:
        opt.zero_grad()
        p.grad = g.clone()
        opt.step()


def test_tracker_records_the_optimizers_step_after_a_rewind():
    grads = _grads(9, shape=(3,))
    p = torch.nn.Parameter(torch.zeros(3, dtype=DT))
    opt = torch.optim.Adam([p], lr=1e-2)
    tracker = EffectiveLRTracker(opt, {"p": p}, every=2, keep_tensors=True)
    _adam_steps(opt, p, grads[:3])
    saved = (copy.deepcopy(opt.state_dict()), p.detach().clone())
    _adam_steps(opt, p, grads[3:6])
    assert tracker.steps == [2, 4, 6]
    opt.load_state_dict(saved[0])  # back to step 3: steps 4-6 are abandoned
    with torch.no_grad():
        p.copy_(saved[1])
    _adam_steps(opt, p, grads[6:9])  # the new steps 4, 5, 6
    assert tracker.steps == [2, 4, 6] and len(tracker.records) == 3
    # the kept step-6 record is the new run's: Adam's eta from the moments of grads 0-2, 6-8
    _, v, _ = _moments(grads[:3] + grads[6:9])
    eta = 1e-2 / (1 - B1**6) / ((v / (1 - B2**6)).sqrt() + 1e-8)
    torch.testing.assert_close(tracker.records[-1].rates["p"], eta, rtol=1e-10, atol=0)
    tracker.remove()


def test_tracker_group_records_follow_a_rewind():
    grads = _grads(9, shape=(3,))
    p = torch.nn.Parameter(torch.zeros(3, dtype=DT))
    opt = torch.optim.Adam([p], lr=1e-2)
    tracker = EffectiveLRTracker(opt, {"p": p}, every=2, groups={"p": "recurrent"})
    _adam_steps(opt, p, grads[:3])
    saved = (copy.deepcopy(opt.state_dict()), p.detach().clone())
    _adam_steps(opt, p, grads[3:6])
    opt.load_state_dict(saved[0])
    with torch.no_grad():
        p.copy_(saved[1])
    _adam_steps(opt, p, grads[6:9])
    steps, values = tracker.group_series("recurrent", "median")
    assert steps == [2, 4, 6] and len(values) == 3 == len(tracker.group_records)
    assert values[-1] == tracker.records[-1].summary["p"]["median"]  # the new run's step 6
    tracker.remove()


def test_tracker_on_a_resumed_optimizer_records_its_step_numbers():
    grads = _grads(6, shape=(3,))
    p = torch.nn.Parameter(torch.zeros(3, dtype=DT))
    first = torch.optim.Adam([p], lr=1e-2)
    _adam_steps(first, p, grads[:4])
    resumed = torch.optim.Adam([p], lr=1e-2)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    with EffectiveLRTracker(resumed, {"p": p}) as tracker:
        _adam_steps(resumed, p, grads[4:])
    assert tracker.steps == [5, 6]
    assert [r.step for r in tracker.records] == [5, 6]


def test_tracker_counts_calls_of_an_optimizer_without_a_step_count():
    p = torch.nn.Parameter(torch.zeros(2))
    sgd = torch.optim.SGD([p], lr=0.1)
    with EffectiveLRTracker(sgd, {"p": p}, every=2, definition="all_ones") as tracker:
        for _ in range(4):
            p.grad = torch.ones(2)
            sgd.step()
    assert tracker.steps == [2, 4]
    torch.testing.assert_close(tracker.records[0].summary["p"]["median"], 0.1)


def test_named_tensor_not_in_the_optimizer_is_refused_by_name():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p])
    with pytest.raises(ValueError, match="'q' is not a parameter of this Adam"):
        effective_learning_rates(opt, {"p": p, "q": q})
    with pytest.raises(ValueError, match="'q'"):
        EffectiveLRTracker(opt, {"q": q})
    # naming a subset is fine: the others keep their positional key
    r = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p, r])
    assert set(effective_learning_rates(opt, {"p": p}).rates) == {"p", "group0.param1"}


def test_complex_parameter_named_through_a_complex_safe_optimizer():
    from optim import ComplexSafeOptimizer

    c = torch.nn.Parameter(torch.randn(3, dtype=torch.complex128))
    opt = ComplexSafeOptimizer(torch.optim.Adam, [c], lr=1e-2)
    (c.abs() ** 2).sum().backward()
    opt.step()
    res = effective_learning_rates(opt, {"c": c}, definition="all_ones")
    assert list(res.rates) == ["c"] and res.rates["c"].shape == (3, 2)


@pytest.mark.parametrize("kwargs,steps", [({"rectify": False}, 8), ({"rectify": True}, 8),
                                          ({"rectify": True}, 4),
                                          ({"rectify": False, "amsgrad": True}, 8)])
def test_the_packages_adabelief_matches_its_closed_form(kwargs, steps):
    from optim import AdaBelief

    eps = 1e-16
    grads = _grads(steps)
    p, opt, before = _run(lambda ps: AdaBelief(ps, lr=1e-2, eps=eps, **kwargs), grads)
    res = effective_learning_rates(opt, {"w": p})
    # hand: s_t = b2 s + (1 - b2)(g - m)^2 + eps (eps added in place every step)
    m, s, s_max = torch.zeros_like(grads[0]), torch.zeros_like(grads[0]), None
    for g in grads:
        m = B1 * m + (1 - B1) * g
        s = B2 * s + (1 - B2) * (g - m) ** 2 + eps
        s_max = s if s_max is None else torch.maximum(s_max, s)
    t = len(grads)
    if kwargs["rectify"] and _rho(t)[0] < 5:  # t = 4: RAdam's warm-up, plain momentum
        expected, phase = torch.full_like(m, 1e-2 / (1 - B1**t)), "momentum"
    elif kwargs["rectify"]:  # t = 8: rho_t = 7.99 >= 5, the rectified step
        expected, phase = 1e-2 * _rect(t) / (1 - B1**t) / (s.sqrt() + eps), "adaptive"
    else:
        v = s_max if kwargs.get("amsgrad") else s
        expected, phase = 1e-2 / (1 - B1**t) / ((v / (1 - B2**t)).sqrt() + eps), "adaptive"
    assert res.phase["w"] == phase
    torch.testing.assert_close(res.rates["w"], expected, rtol=1e-9, atol=0)
    # and it is the factor of the last step: before - after = eta * m
    torch.testing.assert_close(before - p.detach(), expected * m, rtol=1e-9, atol=1e-18)
    assert "optim.adabelief.AdaBelief" in supported_optimizers()


def test_all_ones_step_runs_no_hooks_of_a_lookahead():
    from optim import AdaBelief, lookahead

    p = torch.nn.Parameter(torch.ones(2))
    opt = lookahead(AdaBelief([p], lr=0.1), k=2)
    seen = []
    opt.register_step_post_hook(lambda *a: seen.append(1))
    p.grad = torch.ones(2)
    opt.step()
    assert seen == [1]  # the wrapper runs torch's step hooks like any optimiser
    res = effective_learning_rates(opt, {"p": p}, definition="all_ones")
    assert seen == [1] and torch.isfinite(res.rates["p"]).all()
    assert res.rates["p"].abs().min() > 0
