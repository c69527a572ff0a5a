"""The LSC paper's protocols at their real lengths (``lsc --task smnist|fashion|brown``): quick
presets end to end on stand-in data, resumable sweeps, checkpoint resume, the gradient-norm
probe."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from recurrent_params.experiments import lsc_brown, lsc_long
from tests._cli import read_jsonl
from tests._cli import run_cli as _cli

SMNIST = ["lsc", "--task", "smnist", "--quick", "--no-progress", "--threads", "1"]
BROWN = ["lsc", "--task", "brown", "--quick", "--no-progress", "--threads", "1"]
TINY = ["--train-size", "16", "--val-size", "8", "--test-size", "8"]


def _records(folder, stem):
    return read_jsonl(folder / f"{stem}.jsonl")


@pytest.fixture
def no_data(tmp_path):
    """An empty data folder: the quick preset falls back to its generated stand-in."""
    folder = tmp_path / "no-data"
    folder.mkdir()
    return str(folder)


def test_smnist_quick_runs_on_the_stand_in_and_records_radii_and_gradients(tmp_path, no_data,
                                                                           capsys):
    out = tmp_path / "out"
    argv = [*SMNIST, *TINY, "--cells", "lstm", "--inits", "default", "lsc-0.5",
            "--data-root", no_data, "--out", str(out)]
    assert _cli(argv) == 0
    text = capsys.readouterr().out
    assert "generated stand-in" in text and "NOT MNIST" in text
    recs = _records(out, "lsc_long_runs")
    assert [r["init"] for r in recs] == ["default", "lsc-0.5"]
    times = lsc_long.probe_times(784)
    assert times == [0, 196, 392, 588, 783]
    for r in recs:
        assert r["task"] == "smnist" and r["cell"] == "lstm" and r["depth"] == 2
        assert 0 <= r["test_acc"] <= 1 and 0 <= r["best_epoch"] < r["epochs_run"] == 2
        assert set(r["radii_start"]) == {"layer0.time", "layer0.depth", "layer1.time",
                                         "layer1.depth"}
        for key in ("grad_norms_start", "grad_norms_end"):
            g = r[key]
            assert g["times"] == times and set(g) == {"times", "layer0", "layer1"}
            assert all(math.isfinite(v) and v >= 0 for v in g["layer0"] + g["layer1"])
    lsc = recs[1]
    assert lsc["lsc_steps"] >= 1 and set(lsc["lsc_radii_after"]) == set(lsc["radii_start"])
    summary = json.loads((out / "lsc.json").read_text())
    assert summary["task"] == "smnist" and "stand-in" in summary["source"]
    assert [(r["net"], r["init"]) for r in summary["table"]] == [("lstm", "default"),
                                                                ("lstm", "lsc-0.5")]
    assert (out / "lsc_long.md").read_text().count("| lstm | 2 |") == 2
    outcome = (out / "lsc_long_lsc.md").read_text().splitlines()
    assert len(outcome) == 3 and outcome[2].startswith("| lstm | 2 | lsc-0.5 |")
    assert (out / "lsc_long_gradients.png").stat().st_size > 0
    compact = (out / "lsc_long_compact.md").read_text().splitlines()
    assert [row.split(" | ")[:2] for row in compact[2:]] == [["| LSTM x2", "default"],
                                                             ["| LSTM x2", "lsc-0.5"]]
    for rec, row in zip(recs, compact[2:]):  # best epoch counted from 1, the radii's means
        assert f"{rec['best_epoch'] + 1}/{rec['epochs_run']}" in row
        time_start = [v for k, v in rec["radii_start"].items() if k.endswith(".time")]
        assert f"{sum(time_start) / len(time_start):.2f} -> " in row
        # one seed: its accuracy, with no spread (a "+- 0.0" would claim one)
        assert f"| {100 * rec['test_acc']:.1f} (1 seed) |" in row and "+-" not in row
    assert "(1 seed)" in (out / "lsc_long.md").read_text()
    assert not (out / "lsc_long_trace.png").exists()  # traced runs only
    assert not list((out / "lsc_long_checkpoints").glob("*.pt"))  # cleaned up


def test_trace_records_diagnostics_during_training_without_changing_it(tmp_path, no_data):
    argv = [*SMNIST, *TINY, "--cells", "gru", "--inits", "lsc-0.5", "--data-root", no_data]
    assert _cli([*argv, "--trace-every", "0", "--out", str(tmp_path / "plain")]) == 0
    assert _cli([*argv, "--trace-every", "1", "--out", str(tmp_path / "traced")]) == 0
    plain = _records(tmp_path / "plain", "lsc_long_runs")[0]
    traced = _records(tmp_path / "traced", "lsc_long_runs")[0]
    assert plain["trace"] == [] and plain["signature"] == traced["signature"]
    for key in ("test_acc", "radii_end", "grad_norms_end"):
        assert traced[key] == plain[key], key  # the probes draw nothing from the run
    # 16 samples in batches of 16, 2 epochs: one point per optimiser step
    assert [(p["step"], p["epoch"]) for p in traced["trace"]] == [(1, 0), (2, 1)]
    last = traced["trace"][-1]
    assert last["radii"] == traced["radii_end"] and last["grad_norms"] == traced["grad_norms_end"]
    assert last["val_loss"] == traced["curve"][-1]["val_loss"]
    assert (tmp_path / "traced" / "lsc_long_trace.png").stat().st_size > 0


def test_alif_quick_runs_on_spikes_labelled_as_the_shd_stand_in(no_data, capsys):
    argv = [*SMNIST, *TINY, "--cells", "alif", "--inits", "lsc-0.5", "--epochs", "1",
            "--data-root", no_data]
    assert _cli(argv) == 0
    text = capsys.readouterr().out
    assert "stand-in for SHD" in text and "alifx2/lsc-0.5" in text


def _fake_brown(folder):
    """Ten tagged files: 8 train, 1 valid, 1 test (the loader's split by position)."""
    words = ["the/at", "dog/nn", "cat/nn", "runs/vbz", "sees/vbz", "a/at", "big/jj", "./."]
    g = torch.Generator().manual_seed(0)
    for i in range(10):
        lines = []
        for _ in range(40):
            idx = torch.randint(len(words), (7,), generator=g).tolist()
            lines.append(" ".join(words[j] for j in idx))
        (folder / f"ca{i + 1:02d}").write_text("\n\n".join(lines) + "\n")


def test_brown_quick_reads_a_corpus_folder_and_reports_perplexities(tmp_path, capsys):
    corpus = tmp_path / "brown"
    corpus.mkdir()
    _fake_brown(corpus)
    out = tmp_path / "out"
    argv = [*BROWN, "--nets", "lstm2", "lru2", "--inits", "default", "lsc-0.5",
            "--data-root", str(corpus), "--out", str(out)]
    assert _cli(argv) == 0
    text = capsys.readouterr().out
    assert "PTB stand-in" in text or "standing in for PTB" in text
    recs = _records(out, "lsc_brown_runs")
    keys = {r["key"] for r in recs}
    assert {"brown/lstm2/default/seed0", "brown/lstm2/lsc-0.5/seed0",
            "brown/lru2/default/seed0"} <= keys
    vocab = 2 + 8  # <unk>, <eos> and the eight words
    for r in recs:
        assert 1 < r["val_ppl"] < 10 * vocab and 1 < r["test_ppl"] < 10 * vocab
        assert r["epochs_run"] == 2
    assert (out / "lsc_brown.png").stat().st_size > 0
    why = lsc_brown.lru_lsc_support()
    if why is None:
        assert "brown/lru2/lsc-0.5/seed0" in keys
    else:
        assert "SKIPPED 1 LRU runs with LSC" in text


def test_brown_quick_falls_back_to_a_generated_corpus(no_data, capsys):
    argv = [*BROWN, "--nets", "lstm1", "--inits", "default", "--epochs", "1",
            "--train-size", "400", "--test-size", "200", "--data-root", no_data]
    assert _cli(argv) == 0
    assert "generated stand-in corpus" in capsys.readouterr().out


def test_rerun_skips_finished_runs(tmp_path, no_data, capsys, monkeypatch):
    argv = [*SMNIST, *TINY, "--cells", "gru", "--inits", "default", "--epochs", "1",
            "--data-root", no_data, "--out", str(tmp_path)]
    assert _cli(argv) == 0
    first = _records(tmp_path, "lsc_long_runs")

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(lsc_long, "train_run", fail)
    capsys.readouterr()
    assert _cli(argv) == 0
    assert "1 of 1 runs already in" in capsys.readouterr().out
    assert _records(tmp_path, "lsc_long_runs") == first
    summary = json.loads((tmp_path / "lsc.json").read_text())
    assert summary["table"][0]["test_acc_mean"] == first[0]["test_acc"]


class _Stop(Exception):
    pass


def test_checkpoint_resume_gives_the_same_numbers(tmp_path, no_data, monkeypatch):
    argv = [*SMNIST, *TINY, "--cells", "lstm", "--inits", "lsc-1.0", "--data-root", no_data]
    assert _cli([*argv, "--out", str(tmp_path / "straight")]) == 0
    straight = _records(tmp_path / "straight", "lsc_long_runs")[0]

    def stop(key, epoch):
        if epoch == 0:
            raise _Stop

    monkeypatch.setattr(lsc_long, "_on_epoch_end", stop)
    with pytest.raises(_Stop):
        _cli([*argv, "--out", str(tmp_path / "cut")])
    assert len(list((tmp_path / "cut" / "lsc_long_checkpoints").glob("*.pt"))) == 1
    monkeypatch.setattr(lsc_long, "_on_epoch_end", lambda key, epoch: None)
    assert _cli([*argv, "--out", str(tmp_path / "cut")]) == 0
    resumed = _records(tmp_path / "cut", "lsc_long_runs")[0]
    for key in ("test_acc", "best_epoch", "lsc_steps", "radii_start", "radii_end",
                "grad_norms_start", "grad_norms_end"):
        assert resumed[key] == straight[key], key
    strip = [{k: v for k, v in c.items() if k != "seconds"} for c in straight["curve"]]
    assert [{k: v for k, v in c.items() if k != "seconds"} for c in resumed["curve"]] == strip


def test_brown_checkpoint_resume_gives_the_same_numbers(tmp_path, no_data, monkeypatch):
    argv = [*BROWN, "--nets", "lstm1", "--inits", "default", "--train-size", "600",
            "--test-size", "200", "--data-root", no_data]
    assert _cli([*argv, "--out", str(tmp_path / "straight")]) == 0
    straight = _records(tmp_path / "straight", "lsc_brown_runs")[0]

    def stop(key, epoch):
        if epoch == 0:
            raise _Stop

    monkeypatch.setattr(lsc_brown, "_on_epoch_end", stop)
    with pytest.raises(_Stop):
        _cli([*argv, "--out", str(tmp_path / "cut")])
    monkeypatch.setattr(lsc_brown, "_on_epoch_end", lambda key, epoch: None)
    assert _cli([*argv, "--out", str(tmp_path / "cut")]) == 0
    resumed = _records(tmp_path / "cut", "lsc_brown_runs")[0]
    assert (resumed["val_ppl"], resumed["test_ppl"]) == (straight["val_ppl"],
                                                         straight["test_ppl"])
    assert [c["train_ppl"] for c in resumed["curve"]] == [c["train_ppl"]
                                                          for c in straight["curve"]]


def _reference_state_gradients(net, x, y, times):
    """dL/ds^l_t by a step-by-step loop over nn.LSTMCell / nn.GRUCell sharing the weights, a
    zero perturbation added to every layer's state after each probe time."""
    rnn = net.rnn
    lstm = isinstance(rnn, nn.LSTM)
    cells = []
    for l in range(rnn.num_layers):
        cell = (nn.LSTMCell if lstm else nn.GRUCell)(rnn.input_size if l == 0 else rnn.hidden_size,
                                                     rnn.hidden_size).double()
        with torch.no_grad():
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, w).copy_(getattr(rnn, f"{w}_l{l}"))
        cells.append(cell)
    b, h = x.shape[0], rnn.hidden_size
    size = 2 * h if lstm else h
    deltas = {(l, t): torch.zeros(b, size, dtype=x.dtype, requires_grad=True)
              for l in range(len(cells)) for t in times}
    states = [None] * len(cells)
    for t in range(x.shape[1]):
        inp = x[:, t]
        for l, cell in enumerate(cells):
            s = cell(inp, states[l])
            if (l, t) in deltas:
                d = deltas[(l, t)]
                s = (s[0] + d[:, :h], s[1] + d[:, h:]) if lstm else s + d
            states[l] = s
            inp = s[0] if lstm else s
    loss = nn.functional.cross_entropy(net.readout(inp), y, reduction="sum")
    keys = list(deltas)
    grads = torch.autograd.grad(loss, [deltas[k] for k in keys])
    return {k: float(g.norm(dim=-1).mean()) for k, g in zip(keys, grads)}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_state_gradient_norms_match_a_step_by_step_reference(cell):
    """Total derivatives of the loss w.r.t. every layer's state at interior and end times,
    against nn.LSTMCell / nn.GRUCell stepped by hand (float64); at t = T-1 the top layer's
    h-gradient is W^T (softmax - onehot)."""
    torch.manual_seed(0)
    net = lsc_long.build_net(cell, 3, 6, dropout=0.3).double()
    x = torch.randn(4, 30, 1, dtype=torch.float64)
    y = torch.tensor([0, 3, 7, 9])
    times = [0, 11, 28, 29]
    net.eval()
    logits, _ = lsc_long._probed_forward(net, x, times)
    torch.testing.assert_close(logits, net(x))
    g = lsc_long.hidden_gradient_norms(net, x, y, times=times)
    ref = _reference_state_gradients(net, x, y, times)
    assert g["times"] == times and set(g) == {"times", "layer0", "layer1", "layer2"}
    for l in range(3):
        for i, t in enumerate(times):
            assert g[f"layer{l}"][i] == pytest.approx(ref[(l, t)], rel=1e-9, abs=1e-14)
    assert g["layer0"][0] > 0 and g["layer2"][1] > 0  # the time and depth paths are seen
    with torch.no_grad():
        p = torch.softmax(net(x), -1) - nn.functional.one_hot(y, 10).double()
        expected = (p @ net.readout.weight).norm(dim=-1).mean()
    assert g["layer2"][3] == pytest.approx(float(expected), rel=1e-10)
    assert net.training is False  # the mode it was in is restored
    assert all(p.grad is None for p in net.parameters())


