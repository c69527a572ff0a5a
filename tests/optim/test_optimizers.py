"""Complex-safe optimisers: AdaBelief faithful to adabelief-pytorch, complex == real view."""

import contextlib
import copy
import io
import warnings

import pytest
import torch
from adabelief_pytorch import AdaBelief as ReferenceAdaBelief

from optim import AdaBelief, ComplexSafeOptimizer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch_optimizer

HYPER = [
    {},
    {"rectify": False},
    {"amsgrad": True, "weight_decay": 0.1},
    {"weight_decouple": False, "weight_decay": 0.1, "rectify": False},
    {"fixed_decay": True, "weight_decay": 0.01},
    {"degenerated_to_sgd": False},
]


def _loss(p):  # real loss of a real tensor (..., 2) or of any real tensor
    w = torch.arange(1, p.numel() + 1, dtype=p.dtype).reshape(p.shape)
    return (w * p**2).sum() + p.sum() + (p**3).sum() * 0.1


@pytest.mark.parametrize("kwargs", HYPER)
def test_adabelief_matches_adabelief_pytorch_on_real_parameters(kwargs):
    w0 = torch.randn(6, dtype=torch.float64)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = AdaBelief([a], lr=0.01, **kwargs)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ReferenceAdaBelief([b], lr=0.01, **kwargs)
    for _ in range(12):
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            _loss(p).backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_adabelief_is_silent_and_keeps_hyperparameters_in_groups(capsys):
    p = torch.nn.Parameter(torch.zeros(2))
    opt = AdaBelief([p], rectify=False, weight_decouple=False)
    assert capsys.readouterr().out == ""
    group = opt.param_groups[0]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "weight_decouple",
                "fixed_decay", "rectify", "degenerated_to_sgd"):
        assert key in group
    assert group["rectify"] is False and group["eps"] == 1e-16
    with pytest.raises(ValueError, match="lr >= 0"):
        AdaBelief([p], lr=-1.0)


def _adabelief(params, **kw):
    return AdaBelief(params, lr=0.05, **kw)


def _wrapped(cls):
    def make(params, **kw):
        return ComplexSafeOptimizer(cls, params, lr=0.05, **kw)
    return make


OPTIMISERS = {
    "AdaBelief": (_adabelief, lambda params: AdaBelief(params, lr=0.05)),
    "torch_optimizer.AdaBelief": (_wrapped(torch_optimizer.AdaBelief),
                                  lambda params: torch_optimizer.AdaBelief(params, lr=0.05)),
    "torch_optimizer.Yogi": (_wrapped(torch_optimizer.Yogi),
                             lambda params: torch_optimizer.Yogi(params, lr=0.05)),
    "torch.optim.Adam": (_wrapped(torch.optim.Adam), lambda params: torch.optim.Adam(params,
                                                                                     lr=0.05)),
}


@pytest.fixture(params=sorted(OPTIMISERS))
def optimiser(request):
    return OPTIMISERS[request.param]


def test_complex_update_equals_real_view_update(optimiser):
    make, make_real = optimiser
    z0 = torch.randn(3, 2, dtype=torch.complex128)
    real0 = torch.randn(4, dtype=torch.float64)
    z = torch.nn.Parameter(z0.clone())
    r = torch.nn.Parameter(real0.clone())
    zr = torch.nn.Parameter(torch.view_as_real(z0).clone())  # the real view, as a real param
    r2 = torch.nn.Parameter(real0.clone())
    opt_c, opt_r = make([z, r]), make_real([zr, r2])
    for _ in range(6):
        opt_c.zero_grad()
        opt_r.zero_grad()
        (_loss(torch.view_as_real(z)) + _loss(r)).backward()
        (_loss(zr) + _loss(r2)).backward()
        opt_c.step()
        opt_r.step()
    assert z.is_complex()
    torch.testing.assert_close(torch.view_as_real(z.detach()), zr.detach(), rtol=1e-12,
                               atol=1e-14)
    torch.testing.assert_close(r, r2, rtol=1e-12, atol=1e-14)
    assert not torch.equal(z.detach(), z0)  # it moved, imaginary part included
    assert not torch.equal(z.detach().imag, z0.imag)


def test_state_dict_round_trip_resumes_identically(optimiser):
    make, _ = optimiser
    z0 = torch.randn(3, dtype=torch.complex128)
    a, b = torch.nn.Parameter(z0.clone()), torch.nn.Parameter(z0.clone())
    opt_a = make([a])
    for _ in range(3):
        opt_a.zero_grad()
        _loss(torch.view_as_real(a)).backward()
        opt_a.step()
    b.data.copy_(a.data)
    opt_b = make([b])
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # torch aliases tensors
    for _ in range(3):
        for p, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            _loss(torch.view_as_real(p)).backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_wrapper_passes_hyperparameters_and_works_with_schedulers(capsys):
    from adabelief_pytorch import AdaBelief as Banner

    p = torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))
    opt = ComplexSafeOptimizer(Banner, [p], lr=0.1, print_change_log=True)
    assert capsys.readouterr().out == ""  # the construction banner is swallowed
    assert opt.param_groups[0]["lr"] == 0.1 and opt.defaults["lr"] == 0.1
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    (p.abs() ** 2).sum().backward()
    opt.step()
    sched.step()
    assert opt.inner.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.zero_grad()
    assert p.grad is None
    with pytest.raises(TypeError, match="Optimizer subclass"):
        ComplexSafeOptimizer(object, [p])


def test_lookahead_steps_like_torch_optimizers_and_round_trips():
    from optim import lookahead

    z0 = torch.randn(4, dtype=torch.float64)
    a, b, c = (torch.nn.Parameter(z0.clone()) for _ in range(3))
    ours = lookahead(torch.optim.Adam([a], lr=0.1), k=3, alpha=0.5)
    ref = torch_optimizer.Lookahead(torch.optim.Adam([b], lr=0.1), k=3, alpha=0.5)
    assert isinstance(ours, torch_optimizer.Lookahead)
    for _ in range(7):
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            _loss(p).backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same update
    # torch 2.13's state_dict / load_state_dict need the hook tables the constructor makes
    resumed = lookahead(torch.optim.Adam([c], lr=0.1), k=3, alpha=0.5)
    c.data.copy_(a.data)
    resumed.load_state_dict(copy.deepcopy(ours.state_dict()))
    for _ in range(4):
        for p, opt in ((a, ours), (c, resumed)):
            opt.zero_grad()
            _loss(p).backward()
            opt.step()
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    calls = []
    ours.register_step_pre_hook(lambda *args: calls.append("pre"))
    ours.register_step_post_hook(lambda *args: calls.append("post"))
    ours.step()
    assert calls == ["pre", "post"]


@pytest.mark.parametrize("k,alpha,error", [(0, 0.5, ValueError), (1, 2.0, ValueError),
                                           (2, 0.0, ValueError), (2.5, 0.5, TypeError),
                                           (True, 0.5, TypeError)])
def test_lookahead_refuses_k_and_alpha_it_cannot_use(k, alpha, error):
    from optim import lookahead

    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(error, match="k must" if alpha == 0.5 else "alpha must"):
        lookahead(torch.optim.SGD([p], lr=0.1), k=k, alpha=alpha)
