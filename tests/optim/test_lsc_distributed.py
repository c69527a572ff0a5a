"""LSC pre-training over a process group: two gloo processes vs one process on the whole batch.

One pair of processes (``tests/_distributed.py``: loopback, a free port, killed after the time
limit) runs every scenario; the tests compare with single-process float64 runs on the
concatenated batch, and the ranks with each other (bit for bit).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optim import LSCPretrainer
from tests._distributed import run_in_processes

DT = torch.float64
SHARDS = [(0, 4), (4, 10)]  # unequal on purpose
STEPS = 3


def _ffn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5), nn.Tanh()).to(DT)


def _batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(10, 5, dtype=DT, generator=g) for _ in range(2)]


def _pretrain(model, batches, **kw):
    pre = LSCPretrainer(model, batches, shuffle=0.0, patience=50, max_steps=20,
                        progress=False, **kw)
    result = pre.run(num_steps=STEPS)  # a pause keeps the current (not the best) weights
    return {"before": result.radii_before, "history": [h["radii"] for h in result.history],
            "after": result.radii_after,
            "state": {k: v.clone() for k, v in model.state_dict().items()}}


def _rnn():
    torch.manual_seed(3)
    return nn.RNN(3, 6, num_layers=2, batch_first=True).to(DT)


def _worker(rank: int, world: int) -> dict:
    lo, hi = SHARDS[rank]
    out = {"ffn": _pretrain(_ffn(), [b[lo:hi] for b in _batches()])}
    # a DDP model with Gaussian inputs (each rank its own) and shuffling on every step:
    # the rescaling and the permutations must be the same on every rank
    rnn = _rnn()
    if rank:
        with torch.no_grad():  # DDP broadcasts rank 0's weights at construction
            for p in rnn.parameters():
                p.add_(1.0)
    ddp = nn.parallel.DistributedDataParallel(rnn)
    pre = LSCPretrainer(ddp, batch_size=4, seq_len=5, shuffle_every=1, max_steps=4,
                        progress=False)
    result = pre.run()
    out["ddp"] = {"state": {k: v.clone() for k, v in rnn.state_dict().items()},
                  "history": [h["radii"] for h in result.history],
                  "after": result.radii_after, "steps": result.steps}
    return out


@pytest.fixture(scope="module")
def ranks():
    return run_in_processes(_worker, 2, timeout=180)  # a bound, not a measurement


@pytest.fixture(scope="module")
def reference():
    return _pretrain(_ffn(), _batches())


def _close(a, b):
    torch.testing.assert_close(torch.as_tensor(a, dtype=DT), torch.as_tensor(b, dtype=DT),
                               rtol=1e-10, atol=1e-12)


def test_radii_match_one_process_on_the_whole_batch(ranks, reference):
    for r in ranks:
        got = r["ffn"]
        assert got["before"].keys() == reference["before"].keys()
        _close(list(got["before"].values()), list(reference["before"].values()))
        assert len(got["history"]) == len(reference["history"]) == STEPS
        for h, ref in zip(got["history"], reference["history"]):
            _close(list(h.values()), list(ref.values()))
        _close(list(got["after"].values()), list(reference["after"].values()))


def test_weights_after_pretraining_steps_match_one_process(ranks, reference):
    for r in ranks:
        for name, ref in reference["state"].items():
            _close(r["ffn"]["state"][name], ref)
    assert any(not torch.equal(ref, _ffn().state_dict()[k])
               for k, ref in reference["state"].items())  # the steps did move the weights


def test_weights_stay_bit_identical_across_ranks(ranks):
    for key in ("ffn", "ddp"):
        a, b = ranks[0][key]["state"], ranks[1][key]["state"]
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), (key, name)
    assert ranks[0]["ddp"]["history"] == ranks[1]["ddp"]["history"]
    assert ranks[0]["ddp"]["after"] == ranks[1]["ddp"]["after"]
    assert ranks[0]["ddp"]["steps"] == ranks[1]["ddp"]["steps"] >= 1
    # shuffled every step, rank 0's start: the weights moved away from it
    start = _rnn().state_dict()
    assert not torch.equal(ranks[0]["ddp"]["state"]["weight_hh_l0"], start["weight_hh_l0"])


def test_lsc_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="nn.Module or a DistributedDataParallel"):
        LSCPretrainer("net")
