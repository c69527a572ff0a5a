"""Hessian tools over a process group: two gloo processes vs one process on the whole batch.

One pair of processes (``tests/_distributed.py``: loopback, a free port, killed after the
time limit) computes everything for the tests of this file; each test compares one quantity
with the single-process float64 result on the concatenated batch, and the two ranks with each
other (bit for bit).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diagnostics import (
    HessianOperator,
    ShardReducer,
    eigsh,
    hessian_diagonality,
    hutchinson,
    resolve_process_group,
    transition_radii,
    unwrap_model,
)
from tests._distributed import run_in_processes
from tests.diagnostics._models import DT, TinyComplexRNN, mlp, mse

SHARDS = [(0, 3), (3, 7)]  # unequal on purpose: the weights n_r / N matter


def _problem():
    torch.manual_seed(0)
    model = TinyComplexRNN(3)  # complex lam and C: their real views enter theta
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 6, dtype=DT, generator=g)
    y = torch.randn(7, 6, dtype=DT, generator=g)
    return model, x, y


def _mlp_problem():
    torch.manual_seed(2)
    model = mlp()
    g = torch.Generator().manual_seed(3)
    return model, torch.randn(7, 3, dtype=DT, generator=g), torch.randn(7, 2, dtype=DT,
                                                                          generator=g)


def _vectors(n: int) -> torch.Tensor:
    return torch.randn(n, 4, dtype=DT, generator=torch.Generator().manual_seed(4))  # (P, 4)


def _measure(model, batch, full: bool = True) -> dict:
    op = HessianOperator(model, mse, batch, progress=False, chunk_size=5)
    exact = hessian_diagonality(op, k=2, method="exact", progress=False)
    out = {"hv": op @ _vectors(op.num_params), "loss": op.loss(), "grad": op.gradient(),
           "mass_exact": exact.diagonal_mass, "top_exact": exact.top_eigenvalues}
    if not full:
        return out
    free = hessian_diagonality(op, k=2, method="matrix-free", num_probes=20, block_probes=5,
                               progress=False)
    est = hutchinson(op, 20, seed=1)
    return {
        **out, "dense": op.dense(), "eig": eigsh(op, 3, seed=5).values,
        "eig_scipy": eigsh(op, 2, method="scipy").values,
        "hutch_diag": est.diag, "hutch_fro": est.frobenius_sq,
        "mass_free": free.diagonal_mass, "top_free": free.top_eigenvalues,
        "blocks_free": free.block_masses,
    }


def _worker(rank: int, world: int) -> dict:
    lo, hi = SHARDS[rank]
    model, x, y = _problem()
    out = {"op": _measure(model, (x[lo:hi], y[lo:hi]))}
    # a DDP model: diagnostics act on .module; DDP trains normally afterwards
    net, xm, ym = _mlp_problem()
    ddp = nn.parallel.DistributedDataParallel(net)
    out["ddp"] = _measure(ddp, (xm[lo:hi], ym[lo:hi]), full=False)
    out["radii"] = transition_radii(ddp, xm[lo:hi])  # the radii of the whole batch
    ddp.zero_grad()
    mse(ddp(xm[lo:hi]), ym[lo:hi]).backward()  # DDP averages the gradients over the ranks
    out["ddp_grad"] = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    # bad input: ranks that disagree raise on every rank (nobody is left waiting)
    errors = {}
    try:
        HessianOperator(model, mse, (x[lo:hi], y[lo:hi]), progress=False,
                        param_names=["lam", "B"] if rank else ["lam"])
    except ValueError as exc:
        errors["param_names"] = str(exc)
    other, _, _ = _problem()
    with torch.no_grad():
        other.B.add_(1e-3 * rank)
    try:
        HessianOperator(other, mse, (x[lo:hi], y[lo:hi]), progress=False)
    except ValueError as exc:
        errors["theta"] = str(exc)
    try:
        ShardReducer(0)
    except ValueError as exc:
        errors["empty"] = str(exc)
    out["errors"] = errors
    local = HessianOperator(model, mse, (x[lo:hi], y[lo:hi]), progress=False,
                            process_group="local")
    out["local_loss"] = local.loss()
    return out


@pytest.fixture(scope="module")
def ranks():
    return run_in_processes(_worker, 2, timeout=180)  # a bound, not a measurement


@pytest.fixture(scope="module")
def reference():
    model, x, y = _problem()
    net, xm, ym = _mlp_problem()
    return {"op": _measure(model, (x, y)), "ddp": _measure(net, (xm, ym), full=False),
            "radii": transition_radii(net, xm),
            "local_loss": [float(mse(model(x[lo:hi]), y[lo:hi]).detach()) for lo, hi in SHARDS]}


KEYS = ["hv", "loss", "grad", "dense", "eig", "eig_scipy", "hutch_diag", "hutch_fro",
        "mass_exact", "top_exact", "mass_free", "top_free", "blocks_free"]
CASES = [("op", key) for key in KEYS] + [("ddp", key) for key in KEYS[:3] + KEYS[8:10]]


@pytest.mark.parametrize(("which", "key"), CASES)
def test_two_processes_match_one_process_on_the_whole_batch(ranks, reference, which, key):
    ref = reference[which][key]
    for r in ranks:
        got = r[which][key]
        if isinstance(ref, dict):
            assert got.keys() == ref.keys()
            got, ref_ = list(got.values()), list(ref.values())
        else:
            ref_ = ref
        torch.testing.assert_close(torch.as_tensor(got, dtype=DT), torch.as_tensor(ref_, dtype=DT),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["op", "ddp"])
def test_every_rank_gets_identical_results(ranks, which):
    a, b = ranks[0][which], ranks[1][which]
    assert a.keys() == b.keys()
    for key in a:
        va, vb = a[key], b[key]
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), key
        else:
            assert va == vb, key


def test_transition_radii_of_a_ddp_model_are_those_of_the_whole_batch(ranks, reference):
    ref = reference["radii"]
    for r in ranks:
        assert r["radii"].keys() == ref.keys()
        for name in ref:
            assert r["radii"][name] == pytest.approx(ref[name], rel=1e-12, abs=1e-14)
    assert ranks[0]["radii"] == ranks[1]["radii"]


def test_ddp_still_trains_after_the_diagnostics(ranks):
    # DDP's own gradient reduction still works: both ranks hold the full-batch gradient
    # (mean of the two shard means, DDP's convention), bit-identical
    assert torch.equal(ranks[0]["ddp_grad"], ranks[1]["ddp_grad"])
    net, xm, ym = _mlp_problem()
    grads = []
    for lo, hi in SHARDS:
        net.zero_grad()
        mse(net(xm[lo:hi]), ym[lo:hi]).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    torch.testing.assert_close(ranks[0]["ddp_grad"], (grads[0] + grads[1]) / 2)


def test_inconsistent_ranks_raise_on_every_rank(ranks):
    for r in ranks:
        assert "disagree" in r["errors"]["param_names"]
        assert "differ between the ranks" in r["errors"]["theta"]
        assert "all empty" in r["errors"]["empty"]


def test_local_group_reduces_nothing(ranks, reference):
    for rank, r in enumerate(ranks):
        assert r["local_loss"] == pytest.approx(reference["local_loss"][rank], rel=1e-12)


def test_single_process_path_needs_no_group():
    assert resolve_process_group() is None
    op = HessianOperator(*_problem()[:1], mse, _problem()[1:], progress=False)
    assert not op.reducer.active and op.reducer.weight == 1.0
    with pytest.raises(ValueError, match="not initialised"):
        resolve_process_group(object())
    with pytest.raises(ValueError, match="'local'"):
        resolve_process_group("world")
    with pytest.raises(ValueError, match="reduction"):
        ShardReducer(3, reduction="median")


def test_unwrap_model_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="nn.Module or a DistributedDataParallel"):
        unwrap_model("net")
    with pytest.raises(TypeError, match="nn.Module or a DistributedDataParallel"):
        HessianOperator(lambda x: x, mse, (torch.zeros(1), torch.zeros(1)))

    class FullyShardedDataParallel(nn.Module):  # stands in for torch's FSDP wrapper
        pass

    with pytest.raises(TypeError, match="FSDP"):
        unwrap_model(FullyShardedDataParallel())


def test_estimators_take_any_linear_operator():
    a = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]], dtype=DT)
    values, vectors = eigsh(a, 2)
    torch.testing.assert_close(values, torch.linalg.eigvalsh(a).flip(0)[:2])
    torch.testing.assert_close(a @ vectors, vectors * values)
    model, loss, batch = _quadratic(a)
    op = HessianOperator(model, loss, batch, progress=False)
    # the operator and its dense matrix give the same estimates from the same probes
    est_op, est_dense = hutchinson(op, 12, seed=3), hutchinson(a, 12, seed=3)
    torch.testing.assert_close(est_op.diag, est_dense.diag)
    assert est_op.frobenius_sq == pytest.approx(est_dense.frobenius_sq, rel=1e-12)
    block = hutchinson(a, 12, block=(1, 2))
    torch.testing.assert_close(block.diag, torch.tensor([0.0, 3.0, 0.0], dtype=DT))
    with pytest.raises(ValueError, match="square operator"):
        hutchinson(torch.zeros(2, 3, dtype=DT), 5)
    with pytest.raises(ValueError, match="block"):
        hutchinson(a, 5, block=(2, 1))


def _quadratic(a):
    from tests.diagnostics._models import quadratic

    return quadratic(a)
