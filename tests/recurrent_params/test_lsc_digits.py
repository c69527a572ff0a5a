"""`recurrent-params lsc --task digits`: Keras-like init, FFN builders, a tiny CLI run."""

import json

import pytest
import torch
from torch import nn

from recurrent_params.experiments.lsc_digits import ffn_init_, keras_like_init_, make_ffn


@pytest.mark.parametrize("rnn_cls, gates", [(nn.LSTM, 4), (nn.GRU, 3)])
def test_keras_like_init(rnn_cls, gates):
    torch.manual_seed(0)
    h, d = 16, 3
    rnn = keras_like_init_(rnn_cls(d, h, num_layers=2, batch_first=True))
    for layer in range(2):
        w_hh = getattr(rnn, f"weight_hh_l{layer}").double()  # (gates * h, h)
        torch.testing.assert_close(w_hh.T @ w_hh, torch.eye(h, dtype=torch.float64),
                                   atol=1e-5, rtol=0)
        w_ih = getattr(rnn, f"weight_ih_l{layer}")
        fan_in = d if layer == 0 else h
        bound = (6 / (fan_in + gates * h)) ** 0.5
        assert w_ih.abs().max() <= bound and w_ih.abs().max() > 0.8 * bound
        b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
        expected = torch.zeros(gates * h)
        if rnn_cls is nn.LSTM:
            expected[h:2 * h] = 1.0  # torch's gate order i, f, g, o
        torch.testing.assert_close(b, expected)


def test_keras_like_forget_gate_is_sigmoid_one_at_zero_input():
    torch.manual_seed(0)
    cell = keras_like_init_(nn.LSTM(2, 4))
    # zero input and state: gates are sigmoid(bias); c_1 = i * g = 0.5 * tanh(0) = 0, so probe
    # the forget gate through c_2 = f * c_1 + i * g with a hand-set c_0
    c0 = torch.ones(1, 1, 4)
    _, (_, c1) = cell(torch.zeros(1, 1, 2), (torch.zeros(1, 1, 4), c0))
    torch.testing.assert_close(c1, torch.sigmoid(torch.tensor(1.0)) * c0)


def test_keras_like_init_rejects_non_rnn():
    with pytest.raises(TypeError, match="LSTM"):
        keras_like_init_(nn.Linear(2, 2))


def test_ffn_builders():
    net = make_ffn("sin", depth=3, width=8, d_input=5, n_classes=4)
    assert sum(isinstance(m, nn.Linear) for m in net) == 4
    assert net(torch.zeros(2, 5)).shape == (2, 4)
    ffn_init_(net, "orthogonal")
    w = net[2].weight.double()
    torch.testing.assert_close(w @ w.T, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="activation"):
        make_ffn("tanh")
    with pytest.raises(ValueError, match="scheme"):
        ffn_init_(net, "lecun")


def test_cli_digits_tiny(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from recurrent_params.cli import main

    argv = ["lsc", "--task", "digits", "--quick", "--no-progress", "--threads", "1",
            "--hidden", "4", "--cells", "gru", "--epochs", "1", "--pretrain-steps", "2",
            "--pretrain-batch", "4", "--ffn-depth", "2", "--ffn-width", "4",
            "--ffn-epochs", "1", "--ffn-pretrain-steps", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lsc-0.5" in out and "keras" in out
    summary = json.loads((tmp_path / "lsc.json").read_text())
    table = summary["table"]
    assert {(r["part"], r["init"]) for r in table} == {
        *(("rnn", i) for i in ("default", "keras", "lsc-1.0", "lsc-0.5")),
        *(("ffn", i) for i in ("glorot", "he", "orthogonal", "lsc-1.0"))}
    assert all(0 <= r["test_acc_mean"] <= 1 and r["n"] == 1 for r in table)
    assert (tmp_path / "lsc_digits.csv").exists() and (tmp_path / "lsc_digits.png").exists()
    assert "| rnn | gru | 2 |" in (tmp_path / "lsc_digits.md").read_text()


def test_cli_digits_alif_tiny(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from recurrent_params.cli import main

    argv = ["lsc", "--task", "digits", "--quick", "--no-progress", "--threads", "1",
            "--hidden", "4", "--cells", "alif", "gru", "--epochs", "1", "--pretrain-steps", "2",
            "--pretrain-batch", "4", "--no-ffn", "--out", str(tmp_path)]
    assert main(argv) == 0
    # the decay floor: the library's RuntimeWarning, printed by the CLI as one clean line
    err = capsys.readouterr().err
    assert "recurrent-params: warning: LSC: 2 transition(s) cannot reach their target" in err
    assert "Warning" not in err and "lsc_digits.py" not in err
    table = json.loads((tmp_path / "lsc.json").read_text())["table"]
    assert {(r["net"], r["init"]) for r in table} == {
        *(("alif", i) for i in ("default", "lsc-1.0", "lsc-0.5")),
        *(("gru", i) for i in ("default", "keras", "lsc-1.0", "lsc-0.5"))}
    runs = [json.loads(line) for line in (tmp_path / "lsc_digits_runs.jsonl").open()]
    half = [r for r in runs if r["cell"] == "alif" and r["init"] == "lsc-0.5"][0]
    assert set(half["radii_before"]) == {"layer0.time", "layer0.depth", "layer1.time",
                                         "layer1.depth"}
    assert not half["lsc_status"]["layer0.time"]["reached"]
    assert half["lsc_status"]["layer0.time"]["floor"] >= 0.99  # rho = exp(-1/200)
    assert "| rnn | alif | 2 | lsc-0.5 |" in (tmp_path / "lsc_digits.md").read_text()
