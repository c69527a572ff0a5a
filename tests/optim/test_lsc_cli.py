"""`recurrent-params lsc` runs end to end (tiny sizes) and writes its summary and figure."""

import json

from recurrent_params.cli import main


def test_lsc_experiment_runs(tmp_path, capsys):
    argv = ["lsc", "--task", "copy", "--quick", "--no-progress", "--layers", "2", "--hidden", "8",
            "--features", "4", "--length", "6", "--delay", "2", "--train-steps", "5",
            "--pretrain-steps", "3", "--batch", "8", "--out", str(tmp_path),
            "--plot", str(tmp_path / "lsc.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lsc-0.5" in out and "layer1.time" in out
    summary = json.loads((tmp_path / "lsc.json").read_text())
    assert set(summary["radii"]) == {"default", "lsc-1.0", "lsc-0.5"}
    assert len(summary["loss_curves"]["default"]) == 5
    assert (tmp_path / "lsc.png").stat().st_size > 0