def test_alif_state_gradients_reach_earlier_steps_and_lower_layers():
    torch.manual_seed(0)
    net = lsc_long.build_net("alif", 2, 8)
    x = (torch.rand(3, 40, 16) < 0.3).float()
    g = lsc_long.hidden_gradient_norms(net, x, torch.tensor([1, 2, 3]), times=[0, 20, 39])
    assert g["layer0"][2] == 0.0 and g["layer1"][2] == 0.0  # nothing after the last step
    assert g["layer0"][0] > 0 and g["layer1"][1] > 0


def test_standin_images_are_pixels_of_ten_balanced_classes():
    x_tr, y_tr, x_te, y_te = lsc_long.standin_images(40, 20)
    assert x_tr.shape == (40, 784, 1) and x_te.shape == (20, 784, 1)
    assert float(x_tr.min()) >= 0 and float(x_tr.max()) <= 1
    assert torch.bincount(y_tr).tolist() == [4] * 10


def test_task_options_name_their_owners():
    from recurrent_params.cli import build_parser
    from recurrent_params.experiments.lsc import check_task_options

    args = build_parser().parse_args(["lsc", "--task", "digits", "--permute", "--bptt", "9"])
    with pytest.raises(ValueError) as info:
        check_task_options(args)
    msg = str(info.value)
    assert "--permute is an option of --task smnist, not of --task digits (also of --task " \
           "fashion)" in msg
    assert "--bptt is an option of --task brown, not of --task digits" in msg
    ok = build_parser().parse_args(["lsc", "--task", "fashion", "--permute", "--epochs", "3"])
    check_task_options(ok)


