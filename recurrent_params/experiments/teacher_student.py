"""``recurrent-params teacher-student``: dense vs diagonal students of a long-memory teacher."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm.auto import tqdm

from recurrent_params import LRU, DenseRNN, DiagonalRNN, ExpMag, Polar
from recurrent_params.experiments._output import save_figure, write_table
from recurrent_params.experiments._teacher import make_teacher, teacher_data

HELP = (
    "Teacher-student task of the curse-of-memory paper (arXiv 2405.21064). A linear teacher RNN "
    "with 10 hidden units has eigenvalue magnitudes pushed towards 1 (nu0 + (1 - nu0) tanh|l|); "
    "students with 64 hidden units (dense linear RNN, complex diagonal RNNs with direct or "
    "exponential eigenvalue parametrization, with or without input normalisation, and the LRU) "
    "are trained with Adam, a cosine schedule and half mean squared error, keeping the best "
    "learning rate of a grid. The gap between dense and diagonal students opens as nu0 -> 1."
)

def _diagonal(n: int, parametrization: nn.Module, normalization: str | None) -> nn.Module:
    cell = DiagonalRNN(1, n, 1, complex=True, normalization=normalization)
    parametrize.register_parametrization(cell, "lam", parametrization)
    return cell


#: student name -> (d_state -> module). The diagonal ablations are complex DiagonalRNNs.
STUDENTS: dict[str, Callable[[int], nn.Module]] = {
    "dense": lambda n: DenseRNN(1, n, 1),
    "diag-polar": lambda n: _diagonal(n, Polar(), None),
    "diag-exp": lambda n: _diagonal(n, ExpMag(), None),
    "diag-polar-gamma": lambda n: _diagonal(n, Polar(), "iid"),
    "diag-exp-gamma": lambda n: _diagonal(n, ExpMag(), "iid"),
    "lru": lambda n: LRU(1, n),
}


FULL = dict(nu0=[0.36, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99], students=list(STUDENTS),
            lrs=[1e-3, 3e-3, 1e-2, 3e-2], steps=2000, length=300, batch_size=128, seeds=1)
QUICK = dict(nu0=[0.68, 0.99], students=["dense", "diag-exp-gamma", "lru"], lrs=[3e-3, 1e-2],
             steps=400, length=100, batch_size=64, seeds=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the teacher-student experiment (defaults: the full run; see --quick)."""
    parser.add_argument("--nu0", type=float, nargs="+", default=None,
                        help=f"teacher magnitude floors (full: {FULL['nu0']})")
    parser.add_argument("--students", nargs="+", default=None, choices=list(STUDENTS),
                        help="students to train (default: all)")
    parser.add_argument("--lrs", type=float, nargs="+", default=None,
                        help=f"Adam learning-rate grid (full: {FULL['lrs']})")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run")
    parser.add_argument("--length", type=int, default=None, help="sequence length T")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration")
    parser.add_argument("--d-state", type=int, default=64, help="student hidden units")


