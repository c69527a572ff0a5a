"""The effective-lr experiment (Fig. 5): every parameter gets a finite positive rate."""

import json

import pytest

from recurrent_params.cli import main


def test_effective_lr_command_line(tmp_path, capsys):
    code = main(["effective-lr", "--steps", "5", "--length", "12", "--batch-size", "4",
                 "--d-state", "12", "--out", str(tmp_path), "--no-progress", "--threads", "1"])
    assert code == 0
    result = json.loads((tmp_path / "effective-lr.json").read_text())
    rows = result["table"]
    labels = {(r["model"], r["parameter"]) for r in rows}
    assert {("dense", "A"), ("complex-diagonal", "lam"), ("lru", "nu"), ("lru", "theta")} <= labels
    for r in rows:
        # an all-ones gradient moves every coordinate by at most about lr / (1 - beta1) ...
        assert 0 < r["min"] <= r["max"] < 1e-2, r
        assert r["zeros"] == 0, r  # min > 0, so no coordinate is left out of the geo mean
        assert r["min"] * (1 - 1e-6) <= r["geo_mean"] <= r["max"] * (1 + 1e-6), r
    assert (tmp_path / "effective_lr.png").exists()
    assert (tmp_path / "effective_lr.csv").read_text().startswith("model,parameter,geo_mean")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # refused by the shared argument type
        main(["effective-lr", "--lr", "-1"])
    assert exc.value.code == 2
    assert "argument --lr: expected a finite number > 0" in capsys.readouterr().err
