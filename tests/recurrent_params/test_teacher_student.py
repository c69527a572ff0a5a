"""The teacher-student experiment: initialisations, training, divergence counting, the CLI."""

import json
import math

import pytest
import torch

from recurrent_params.cli import main
from recurrent_params.experiments.teacher import make_teacher
from recurrent_params.experiments.teacher_student import (
    LR_GRIDS,
    PRESETS,
    STUDENTS,
    best_lr,
    half_mse,
    train_stack,
)

TINY = dict(steps=30, batch_size=8, length=20, d_state=12, test_size=16)


def test_student_initialisations_follow_the_authors():
    torch.manual_seed(0)
    dense = STUDENTS["dense"](64, 0.99)
    radius = float(torch.linalg.eigvals(dense.A.detach().double()).abs().max())
    assert radius <= math.tanh(2.5) and radius > 0.5  # tanh-remapped, not given nu0
    lru = STUDENTS["lru"](64, 0.99)
    mags = lru.lam.abs()
    assert bool(((mags >= 0.99 - 1e-6) & (mags <= 1)).all())  # the ring [nu0, 1]
    gamma = lru.gamma()
    torch.testing.assert_close(gamma, torch.sqrt(1 - mags**2), rtol=1e-2, atol=1e-4)  # float32
    b_re = lru.parametrizations.B.original0
    assert 0.08 < float(b_re.detach().std()) < 0.18  # N(0, 1/64) per part
    assert 0.7 < float(lru.parametrizations.C.original0.detach().std()) < 1.3  # N(0, 1)
    block = STUDENTS["block2"](8, 0.99)
    a = block.A.detach()
    assert float(a[0, 2:].abs().max()) == 0 and float(a[2:, :2].abs().max()) == 0
    assert set(LR_GRIDS) == set(STUDENTS)


@pytest.mark.parametrize("name", ["dense", "lru", "block2", "diag-exp-gamma"])
def test_every_student_learns_a_short_memory_teacher(name):
    teacher = make_teacher(0.5, seed=0, dtype=torch.float32)
    lr = 1e-2
    runs = train_stack(name, teacher, lrs=[lr], seeds=[0], nu0=0.5, **TINY)
    (r,) = runs
    assert r["diverged_at"] is None
    assert r["train_loss"] < 0.5 * r["curve"][0], (name, r["curve"][0], r["train_loss"])
    assert math.isfinite(r["test_loss"])


def test_polar_student_leaving_the_unit_disk_is_counted_and_stopped_on_request():
    teacher = make_teacher(0.99, seed=0, dtype=torch.float32)
    runs = train_stack("diag-polar", teacher, lrs=[3.0, 1e-4], seeds=[0], nu0=0.99,
                       outside_disk="stop", **TINY)
    fast, slow = runs
    assert fast["diverged_at"] is not None and fast["train_loss"] == math.inf
    assert fast["left_disk_at"] == fast["diverged_at"]
    assert slow["diverged_at"] is None and math.isfinite(slow["train_loss"])
    assert slow["left_disk_at"] is None
    best = best_lr(runs)
    assert best["lr"] == 1e-4 and best["diverged_total"] == 1 and best["runs_total"] == 2
    assert best["left_disk_total"] == 1
    # the authors' rule (the default): the run that left the disk goes on and is counted
    runs = train_stack("diag-polar", teacher, lrs=[3.0, 1e-4], seeds=[0], nu0=0.99, **TINY)
    fast_on, slow_on = runs
    assert fast_on["left_disk_at"] == fast["left_disk_at"]
    # leaving the disk is not a divergence under the default rule: its loss grows (to ~1e26
    # here) but stays finite, so the run is trained to the end and never marked diverged
    assert fast_on["diverged_at"] is None and len(fast_on["curve"]) == TINY["steps"]
    assert fast_on["curve"][1] > 1e6 * fast_on["curve"][0]
    assert fast_on["curve"][1] != math.inf  # still training after it left the disk
    assert slow_on["curve"] == slow["curve"]
    with pytest.raises(ValueError, match="outside_disk"):
        train_stack("diag-polar", teacher, lrs=[1e-4], seeds=[0], nu0=0.99,
                    outside_disk="clip", **TINY)


def test_best_lr_never_drops_diverged_seeds():
    def r(lr, seed, loss):
        return {"lr": lr, "seed": seed, "train_loss": loss, "test_loss": loss,
                "diverged_at": None if math.isfinite(loss) else 5}

    runs = [r(0.1, 0, 1e-6), r(0.1, 1, math.inf), r(0.01, 0, 1e-3), r(0.01, 1, 3e-3)]
    best = best_lr(runs)
    assert best["lr"] == 0.01 and best["diverged"] == 0 and best["diverged_total"] == 1
    assert best["train"] == pytest.approx(2e-3)
    assert best["train_sem"] == pytest.approx(1e-3)  # std/sqrt(n) = sqrt(2e-6)/sqrt(2)
    every = best_lr([r(0.1, 0, 1e-6), r(0.1, 1, math.inf)])
    assert every["all_lrs_diverged"] and every["diverged"] == 1 and every["train"] == 1e-6