def _settings(args: argparse.Namespace) -> dict:
    base = QUICK if args.quick else FULL
    out = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    if any(not 0 <= v < 1 for v in out["nu0"]):
        raise ValueError(f"--nu0 values must lie in [0, 1), got {out['nu0']}")
    if any(lr <= 0 or not math.isfinite(lr) for lr in out["lrs"]):
        raise ValueError(f"--lrs must be positive, got {out['lrs']}")
    for key in ("steps", "length", "batch_size", "seeds"):
        if out[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {out[key]}")
    if args.d_state < 10:
        raise ValueError("--d-state must be at least the teacher's 10 hidden units")
    return out


def half_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss of the paper: $\\frac12$ mean squared error."""
    return 0.5 * torch.mean((prediction - target) ** 2)


def _left_unit_disk(student: nn.Module) -> bool:
    """True when a diagonal student's eigenvalues left the unit disk (possible with Polar)."""
    lam = getattr(student, "lam", None)
    if not isinstance(lam, torch.Tensor) or isinstance(student, DenseRNN):
        return False
    with torch.no_grad():
        return bool((lam.abs() >= 1).any())


def train_student(student: nn.Module, teacher, *, lr: float, steps: int, batch_size: int,
                  length: int, seed: int) -> tuple[float, list[float]]:
    r"""Adam + cosine schedule on fresh teacher data; returns (final test loss, loss curve).

    A run diverges (final loss ``inf``) when its loss stops being finite or, for a diagonal
    student with an unconstrained map (``Polar``), when an eigenvalue leaves the unit disk,
    where the recurrence is unstable and $\gamma(\lambda)$ is undefined.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    curve = []
    for _ in range(steps):
        x, y = teacher_data(teacher, batch_size, length, generator=gen)
        loss = half_mse(student(x)[0], y)
        if not torch.isfinite(loss):
            return math.inf, curve + [math.inf]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        curve.append(float(loss.detach()))
        if _left_unit_disk(student):
            return math.inf, curve + [math.inf]
    x, y = teacher_data(teacher, 1024, length, generator=torch.Generator().manual_seed(10**6))
    with torch.no_grad():
        final = float(half_mse(student(x)[0], y))
    return (final if math.isfinite(final) else math.inf), curve


def run(args: argparse.Namespace) -> dict:
    """Sweep nu0 x students x learning rates (x seeds); print and plot the best losses."""
    s = _settings(args)
    runs = [(nu0, name, lr, seed) for nu0 in s["nu0"] for name in s["students"]
            for lr in s["lrs"] for seed in range(s["seeds"])]
    print(f"teacher-student: {len(runs)} runs of {s['steps']} steps (T = {s['length']}, batch "
          f"{s['batch_size']}, {args.d_state} student states, float32, {args.device})")
    start = time.perf_counter()
    results = []
    teachers = {nu0: make_teacher(nu0, 10, seed=args.seed, dtype=torch.float32,
                                  device=args.device) for nu0 in s["nu0"]}
    for nu0, name, lr, seed in tqdm(runs, disable=True if args.no_progress else None, desc="runs"):
        torch.manual_seed(args.seed * 1000 + seed)
        student = STUDENTS[name](args.d_state).to(args.device)
        final, curve = train_student(student, teachers[nu0], lr=lr, steps=s["steps"],
                                     batch_size=s["batch_size"], length=s["length"],
                                     seed=args.seed * 1000 + seed)
        results.append({"nu0": nu0, "student": name, "lr": lr, "seed": seed,
                        "final_loss": final, "curve": curve[:: max(1, len(curve) // 50)]})
    seconds = time.perf_counter() - start

    table = []
    for nu0 in s["nu0"]:
        row = {"nu0": nu0}
        for name in s["students"]:
            row[name] = _best(results, nu0, name)
        table.append(row)
    print("\nBest final loss (1/2 MSE, mean over seeds, best learning rate):")
    write_table(table, args.out / "teacher_student.csv" if args.out else None)
    print(f"\n{len(runs)} runs in {seconds:.0f} s.")
    plot_path = args.plot or (args.out / "teacher_student.png" if args.out else None)
    if plot_path is not None:
        _plot(table, s["students"], plot_path)
    return {"settings": s, "seconds": seconds, "best": table, "runs": results}


def _best(results: list[dict], nu0: float, name: str) -> float:
    by_lr: dict[float, list[float]] = {}
    for r in results:
        if r["nu0"] == nu0 and r["student"] == name:
            by_lr.setdefault(r["lr"], []).append(r["final_loss"])
    return min(sum(v) / len(v) for v in by_lr.values())


def _plot(table: list[dict], students: list[str], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    nus = [r["nu0"] for r in table]
    for name in students:
        ax.semilogy(nus, [r[name] for r in table], "o-", label=name)
    ax.set(xlabel="nu0 (teacher eigenvalue magnitude floor)", ylabel="best final loss",
           title="teacher-student: loss vs memory")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    best = result["best"]
    last = best[-1]
    students = [k for k in last if k != "nu0"]
    ranked = sorted(students, key=lambda k: last[k])
    text = ", ".join(f"{k} {last[k]:.3g}" for k in ranked)
    return f"at nu0 = {last['nu0']} the best final losses are {text}."
