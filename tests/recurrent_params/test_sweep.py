"""Sweeps across processes: two gloo processes give the table of one process."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch

from recurrent_params.cli import main
from recurrent_params.experiments.sweep import Sweep, sweep
from tests._cli import run_cli
from tests._distributed import run_in_processes

# --quick, shrunk further; --stack 1: every (student, seed) is its own configuration, so the
# two ranks share 4 of them
ARGS = ["teacher-student", "--quick", "--steps", "12", "--length", "10", "--batch-size", "4",
        "--d-state", "10", "--test-size", "8", "--seeds", "2", "--stack", "1", "--no-progress",
        "--threads", "1"]


def _worker(rank: int, world: int) -> dict | None:
    with tempfile.TemporaryDirectory() as folder:
        code = main([*ARGS, "--out", folder])
        path = Path(folder) / "teacher-student.json"
        return {"code": code, "exists": path.exists(),
                "result": json.loads(path.read_text()) if path.exists() else None}


@pytest.mark.slow
def test_teacher_student_sweep_in_two_processes_gives_the_one_process_table(tmp_path):
    ranks = run_in_processes(_worker, 2, timeout=240)  # a bound, not a measurement
    assert [r["code"] for r in ranks] == [0, 0]
    assert ranks[0]["exists"] and not ranks[1]["exists"]  # rank 0 reports, rank 1 does not
    assert run_cli([*ARGS, "--out", str(tmp_path)]) == 0
    single = json.loads((tmp_path / "teacher-student.json").read_text())
    split = ranks[0]["result"]
    assert len(split["runs"]) == len(single["runs"]) == 2 * 2
    assert [(r["student"], r["seed"], r["lr"]) for r in split["runs"]] == \
        [(r["student"], r["seed"], r["lr"]) for r in single["runs"]]
    # the same computations, in the same arithmetic: the same numbers
    assert split["table"] == single["table"]
    assert [r["curve"] for r in split["runs"]] == [r["curve"] for r in single["runs"]]


def test_single_process_sweep_runs_everything_in_order():
    with sweep() as ctx:
        assert (ctx.rank, ctx.world, ctx.group, ctx.is_main) == (0, 1, None, True)
        items = ["a", "b", "c"]
        assert ctx.share(items) == [(0, "a"), (1, "b"), (2, "c")]
        assert ctx.gather([(2, "C"), (0, "A"), (1, "B")]) == ["A", "B", "C"]
        assert ctx.sum(2.5) == 2.5
        assert ctx.device("cpu") == torch.device("cpu")


def test_ranks_deal_configurations_round_robin():
    shares = [Sweep(rank=r, world=3).share(list(range(7))) for r in range(3)]
    assert [[i for i, _ in s] for s in shares] == [[0, 3, 6], [1, 4], [2, 5]]


def test_ranks_deal_costed_configurations_longest_first_to_the_least_loaded():
    # depth-5 and depth-2 networks in the order the digits sweep lists them: round-robin would
    # give one rank every depth-5 network (cost 16 vs 6); the costed deal gives 11 and 11
    costs = [1, 5, 1, 5, 2, 2, 3, 3]
    items = list("abcdefgh")
    shares = [Sweep(rank=r, world=2).share(items, costs) for r in range(2)]
    assert shares == [[(0, "a"), (1, "b"), (4, "e"), (6, "g")],
                      [(2, "c"), (3, "d"), (5, "f"), (7, "h")]]
    assert [sum(costs[i] for i, _ in s) for s in shares] == [11, 11]
    # every item exactly once, whatever the world size; one rank keeps the plain order
    for world in (1, 3, 5, 9):
        dealt = sorted(i for r in range(world) for i, _ in Sweep(r, world).share(items, costs))
        assert dealt == list(range(len(items)))
    assert Sweep().share(items, costs) == list(enumerate(items))


@pytest.mark.parametrize("costs", [[1.0], [1.0, -1.0, 1.0], [1.0, float("nan"), 1.0]])
def test_share_rejects_bad_costs(costs):
    with pytest.raises(ValueError, match="share: "):
        Sweep(rank=0, world=2).share(["a", "b", "c"], costs)


@pytest.mark.parametrize("world", ["1", "2"])
def test_no_launcher_no_group(monkeypatch, world):
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.delenv("MASTER_ADDR", raising=False)  # not launched: stays single-process
    with sweep() as ctx:
        assert ctx.world == 1
    assert not torch.distributed.is_initialized()


DIGITS = ["lsc", "--task", "digits", "--quick", "--no-progress", "--threads", "1",
          "--hidden", "4", "--cells", "gru", "--epochs", "1", "--pretrain-steps", "2",
          "--pretrain-batch", "4", "--ffn-depth", "2", "--ffn-width", "4", "--ffn-epochs", "1",
          "--ffn-pretrain-steps", "2"]


def _digits_worker(rank: int, world: int) -> dict | None:
    with tempfile.TemporaryDirectory() as folder:
        code = main([*DIGITS, "--out", folder])
        path = Path(folder) / "lsc.json"
        return {"code": code, "logs": sorted(p.name for p in Path(folder).glob("*.jsonl")),
                "result": json.loads(path.read_text()) if path.exists() else None}


@pytest.mark.slow
def test_lsc_digits_sweep_in_two_processes_gives_the_one_process_table(tmp_path):
    pytest.importorskip("sklearn")
    ranks = run_in_processes(_digits_worker, 2, timeout=300)  # a bound, not a measurement
    assert [r["code"] for r in ranks] == [0, 0]
    assert ranks[1]["result"] is None and ranks[1]["logs"] == ["lsc_digits_runs.rank1.jsonl"]
    assert run_cli([*DIGITS, "--out", str(tmp_path)]) == 0
    single = json.loads((tmp_path / "lsc.json").read_text())
    split = ranks[0]["result"]
    # one rnn and one ffn configuration: one per rank; the same runs, the same accuracies
    assert split["table"] == single["table"]
    strip = [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in single["runs"]]
    assert [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in split["runs"]] \
        == strip
