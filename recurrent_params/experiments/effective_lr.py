"""``recurrent-params effective-lr``: Adam's effective learning rates per parameter (Fig. 5).

Zucchet & Orvieto (arXiv 2405.21064, Fig. 5) train a dense linear RNN, a complex diagonal
RNN and an LRU on the teacher-student task (nu0 = 0.99, d = 64, T = 300) with Adam at a
constant lr 1e-3 for 10,000 steps, then plot, per parameter, minus the update Adam would make
for an all-ones gradient at its final state (``diagnostics.effective_learning_rates`` with
``definition="all_ones"``). The dense recurrent matrix ends with rates orders of magnitude
below the diagonal eigenvalue parameters: Adam has to shrink its steps on A to stay stable.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from tqdm.auto import tqdm

from diagnostics import effective_learning_rates
from recurrent_params.experiments._arg_types import finite_float, positive_float, positive_int
from recurrent_params.experiments._output import save_figure, write_table
from recurrent_params.experiments.teacher import make_teacher, teacher_data
from recurrent_params.experiments.teacher_student import (
    DEFAULT_MODE,
    STUDENTS,
    _set_mode,
    half_mse,
)

SUMMARY = "Adam's effective learning rates per parameter (arXiv 2405.21064, Fig. 5)."

HELP = (
    "Effective learning rates of Adam per parameter (arXiv 2405.21064, Fig. 5): dense RNN, "
    "complex diagonal RNN and LRU trained on the teacher-student task at nu0 = 0.99 with a "
    "constant lr 1e-3; reports minus the update of an all-ones gradient at the final optimiser "
    "state, per parameter (geometric means beside the paper's) and plots their distributions. "
    "A student whose training loss turns non-finite (too large --lr) stops the run with an "
    "error (exit status 1)."
)

#: student key -> (student factory name, label)
MODELS = {"dense": "dense", "complex-diagonal": "diag-realimag", "lru": "lru"}

#: readable names of the parameters: (model, parameter name) -> label
LABELS = {
    ("dense", "A"): "A", ("dense", "B"): "B", ("dense", "C"): "C", ("dense", "D"): "D",
    ("complex-diagonal", "lam"): "lam",
    ("complex-diagonal", "parametrizations.B.original0"): "B_re",
    ("complex-diagonal", "parametrizations.B.original1"): "B_im",
    ("complex-diagonal", "parametrizations.C.original0"): "C_re",
    ("complex-diagonal", "parametrizations.C.original1"): "C_im",
    ("complex-diagonal", "D"): "D",
    ("lru", "parametrizations.lam.original0"): "nu",
    ("lru", "parametrizations.lam.original1"): "theta",
    ("lru", "parametrizations.B.original0"): "B_re",
    ("lru", "parametrizations.B.original1"): "B_im",
    ("lru", "parametrizations.B.1.gamma_log"): "gamma",
    ("lru", "parametrizations.C.original0"): "C_re",
    ("lru", "parametrizations.C.original1"): "C_im",
    ("lru", "D"): "D",
}

#: geometric means read off the paper's Fig. 5 (approximate; REFERENCE of this project).
PAPER = {("dense", "A"): 2e-7, ("dense", "B"): 1e-5, ("dense", "C"): 5e-6,
         ("complex-diagonal", "lam"): 8e-4, ("lru", "nu"): 8e-4, ("lru", "theta"): 8e-4}

FULL = dict(steps=10_000, length=300, batch_size=128, lr=1e-3, nu0=0.99)
QUICK = dict(steps=150, length=64, batch_size=32, lr=1e-3, nu0=0.99)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the effective-learning-rate experiment (defaults: the paper's run)."""
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="Adam steps (paper: 10000)")
    parser.add_argument("--length", type=positive_int, default=None,
                        help="sequence length T (300)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="batch size (128)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="constant Adam lr (1e-3)")
    parser.add_argument("--nu0", type=finite_float, default=None,
                        help="teacher magnitude floor (0.99)")
    parser.add_argument("--d-state", type=positive_int, default=64, help="student hidden units")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=None,
                        help="students (default: all three)")
    parser.add_argument("--mode", default=None,
                        help=f"sequence mode set on every student cell (scan or fft; default "
                        f"{DEFAULT_MODE})")


def _settings(args: argparse.Namespace) -> dict:
    base = QUICK if args.quick else FULL
    out = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    if out["steps"] < 1 or out["length"] < 1 or out["batch_size"] < 1:
        raise ValueError("--steps, --length and --batch-size must be at least 1")
    if not (out["lr"] > 0 and math.isfinite(out["lr"])):
        raise ValueError(f"--lr must be positive, got {out['lr']}")
    if not 0 <= out["nu0"] < 1:
        raise ValueError(f"--nu0 must lie in [0, 1), got {out['nu0']}")
    if args.d_state < 10:
        raise ValueError("--d-state must be at least the teacher's 10 hidden units")
    out.update(models=args.models or list(MODELS), d_state=args.d_state,
               mode=args.mode if args.mode is not None else DEFAULT_MODE)
    return out


