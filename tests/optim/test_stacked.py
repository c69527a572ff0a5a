"""StackedTrainer: every model's trajectory equals training it alone with torch.optim.Adam."""

import pytest
import torch
from torch import nn

from optim.stacked import StackedTrainer, cosine_lr
from recurrent_params import LRU, DenseRNN, DiagonalRNN

DT = torch.float64


def _models(kind, n):
    torch.manual_seed(0)
    make = {
        "dense": lambda: DenseRNN(1, 6, 1),
        "lru": lambda: LRU(1, 6, r_min=0.9),  # ExpMag + RealImag + learned gamma
        "diag-complex": lambda: DiagonalRNN(1, 6, 1, complex=True),  # complex parameter lam
    }[kind]
    return [make().to(DT) if kind != "diag-complex" else _double(make()) for _ in range(n)]


def _double(cell):
    # a complex parameter must stay complex: cast it by hand (module.double() keeps complex64)
    for name, p in list(cell.named_parameters(recurse=False)):
        dt = torch.complex128 if p.is_complex() else DT
        setattr(cell, name, nn.Parameter(p.detach().to(dt)))
    return cell.double()


def _loss(out, y):
    return 0.5 * ((out - y) ** 2).mean()


@pytest.mark.parametrize("kind", ["dense", "lru", "diag-complex"])
@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_each_model_follows_its_own_adam_trajectory(kind, schedule):
    lrs = [1e-3, 3e-2, 1e-1]
    models = _models(kind, 3)
    steps = 4
    trainer = StackedTrainer(models, lrs, schedule=schedule, total_steps=steps, eta_min=1e-7)
    gen = torch.Generator().manual_seed(1)
    data = [(torch.randn(3, 5, 1, dtype=DT, generator=gen),
             torch.randn(3, 5, 1, dtype=DT, generator=gen)) for _ in range(steps)]
    for x, y in data:
        trainer.step(_loss, x, target=y)
    for i, (model, lr) in enumerate(zip(models, lrs)):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-7) \
            if schedule == "cosine" else None
        for x, y in data:
            opt.zero_grad()
            _loss(model(x)[0], y).backward()
            opt.step()
            if sched is not None:
                sched.step()
        alone = dict(model.named_parameters())
        for k, v in trainer.params.items():
            torch.testing.assert_close(v[i], alone[k], rtol=1e-12, atol=1e-14, msg=k)
        # the same values come back as a module
        x = data[0][0]
        torch.testing.assert_close(trainer.model(i)(x)[0], model(x)[0], rtol=1e-12, atol=1e-13)


def test_per_model_data_and_inactive_models_are_frozen():
    models = _models("dense", 2)
    trainer = StackedTrainer(models, [1e-2, 1e-2], schedule="constant")
    x = torch.randn(2, 4, 5, 1, dtype=DT)  # one batch per model
    before = {k: v.detach().clone() for k, v in trainer.params.items()}
    losses = trainer.step(lambda o: (o ** 2).mean(), x, in_dims=(0,),
                          active=torch.tensor([True, False]))
    assert losses.shape == (2,)
    torch.testing.assert_close(losses[1], (models[1](x[1])[0] ** 2).mean().detach())
    for k, v in trainer.params.items():
        assert torch.equal(v[1], before[k][1])
        assert not torch.equal(v[0], before[k][0]), k


def test_cosine_lr_matches_torch_scheduler():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=1e-7)
    peak = torch.tensor(0.3, dtype=torch.float64)
    for t in range(8):
        assert abs(opt.param_groups[0]["lr"] - float(cosine_lr(peak, t, 7, 1e-7))) < 1e-12
        opt.step()
        sched.step()


def test_errors():
    with pytest.raises(ValueError, match="at least one"):
        StackedTrainer([], [])
    with pytest.raises(ValueError, match="lrs"):
        StackedTrainer([nn.Linear(2, 1)], [1e-3, 1e-3], schedule="constant")
    with pytest.raises(ValueError, match="total_steps"):
        StackedTrainer([nn.Linear(2, 1)], [1e-3])
    with pytest.raises(ValueError, match="differs"):
        StackedTrainer([nn.Linear(2, 1), nn.Linear(3, 1)], [1e-3, 1e-3], schedule="constant")
    with pytest.raises(ValueError, match="positive"):
        StackedTrainer([nn.Linear(2, 1)], [-1.0], schedule="constant")


# -- bad arguments (issue 21) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "active, error, match",
    [
        (torch.tensor([True, False, True]), ValueError, r"one flag per model, shape \(2,\), got "
                                                        r"shape \(3,\)"),
        (torch.tensor([True]), ValueError, r"shape \(2,\), got shape \(1,\)"),
        (torch.tensor([0.5, 1.0]), TypeError, "bool tensor .* got dtype torch.float32"),
        ("yes", TypeError, "bool tensor, got str"),
    ],
)
def test_active_of_the_wrong_length_or_type_is_a_clear_error(active, error, match):
    trainer = StackedTrainer(_models("dense", 2), [1e-2, 1e-2], schedule="constant")
    before = {k: v.detach().clone() for k, v in trainer.params.items()}
    x = torch.randn(4, 5, 1, dtype=DT)
    with pytest.raises(error, match=match):
        trainer.step(lambda o: (o ** 2).mean(), x, active=active)
    assert trainer.step_count == 0  # refused before anything moved
    for k, v in trainer.params.items():
        assert torch.equal(v, before[k])
    grads = {k: torch.zeros_like(v) for k, v in trainer.params.items()}
    with pytest.raises(error, match=match):
        trainer.apply_gradients(grads, active=active)


def test_active_as_a_list_of_bools_is_accepted():
    trainer = StackedTrainer(_models("dense", 2), [1e-2, 1e-2], schedule="constant")
    before = {k: v.detach().clone() for k, v in trainer.params.items()}
    trainer.step(lambda o: (o ** 2).mean(), torch.randn(4, 5, 1, dtype=DT), active=[False, True])
    for k, v in trainer.params.items():
        assert torch.equal(v[0], before[k][0]) and not torch.equal(v[1], before[k][1])


@pytest.mark.parametrize("kw", [dict(eps=float("nan")), dict(eps=float("inf")),
                                dict(eta_min=float("nan")), dict(eta_min=-1.0)])
def test_nonfinite_eps_and_eta_min_are_rejected(kw):
    with pytest.raises(ValueError, match="finite number >= 0"):
        StackedTrainer(_models("dense", 1), [1e-2], schedule="constant", **kw)