def test_measure_times_a_training_step_and_an_lsc_step_and_estimates_the_sweep(no_data, capsys):
    argv = [*SMNIST, "--measure", "--cells", "lstm", "--inits", "default", "lsc-0.5"]
    assert _cli(argv) == 0
    assert "estimated sweep" in capsys.readouterr().out
    argv = [*BROWN, "--measure", "--nets", "lstm1", "--data-root", no_data]
    assert _cli(argv) == 0
    assert "lstm1: training step" in capsys.readouterr().out


def test_measure_numbers_are_consistent():
    from recurrent_params.experiments.lsc_costs import measure_classifiers

    s = dict(lsc_long.PRESETS["quick"], cells=["gru"], depths=[1], inits=["default", "lsc-1.0"])
    out = measure_classifiers(s)
    m = out["grux1"]
    assert m["step_s"] > 0 and m["lsc_step_s"] >= 0
    assert m["ratio"] == pytest.approx(m["lsc_step_s"] / m["step_s"])
    assert out["total_s"] == pytest.approx(m["sweep_s"]) and m["sweep_s"] > 0


def test_mean_sd_text_shows_a_spread_only_over_several_seeds():
    assert lsc_long.mean_sd_text(37.31, 3.14, 3) == "37.3 +- 3.1"
    assert lsc_long.mean_sd_text(27.94, 0.0, 1) == "27.9 (1 seed)"