def test_presets_are_the_authors_protocol():
    for name in ("paper", "headline", "ablation"):
        p = PRESETS[name]
        assert (p["steps"], p["length"], p["batch_size"]) == (10_000, 300, 128)
    assert PRESETS["paper"]["seeds"] == 10 and len(PRESETS["paper"]["nu0"]) == 7
    assert PRESETS["headline"]["nu0"] == [0.99] and PRESETS["headline"]["seeds"] == 10
    assert LR_GRIDS["lru"] == [0.32, 0.1, 0.032, 0.01, 0.0032]
    assert LR_GRIDS["dense"] == [3.2e-3, 1e-3, 3.2e-4, 1e-4, 3.2e-5]
    # the ablation's grids, from the authors' scan files
    assert LR_GRIDS["block2"] == [0.01, 3.2e-3, 1e-3, 3.2e-4]
    for name in ("diag-realimag", "diag-realimag-gamma", "diag-exp", "diag-polar-gamma"):
        assert LR_GRIDS[name] == [0.1, 0.032, 0.01, 3.2e-3, 1e-3, 3.2e-4, 1e-4]


@pytest.mark.parametrize("name", ["diag-realimag-gamma", "diag-polar-gamma"])
def test_learned_gamma_students_train_on_outside_the_unit_disk(name):
    """The authors' learned gamma is a parameter of its own: a student whose eigenvalue leaves
    the disk keeps a finite loss (the fixed sqrt(1 - |lam|^2) would be undefined there)."""
    student = STUDENTS[name](12, 0.99)
    norm = student.parametrizations.B[-1]
    assert norm.kind == "learned-direct"
    torch.testing.assert_close(norm.gamma_direct.detach(),
                               torch.sqrt(1 - student.lam.detach().abs() ** 2))
    teacher = make_teacher(0.99, seed=0, dtype=torch.float32)
    runs = train_stack(name, teacher, lrs=[3.0], seeds=[0], nu0=0.99, **TINY)
    (run,) = runs
    assert run["left_disk_at"] is not None
    assert all(math.isfinite(v) for v in run["curve"][:run["left_disk_at"] + 2])


def test_half_mse():
    assert float(half_mse(torch.ones(2, 3, 1), torch.zeros(2, 3, 1))) == 0.5


def test_command_line_writes_the_table(tmp_path, capsys):
    code = main(["teacher-student", "--nu0", "0.5", "--students", "dense", "lru", "--lrs", "0.01",
                 "0.001", "--steps", "10", "--length", "10", "--batch-size", "4", "--d-state",
                 "12", "--seeds", "2", "--test-size", "8", "--out", str(tmp_path),
                 "--no-progress", "--threads", "1", "--log-every", "5"])
    assert code == 0
    assert "dense step 5: mean batch loss by lr" in capsys.readouterr().out
    header = (tmp_path / "teacher_student.csv").read_text().splitlines()[0]
    assert header.startswith("nu0,dense,dense_sem,dense_test,dense_lr,dense_diverged,lru,")
    assert (tmp_path / "teacher_student.png").exists()
    result = json.loads((tmp_path / "teacher-student.json").read_text())
    assert len(result["runs"]) == 2 * 2 * 2
    # rebuilding from the saved JSON gives the same table without training
    rebuilt = tmp_path / "rebuilt"
    assert main(["teacher-student", "--from-json", str(tmp_path / "teacher-student.json"),
                 "--out", str(rebuilt), "--no-progress"]) == 0
    assert (rebuilt / "teacher_student.csv").read_text() == \
        (tmp_path / "teacher_student.csv").read_text()
    assert main(["teacher-student", "--nu0", "1.0"]) == 1
    assert "[0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dense", "lru", "diag-exp-gamma"])
def test_gram_loss_trains_like_running_the_students(name):
    """Both losses draw the same batches and give the same value and gradient, so the
    trajectories agree up to float32 rounding: every logged batch loss and the test loss."""
    teacher = make_teacher(0.9, seed=0, dtype=torch.float32)
    kw = dict(lrs=[1e-2, 1e-3], seeds=[0, 1], nu0=0.9, mode="fft", **TINY)
    gram = train_stack(name, teacher, loss="gram", **kw)
    direct = train_stack(name, teacher, loss="direct", **kw)
    for a, b in zip(gram, direct):
        assert (a["lr"], a["seed"]) == (b["lr"], b["seed"])
        torch.testing.assert_close(torch.tensor(a["curve"]), torch.tensor(b["curve"]),
                                   rtol=2e-4, atol=1e-6)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=2e-4)
    with pytest.raises(ValueError, match="loss must be one of"):
        train_stack(name, teacher, loss="mse", **kw)


def test_teacher_impulse_response_is_its_response_to_an_impulse():
    teacher = make_teacher(0.9, seed=3, dtype=torch.float64)
    x = torch.zeros(1, 40, 1, dtype=torch.float64)
    x[0, 0, 0] = 1.0
    torch.testing.assert_close(teacher.impulse_response(40)[:, 0, 0], teacher(x)[0, :, 0],
                               rtol=1e-12, atol=1e-12)


def test_command_line_float64_gram_and_direct_give_the_same_table(tmp_path):
    """In float64 the two ways of computing the loss agree to rounding over a whole run."""
    tables = {}
    for loss in ("gram", "direct"):
        out = tmp_path / loss
        assert main(["teacher-student", "--nu0", "0.9", "--students", "lru", "dense", "--lrs",
                     "0.01", "--steps", "15", "--length", "12", "--batch-size", "4", "--d-state",
                     "12", "--seeds", "2", "--test-size", "8", "--dtype", "float64", "--loss",
                     loss, "--out", str(out), "--no-progress", "--threads", "1"]) == 0
        result = json.loads((out / "teacher-student.json").read_text())
        assert result["settings"]["dtype"] == "float64" and result["settings"]["loss"] == loss
        tables[loss] = result["table"][0]
    for key in ("lru", "dense", "lru_test", "dense_test"):
        assert tables["gram"][key] == pytest.approx(tables["direct"][key], rel=1e-9), key