def _geo_mean(t: torch.Tensor) -> float:
    """Geometric mean of the nonzero entries (the table's ``zeros`` column counts the others)."""
    t = t.abs().double().flatten()
    t = t[t > 0]
    return float(torch.exp(torch.log(t).mean())) if t.numel() else 0.0


def run(args: argparse.Namespace) -> dict:
    """Train each student with constant-lr Adam, then read its all-ones effective lrs."""
    s = _settings(args)
    print(f"effective-lr: {len(s['models'])} students, {s['steps']} steps of Adam at lr "
          f"{s['lr']:g} (constant), T = {s['length']}, batch {s['batch_size']}, nu0 = "
          f"{s['nu0']}, d = {s['d_state']}, {args.device}")
    teacher = make_teacher(s["nu0"], 10, seed=args.seed, dtype=torch.float32, device=args.device)
    start = time.perf_counter()
    rows, rates, losses, seconds = [], {}, {}, {}
    for key in s["models"]:
        t0 = time.perf_counter()
        torch.manual_seed(args.seed)
        model = _set_mode(STUDENTS[MODELS[key]](s["d_state"], s["nu0"]), s["mode"])
        model = model.to(args.device)
        opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
        gen = torch.Generator().manual_seed(args.seed + 1)
        tail = []
        for step in tqdm(range(s["steps"]), disable=True if args.no_progress else None,
                         desc=key, leave=False):
            x, y = teacher_data(teacher, s["batch_size"], s["length"], generator=gen)
            loss = half_mse(model(x)[0], y)
            if not torch.isfinite(loss):
                value = float(loss.detach())
                raise RuntimeError(
                    f"training of the {key} student diverged: its loss is {value} at step "
                    f"{step + 1} of {s['steps']} with --lr {s['lr']:g}; the effective learning "
                    "rates of a diverged optimiser mean nothing (try a smaller --lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tail = (tail + [float(loss.detach())])[-100:]
        losses[key] = sum(tail) / len(tail)
        eff = effective_learning_rates(opt, model.named_parameters(), definition="all_ones")
        seconds[key] = time.perf_counter() - t0
        for name, value in eff.rates.items():
            label = LABELS.get((key, name), name)
            rates[(key, label)] = value.detach().abs().flatten().cpu()
            paper = PAPER.get((key, label))
            rows.append({"model": key, "parameter": label,
                         "geo_mean": _geo_mean(value), "min": float(value.abs().min()),
                         "max": float(value.abs().max()),
                         "zeros": int((value == 0).sum()),
                         "paper_geo_mean": paper if paper is not None else "-"})
    total = time.perf_counter() - start
    print("\nEffective learning rate (-update for an all-ones gradient, final Adam state):")
    write_table(rows, args.out / "effective_lr.csv" if args.out else None)
    print("final training loss (last 100 batches): "
          + ", ".join(f"{k} {v:.3g}" for k, v in losses.items()))
    print(f"{total:.0f} s.")
    plot_path = args.plot or (args.out / "effective_lr.png" if args.out else None)
    if plot_path is not None:
        plot(rates, s["lr"], plot_path)
    return {"settings": s, "seconds": total, "seconds_per_model": seconds, "table": rows,
            "train_loss": losses}


def plot(rates: dict, lr: float, path) -> None:
    """Per-parameter distributions of the effective lrs on a log axis, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(k for k, _ in rates))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), sharey=True,
                             squeeze=False)
    for ax, model in zip(axes[0], models):
        labels = [p for m, p in rates if m == model]
        # a log axis cannot show exact zeros: they are left out and counted in the tick label
        positive = [rates[(model, p)][rates[(model, p)] > 0] for p in labels]
        data = [v.log10().numpy() if v.numel() else [math.nan] for v in positive]
        ticks = [p if v.numel() == rates[(model, p)].numel()
                 else f"{p} ({rates[(model, p)].numel() - v.numel()} = 0)"
                 for p, v in zip(labels, positive)]
        ax.violinplot(data, showmedians=True)
        for i, p in enumerate(labels, 1):
            ref = PAPER.get((model, p))
            if ref is not None:
                ax.plot([i - 0.3, i + 0.3], [math.log10(ref)] * 2, "k:", lw=1.5)
        ax.axhline(math.log10(lr), color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(1, len(labels) + 1), ticks, rotation=45, fontsize=8)
        ax.set_title(model)
    axes[0][0].set_ylabel("log10 effective lr (all-ones update)")
    fig.suptitle("Adam effective learning rates (arXiv 2405.21064, Fig. 5); dotted: paper, "
                 "dashed: lr", fontsize=9)
    save_figure(fig, path)
