"""The long-memory benchmark: quick preset end to end, resumable sweeps, checkpoint resume,
parameter budgets, and the recurrent / input-output / other parameter groups."""

from __future__ import annotations

import json
import math

import pytest
import torch

from diagnostics import recurrent_parameter_groups
from recurrent_params.experiments import long_memory as lm
from tests._cli import read_jsonl
from tests._cli import run_cli as _cli

QUICK = ["long-memory", "--quick", "--no-progress", "--threads", "1"]


def _records(folder):
    return read_jsonl(folder / "long_memory_runs.jsonl")


def test_quick_preset_runs_end_to_end_and_writes_its_outputs(tmp_path, capsys):
    assert _cli([*QUICK, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stand-in" in out and "not MNIST" in out  # the quick data say what they are
    for model in lm.MODELS:
        assert model in out
    recs = _records(tmp_path)
    assert sorted(r["model"] for r in recs) == sorted(lm.MODELS)
    for r in recs:
        assert r["dataset"] == "digits28" and r["order"] == "permuted"
        assert len(r["curve"]) == 1 and 0.0 <= r["test_acc"] <= 1.0
        assert r["samples_per_s"] > 0
        assert set(r["eff_lr"]) >= {"recurrent", "input_output", "other"}
        assert all(math.isfinite(v["median"]) for v in r["eff_lr"].values())
    summary = json.loads((tmp_path / "long-memory.json").read_text())
    assert len(summary["table"]) == len(lm.MODELS)
    assert "stand-in" in lm.summarize(summary)
    table = (tmp_path / "long_memory.md").read_text()
    assert table.count("| digits28 | permuted |") == len(lm.MODELS)
    assert (tmp_path / "long_memory.png").exists()
    assert not list((tmp_path / "long_memory_checkpoints").glob("*.pt"))  # cleaned up


def test_rerun_skips_finished_runs_and_reruns_changed_sizes(tmp_path, capsys):
    args = [*QUICK, "--out", str(tmp_path), "--train-size", "32"]
    assert _cli([*args, "--models", "lru"]) == 0
    first = _records(tmp_path)
    assert _cli([*args, "--models", "lru", "gru"]) == 0
    assert "1 of 2 runs already" in capsys.readouterr().out
    recs = _records(tmp_path)
    assert [r["model"] for r in recs] == ["lru", "gru"]  # lru was not trained again
    assert recs[0] == first[0]
    summary = json.loads((tmp_path / "long-memory.json").read_text())
    assert [r["model"] for r in summary["table"]] == ["lru", "gru"]  # old and new reported
    assert _cli([*args, "--models", "lru", "--epochs", "2"]) == 0  # other sizes: a new run
    assert [r["model"] for r in _records(tmp_path)] == ["lru", "gru", "lru"]


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("model", ["diag-expmag", "lstm"])
def test_interrupted_run_resumes_to_the_same_numbers_in_float64(tmp_path, monkeypatch, model):
    args = [*QUICK, "--models", model, "--epochs", "3", "--train-size", "48", "--dtype",
            "float64", "--dropout", "0.2"]  # dropout: the restored generator matters
    assert _cli([*args, "--out", str(tmp_path / "straight")]) == 0
    straight = _records(tmp_path / "straight")[0]

    def stop(key, epoch):
        if epoch == 1:
            raise _Interrupt

    monkeypatch.setattr(lm, "_on_epoch_end", stop)
    with pytest.raises(_Interrupt):
        _cli([*args, "--out", str(tmp_path / "cut")])
    ckpts = list((tmp_path / "cut" / "long_memory_checkpoints").glob("*.pt"))
    assert len(ckpts) == 1
    assert torch.load(ckpts[0], weights_only=False)["epoch"] == 1
    assert not (tmp_path / "cut" / "long_memory_runs.jsonl").exists()
    monkeypatch.setattr(lm, "_on_epoch_end", lambda key, epoch: None)
    assert _cli([*args, "--out", str(tmp_path / "cut")]) == 0
    resumed = _records(tmp_path / "cut")[0]
    assert len(resumed["curve"]) == 3
    for a, b in zip(straight["curve"], resumed["curve"]):
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                  "lr"):
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-12), k
        for g in a["eff_lr"]:
            assert a["eff_lr"][g]["median"] == pytest.approx(b["eff_lr"][g]["median"],
                                                            rel=1e-10)
    assert resumed["test_acc"] == straight["test_acc"]


@pytest.mark.parametrize("model", lm.MODELS)
def test_budget_matching(model):
    """At a 20k budget the recurrent stacks land within 1 % (``d_state`` is the fine knob),
    LSTM / GRU within 3 % (half a width step: one more unit adds ~8 * depth * d_model
    parameters) and no neighbouring width is closer; the reported count is the built
    model's."""
    budget, depth, ratio = 20000, 2, 0.5
    w = lm.match_budget(model, budget, depth, ratio)
    built = lm.build_model(model, w["d_model"], w["d_state"], depth)
    assert lm.count_parameters(built) == w["params"]
    assert abs(w["rel_gap"]) <= (0.03 if model in ("lstm", "gru") else 0.01)
    if model in ("lstm", "gru"):
        for d in (w["d_model"] - 1, w["d_model"] + 1):
            other = lm.count_parameters(lm.build_model(model, d, 1, depth))
            assert abs(other - budget) >= abs(w["params"] - budget)


