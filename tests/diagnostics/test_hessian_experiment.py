"""`recurrent-params hessian`: the paper's Hessian-at-the-optimum experiment, small sizes."""

import json

import pytest
import torch

from recurrent_params.cli import main


@pytest.mark.slow
def test_hessian_experiment_small(tmp_path, capsys):
    threads = torch.get_num_threads()
    rc = main(["hessian", "--d-state", "6", "--length", "40", "--batch-size", "8",
               "--top-k", "2", "--no-progress", "--out", str(tmp_path)])
    assert rc == 0
    assert torch.get_num_threads() == threads  # the one-thread default is undone
    out = capsys.readouterr().out
    assert "diag mass" in out and "lru" in out
    summary = json.loads((tmp_path / "hessian.json").read_text())
    models = summary["models"]
    assert set(models) == {"dense", "diagonal", "lru"}
    for r in models.values():
        assert r["loss"] < 1e-20  # student = teacher: the optimum
        assert r["method"] == "exact" and len(r["participation_numbers"]) == 2
    assert models["dense"]["num_params"] == 36 + 6 + 6 + 1
    # the paper's observation: the diagonal Hessian concentrates, the dense one spreads
    assert models["diagonal"]["diagonal_mass"] > models["dense"]["diagonal_mass"]
    assert models["dense"]["participation_numbers"][0] > \
        models["diagonal"]["participation_numbers"][0]
    for name in ("hessian_heatmaps.png", "hessian_top_eigenvectors.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_hessian_experiment_rejects_bad_models(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["hessian", "--models", "dense,nope", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown 'nope'" in err and "dense,diagonal,lru" in err
