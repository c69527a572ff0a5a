"""The teacher-student experiment: training reduces the loss; divergence is recorded, not raised."""

import math

import torch

from recurrent_params import assign_
from recurrent_params.cli import main
from recurrent_params.experiments._teacher import make_teacher
from recurrent_params.experiments.teacher_student import STUDENTS, half_mse, train_student


def test_every_bounded_student_learns_a_short_memory_teacher():
    teacher = make_teacher(0.5, seed=0, dtype=torch.float32)
    for name in ("dense", "diag-exp", "diag-exp-gamma", "lru"):
        torch.manual_seed(0)
        final, curve = train_student(STUDENTS[name](16), teacher, lr=1e-2, steps=60,
                                     batch_size=32, length=20, seed=0)
        assert math.isfinite(final), name
        assert final < 0.5 * curve[0], f"{name}: {curve[0]:.3g} -> {final:.3g}"


def test_polar_students_either_learn_or_are_marked_diverged():
    teacher = make_teacher(0.5, seed=0, dtype=torch.float32)
    for name in ("diag-polar", "diag-polar-gamma"):
        torch.manual_seed(0)
        final, curve = train_student(STUDENTS[name](16), teacher, lr=1e-2, steps=30,
                                     batch_size=32, length=20, seed=0)
        assert final == math.inf or final < curve[0], name


def test_polar_student_leaving_the_unit_disk_is_a_diverged_run():
    teacher = make_teacher(0.99, seed=0, dtype=torch.float32)
    student = STUDENTS["diag-polar-gamma"](16)
    assign_(student, "lam", torch.full((16,), 0.9999 + 0j))
    final, curve = train_student(student, teacher, lr=1.0, steps=20, batch_size=8, length=20,
                                 seed=0)
    assert final == math.inf and curve[-1] == math.inf


def test_half_mse():
    assert float(half_mse(torch.ones(2, 3, 1), torch.zeros(2, 3, 1))) == 0.5


def test_command_line_writes_the_table(tmp_path, capsys):
    code = main(["teacher-student", "--nu0", "0.5", "--students", "dense", "lru", "--lrs", "0.01",
                 "--steps", "20", "--length", "10", "--batch-size", "8", "--d-state", "12",
                 "--out", str(tmp_path), "--no-progress", "--threads", "1"])
    assert code == 0
    assert (tmp_path / "teacher_student.csv").read_text().startswith("nu0,dense,lru")
    assert (tmp_path / "teacher_student.png").exists()
    assert main(["teacher-student", "--nu0", "1.0"]) == 1
    assert "[0, 1)" in capsys.readouterr().err