def test_count_parameters_counts_complex_twice():
    m = torch.nn.Module()
    m.a = torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))
    m.b = torch.nn.Parameter(torch.zeros(2))
    assert lm.count_parameters(m) == 8


# -- parameter groups ---------------------------------------------------------------------------


def _expected_group(name: str) -> str:
    """The group by the parameter's name, written out independently of the helper."""
    if ".layer." not in name and not name.startswith("rnn."):
        return "other"  # encoder, norms, mixers, final norm, head
    if name.startswith("rnn."):
        return "recurrent" if ".weight_hh" in name or name.startswith("rnn.weight_hh") \
            else "input_output"
    local = name.split(".layer.", 1)[1]
    if local.startswith("parametrizations.lam.") or local.endswith("gamma_log") \
            or local == "A":
        return "recurrent"
    assert local.split(".")[0] in ("B", "C", "D") or local.split(".")[1] in ("B", "C"), local
    return "input_output"


@pytest.mark.parametrize("model", lm.MODELS)
def test_groups_put_each_parameter_where_it_belongs(model):
    net = lm.build_model(model, 6, 3, 2)
    groups = recurrent_parameter_groups(net)
    assert list(groups) == [n for n, _ in net.named_parameters()]
    for name, group in groups.items():
        assert group == _expected_group(name), name
    rec = {n for n, g in groups.items() if g == "recurrent"}
    if model in ("lru", "diag-polar", "diag-expmag"):
        # the eigenvalues' two originals (nu/theta or magnitude/angle) in every block
        assert sum("parametrizations.lam.original" in n for n in rec) == 4
        assert sum(n.endswith("gamma_log") for n in rec) == (0 if model == "diag-polar" else 2)
    other = [n for n, g in groups.items() if g == "other"]
    assert any(n.startswith("head.") for n in other)
    assert any("mixer" in n for n in other) == (model not in ("lstm", "gru"))
    assert rec  # every model has recurrent parameters


def test_optimizer_groups_follow_the_parameter_groups():
    net = lm.build_model("lru", 6, 3, 2)
    groups = recurrent_parameter_groups(net)
    opt = lm.make_optimizer(net, 1e-3, 0.5, 0.05)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["recurrent"]["lr"] == pytest.approx(5e-4)
    assert by_name["recurrent"]["weight_decay"] == 0.0
    assert by_name["rest"]["weight_decay"] == 0.05
    ids = {id(p) for p in by_name["recurrent"]["params"]}
    named = dict(net.named_parameters())
    assert ids == {id(named[n]) for n, g in groups.items() if g == "recurrent"}


def test_missing_data_names_the_fetch_command(tmp_path):
    sizes = dict(lm.PRESETS["cpu"])
    with pytest.raises(ValueError, match=r"python -m recurrent_params\.data\.fetch"):
        lm.load_task("mnist", "plain", sizes, data_root=tmp_path)
    with pytest.raises(ValueError, match=r"python -m recurrent_params\.data\.fetch"):
        lm.load_task("fashion-mnist", "permuted", sizes, data_root=tmp_path)


def test_load_task_reads_a_data_root_laid_out_like_the_cache(tmp_path):
    from recurrent_params.data import write_idx

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte",
                  torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", torch.arange(n, dtype=torch.uint8) % 10)
    sizes = dict(train=16, val=8, test=12)
    task = lm.load_task("fashion-mnist", "permuted", sizes, data_root=tmp_path)
    assert task.x_train.shape == (16, 784, 1) and task.x_val.shape == (8, 784, 1)
    assert task.x_test.shape == (12, 784, 1)
    plain = lm.load_task("fashion-mnist", "plain", sizes, data_root=tmp_path)
    assert torch.equal(plain.y_test, task.y_test)
    assert not torch.equal(plain.x_test, task.x_test)
    assert torch.equal(plain.x_test.sort(1).values, task.x_test.sort(1).values)  # permuted


def test_subsets_are_fixed_disjoint_and_shared_with_lsc_long():
    from recurrent_params.experiments._subsets import subset_indices

    tr, va, te = subset_indices(100, 50, val=10, train=30, test=20)
    assert len(tr) == 30 and len(va) == 10 and len(te) == 20
    assert not set(tr.tolist()) & set(va.tolist())  # validation images never train
    assert te.tolist() == sorted(te.tolist()) and len(set(te.tolist())) == 20
    again = subset_indices(100, 50, val=10, train=30, test=20)
    assert all(torch.equal(a, b) for a, b in zip((tr, va, te), again))
    whole = subset_indices(100, 50, val=200, train=None, test=None)
    assert len(whole[1]) == 99 and len(whole[0]) == 1 and whole[2].tolist() == list(range(50))
