"""``recurrent-params teacher-student``: the curse-of-memory Fig. 3, as the authors ran it.

Why this file is above 400 lines: it is one experiment of the command line end to end (its
presets, the students, the lag-Gram training loop with its divergence and unit-disk rules, the
sweep and the report); what other experiments share lives in ``_runs.py``,
``resumable_sweep.py``, ``sweep.py`` and ``_arg_types.py``.

A linear teacher RNN (10 units, with feed-through D) whose eigenvalue magnitudes lie in
[nu0, 1); 64-unit students trained with Adam and a cosine schedule on fresh Gaussian data.
All seeds and learning rates of one student and one nu0 are trained side by side by
:class:`optim.stacked.StackedTrainer` (one vectorised computation).

Set-up (Zucchet & Orvieto, arXiv 2405.21064, Fig. 3 and their public reference code):

* dense student: ``A ~ N(0, 1/n)`` with its eigenvalue magnitudes remapped to ``tanh|l|``
  (spectral radius at most about 0.76; the student is not given nu0), B, C, D LeCun-normal;
* LRU: ``|lam|`` on the ring [nu0, 1] (the student is given nu0), phase uniform, learned
  gamma at ``sqrt(1 - |lam|^2)``, ``B_re, B_im ~ N(0, 1/n)``, ``C_re, C_im ~ N(0, 1)``,
  ``D ~ N(0, 1)``;
* the ablation's complex diagonal students are initialised like the LRU; the block-diagonal
  student (2x2 heads) like the dense one, block by block.

Reported per (nu0, student): the training loss averaged over the last 100 batches and a
held-out test loss, mean over seeds with the SEM, at the learning rate whose seed mean is
best. Runs whose loss stops being finite, or whose eigenvalues leave the unit disk, are
diverged: they are counted and shown, never dropped.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm.auto import tqdm

from optim.stacked import StackedTrainer
from recurrent_params import LRU, DenseRNN, DiagonalRNN, ExpMag, Polar
from recurrent_params.experiments._arg_types import (
    finite_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from recurrent_params.experiments._output import save_figure, write_table
from recurrent_params.experiments.lag_gram import kernel_half_mse, lag_gram
from recurrent_params.experiments.sweep import sweep
from recurrent_params.experiments.teacher import make_teacher, remap_magnitudes, teacher_data
from recurrent_params.seeding import mix_seed

SUMMARY = ("Teacher-student task of the curse-of-memory paper (arXiv 2405.21064, Fig. 3): "
           "dense, LRU and diagonal students of a linear teacher.")

HELP = (
    "Teacher-student task of the curse-of-memory paper (arXiv 2405.21064, Fig. 3), as the "
    "authors ran it: a 10-unit linear teacher with eigenvalue magnitudes in [nu0, 1), 64-unit "
    "students (dense linear RNN, LRU, complex diagonal ablations) trained with Adam and a cosine "
    "decay to 1e-7 on half-MSE, each student on its own learning-rate grid, all seeds and "
    "learning rates side by side. Reports the last-100-batch training loss and a held-out test "
    "loss (mean and SEM over seeds, best learning rate), and counts diverged runs. Presets: "
    "--preset paper (the whole figure), headline (nu0 = 0.99, dense vs LRU, 10 seeds), ablation "
    "(nu0 = 0.99, diagonal variants); --quick for the demo."
)

DENSE_LRS = [3.2e-3, 1e-3, 3.2e-4, 1e-4, 3.2e-5]
LRU_LRS = [0.32, 0.1, 0.032, 0.01, 0.0032]
DIAGONAL_LRS = [0.1, 0.032, 0.01, 3.2e-3, 1e-3, 3.2e-4, 1e-4]
BLOCK_LRS = [0.01, 3.2e-3, 1e-3, 3.2e-4]

#: Fig. 3 of the paper, read off the plot (approximate): student -> {nu0: loss}.
PAPER = {
    "dense": {0.36: 7e-9, 0.68: 1e-7, 0.84: 2e-5, 0.92: 9e-5, 0.96: 5e-4, 0.98: 4.5e-2,
              0.99: 0.40},
    "lru": {0.36: 5e-8, 0.68: 1.2e-7, 0.84: 9e-7, 0.92: 2.4e-6, 0.96: 5e-6, 0.98: 4.4e-5,
            0.99: 2.4e-5},
    # ablation at nu0 = 0.99
    "block2": {0.99: 1.8e-5},
    "diag-realimag": {0.99: 4e-5},
    "diag-realimag-gamma": {0.99: 2.3e-5},
}


# ------------------------------------------------------------------------- students
def _dense(n: int, nu0: float) -> nn.Module:
    """Dense student: tanh-remapped Gaussian A (radius <= tanh(max|l|)), LeCun-normal B, C, D."""
    cell = DenseRNN(1, n, 1)
    with torch.no_grad():
        cell.A.copy_(remap_magnitudes(torch.randn(n, n) / math.sqrt(n)))
        cell.B.copy_(torch.randn(n, 1))  # fan-in 1
        cell.C.copy_(torch.randn(1, n) / math.sqrt(n))
        cell.D.copy_(torch.randn(1, 1))
    return cell


class BlockMask(nn.Module):
    """Parametrization ``A = W * M`` with ``M`` a fixed 0/1 block-diagonal mask."""

    def __init__(self, n: int, block: int):
        super().__init__()
        if n % block:
            raise ValueError(f"BlockMask: {n} states are not a multiple of the block {block}")
        self.register_buffer("mask", torch.block_diag(*[torch.ones(block, block)] * (n // block)))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.to(w.dtype)

    def right_inverse(self, a: torch.Tensor) -> torch.Tensor:
        return a * self.mask.to(a.dtype)


def _block2(n: int, nu0: float) -> nn.Module:
    """Block-diagonal student: n/2 heads of 2x2, each tanh-remapped like the dense one."""
    cell = _dense(n, nu0)
    blocks = [remap_magnitudes(torch.randn(2, 2) / math.sqrt(2)) for _ in range(n // 2)]
    with torch.no_grad():
        cell.A.copy_(torch.block_diag(*blocks))
    parametrize.register_parametrization(cell, "A", BlockMask(n, 2))
    return cell


@torch.no_grad()
def _lru_like_init(cell: nn.Module, n: int) -> nn.Module:
    """Stored ``B_re, B_im ~ N(0, 1/n)``, ``C_re, C_im ~ N(0, 1)``, ``D ~ N(0, 1)``."""
    b, c = cell.parametrizations.B, cell.parametrizations.C
    b.original0.copy_(torch.randn_like(b.original0) / math.sqrt(n))
    b.original1.copy_(torch.randn_like(b.original1) / math.sqrt(n))
    c.original0.copy_(torch.randn_like(c.original0))
    c.original1.copy_(torch.randn_like(c.original1))
    cell.D.copy_(torch.randn_like(cell.D))
    return cell


def _lru(n: int, nu0: float) -> nn.Module:
    """The LRU on the ring [nu0, 1], phase uniform, learned gamma."""
    return _lru_like_init(LRU(1, n, r_min=nu0, r_max=1.0, max_phase=2 * math.pi), n)


def _diagonal(parametrization: Callable[[], nn.Module] | None, normalization: str | None):
    def make(n: int, nu0: float) -> nn.Module:
        cell = DiagonalRNN(1, n, 1, complex=True, normalization=normalization, r_min=nu0,
                           r_max=1.0, max_phase=2 * math.pi)
        if parametrization is not None:
            parametrize.register_parametrization(cell, "lam", parametrization())
        return _lru_like_init(cell, n)

    return make


#: student name -> factory ``(d_state, nu0) -> module``. ``diag-realimag``: complex diagonal
#: RNN whose ``lam`` is trained through its real and imaginary parts (a plain parameter).
#: ``-gamma``: with an input normaliser; for real/imaginary and polar eigenvalues a learned
#: one, the parameter ``gamma`` itself initialised at ``sqrt(1 - |lam|^2)`` (the authors'
#: ``which_gamma="learned"``, defined when an eigenvalue leaves the unit disk); for ExpMag
#: eigenvalues, which never leave it, the fixed ``sqrt(1 - |lam|^2)``.
STUDENTS: dict[str, Callable[[int, float], nn.Module]] = {
    "dense": _dense,
    "lru": _lru,
    "block2": _block2,
    "diag-realimag": _diagonal(None, None),
    "diag-realimag-gamma": _diagonal(None, "learned-direct"),
    "diag-exp": _diagonal(ExpMag, None),
    "diag-exp-gamma": _diagonal(ExpMag, "iid"),
    "diag-polar": _diagonal(Polar, None),
    "diag-polar-gamma": _diagonal(Polar, "learned-direct"),
}

#: learning-rate grid per student, the authors' (their public scan files): the paper's for
#: dense and LRU; for the ablation, seven values for the complex diagonal students and four
#: for the block-diagonal one.
LR_GRIDS: dict[str, list[float]] = {
    "dense": DENSE_LRS,
    "lru": LRU_LRS,
    "block2": BLOCK_LRS,
    **{name: DIAGONAL_LRS for name in STUDENTS if name.startswith("diag-")},
}

#: sequence mode set on the students unless --mode says otherwise: every student of this task
#: is linear and time-invariant, so the FFT convolution is exact and several times faster.
DEFAULT_MODE = "fft"

#: how each batch's loss is computed: "gram" (from impulse responses and the batch's lag Gram
#: matrix, exact and several times cheaper) or "direct" (running the students on the batch).
LOSSES = ("gram", "direct")

#: what happens to a run whose eigenvalue leaves the unit disk (Polar and real/imaginary
#: students): "continue" (counted; the authors' code has no such rule) or "stop" (frozen and
#: counted as diverged).
OUTSIDE_DISK = ("continue", "stop")

NU0S = [0.36, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99]
PRESETS: dict[str, dict] = {
    "paper": dict(nu0=NU0S, students=["dense", "lru"], steps=10_000, length=300,
                  batch_size=128, seeds=10),
    # the paper's 10 seeds: the dense student is bimodal at 0.99 (a seed stalls near 0.2-2 or
    # reaches about 1e-3), so a mean over 3 seeds depends on which mode each seed lands in
    "headline": dict(nu0=[0.99], students=["dense", "lru"], steps=10_000, length=300,
                     batch_size=128, seeds=10),
    "ablation": dict(nu0=[0.99], students=["dense", "block2", "diag-realimag",
                                           "diag-realimag-gamma", "diag-exp", "diag-exp-gamma",
                                           "diag-polar", "diag-polar-gamma", "lru"],
                     steps=10_000, length=300, batch_size=128, seeds=3),
    # --quick: the gap at nu0 = 0.99 in a few seconds (each student at one good lr).
    "quick": dict(nu0=[0.99], students=["dense", "lru"], steps=200, length=64,
                  batch_size=32, seeds=2, lrs={"dense": [1e-3], "lru": [0.032]}),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the teacher-student experiment (defaults: ``--preset headline``)."""
    parser.add_argument("--preset", choices=[p for p in PRESETS if p != "quick"],
                        default="headline", help="settings to start from (default: headline)")
    parser.add_argument("--nu0", type=finite_float, nargs="+", default=None,
                        help=f"teacher magnitude floors (paper: {NU0S})")
    parser.add_argument("--students", nargs="+", default=None, choices=list(STUDENTS),
                        help="students to train")
    parser.add_argument("--lrs", type=positive_float, nargs="+", default=None,
                        help="one learning-rate grid for every student (default: each "
                        "student's own grid)")
    parser.add_argument("--steps", type=positive_int, default=None, help="training steps per run")
    parser.add_argument("--length", type=positive_int, default=None, help="sequence length T")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size")
    parser.add_argument("--seeds", type=positive_int, default=None, help="seeds per configuration")
    parser.add_argument("--d-state", type=positive_int, default=64, help="student hidden units")
    parser.add_argument("--test-size", type=positive_int, default=512,
                        help="held-out sequences for the test loss")
    parser.add_argument("--stack", type=positive_int, default=50,
                        help="at most this many models trained side by side in one computation")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="rebuild table and figure from saved teacher-student.json files "
                        "(pooled; no training)")
    parser.add_argument("--log-every", type=nonnegative_int, default=0,
                        help="print the losses every that many steps (0: never)")
    parser.add_argument("--loss", choices=LOSSES, default="gram",
                        help="how each batch's loss is computed: gram (exact, from the models' "
                        "impulse responses and the batch's lag Gram matrix; default) or direct "
                        "(running the students on the batch, in --mode)")
    parser.add_argument("--outside-disk", choices=OUTSIDE_DISK, default="continue",
                        help="a run whose eigenvalue leaves the unit disk (Polar and "
                        "real/imaginary students) continues and is counted (default, as the "
                        "authors' code) or stops as diverged")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="arithmetic of teacher, students and data (the authors': float32; "
                        "float64 shows what rounding does)")
    parser.add_argument("--mode", default=None,
                        help=f"sequence mode set on every student cell (scan or fft; default "
                        f"{DEFAULT_MODE})")


def _settings(args: argparse.Namespace) -> dict:
    base = dict(PRESETS["quick" if args.quick else args.preset])
    lrs = base.pop("lrs", None)
    keys = ("nu0", "students", "steps", "length", "batch_size", "seeds")
    out = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in keys}
    out["preset"] = "quick" if args.quick else args.preset
    if args.lrs is not None:
        lrs = {name: list(args.lrs) for name in out["students"]}
    elif lrs is None or set(out["students"]) - set(lrs):
        lrs = {name: LR_GRIDS[name] for name in out["students"]}
    out["lrs"] = {name: lrs[name] for name in out["students"]}
    if any(not 0 <= v < 1 for v in out["nu0"]):
        raise ValueError(f"--nu0 values must lie in [0, 1), got {out['nu0']}")
    if any(lr <= 0 or not math.isfinite(lr) for v in out["lrs"].values() for lr in v):
        raise ValueError(f"--lrs must be positive, got {args.lrs}")
    for key in ("steps", "length", "batch_size", "seeds"):
        if out[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {out[key]}")
    if args.d_state < 10:
        raise ValueError("--d-state must be at least the teacher's 10 hidden units")
    if args.stack < 1 or args.test_size < 1:
        raise ValueError("--stack and --test-size must be at least 1")
    out.update(d_state=args.d_state, test_size=args.test_size,
               mode=args.mode if args.mode is not None else DEFAULT_MODE,
               loss=getattr(args, "loss", "gram"), dtype=getattr(args, "dtype", "float32"),
               outside_disk=getattr(args, "outside_disk", "continue"))
    return out


def half_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss of the paper: $\\frac12$ mean squared error."""
    return 0.5 * torch.mean((prediction - target) ** 2)


def _set_mode(cell: nn.Module, mode: str | None) -> nn.Module:
    if mode is None:
        return cell
    if not hasattr(cell, "mode"):
        raise ValueError(f"{type(cell).__name__} has no sequence-mode switch; drop --mode")
    cell.mode = mode
    return cell


def gram_losses(trainer: StackedTrainer, xs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Each stacked model's half MSE against the teacher on its seed's batch, by the lag Gram.

    The models are seed-major (model ``i`` sees batch ``i // (S / seeds)``), so one Gram per
    seed serves all of that seed's models (:mod:`.lag_gram`).

    Args:
        trainer: the stacked students (linear, time-invariant, 1-D input and output).
        xs: ``(seeds, batch, T, 1)`` inputs, one batch per seed.
        target: the teacher's impulse response ``(T, 1, 1)``.

    Returns:
        ``(S,)`` losses, differentiable in ``trainer.params``.
    """
    seeds, batch, length = xs.shape[:3]
    gram = lag_gram(xs)[:, None]  # (seeds, 1, T, T): shared by the models of a seed
    R = trainer.call(lambda m: m.impulse_response(length))  # (S, T, 1, 1)
    err = (R - target).reshape(seeds, -1, length, 1, 1)  # (seeds, S / seeds, T, 1, 1)
    return kernel_half_mse(err, gram, batch * length).reshape(-1)


def _eigs(module: nn.Module) -> torch.Tensor:
    lam = getattr(module, "lam", None)
    return lam if isinstance(lam, torch.Tensor) else torch.zeros(1)


def _can_leave_disk(name: str) -> bool:
    return name.startswith("diag-") and not name.startswith("diag-exp")


def train_stack(
    name: str,
    teacher,
    *,
    lrs: list[float],
    seeds: list[int],
    steps: int,
    batch_size: int,
    length: int,
    nu0: float,
    d_state: int = 64,
    test_size: int = 512,
    mode: str | None = None,
    loss: str = "gram",
    outside_disk: str = "continue",
    base_seed: int = 0,
    progress: bool = False,
    log_every: int = 0,
) -> list[dict]:
    r"""Train ``len(seeds) x len(lrs)`` copies of student ``name`` side by side.

    Students are drawn in torch's default dtype and moved to the teacher's device and dtype.
    Seed ``s`` fixes the student's initialisation (the same for every lr) and its data stream
    (fresh ``x ~ N(0, 1)`` each step, the same for every lr). Adam (0.9, 0.999, 1e-8) with a
    cosine decay from the peak lr to 1e-7 over ``steps``. A run diverges when its loss or a
    gradient is not finite; it is then frozen and reported with ``diverged_at``. Students whose
    eigenvalues can leave the unit disk (Polar and real/imaginary ones) report the first step
    at which one did as ``left_disk_at``; with ``outside_disk="continue"`` (the authors' code,
    which has no such rule) they keep training, with ``"stop"`` they are frozen there as
    diverged.

    ``loss="gram"`` computes each batch's half MSE from the students' and the teacher's
    impulse responses and the batch's lag Gram matrix (:mod:`.lag_gram`: the same value and
    gradient as running the students, shared by the lrs of a seed); ``loss="direct"`` runs the
    students' ``forward`` (in ``mode``) on the batch and the teacher's outputs. Both draw the
    same batches. The held-out test loss always runs the students' ``forward``.
    ``log_every > 0`` prints, every that many steps, the seed-mean loss per lr (for long runs
    in the background).

    Returns:
        One dict per run: ``lr``, ``seed``, ``train_loss`` (mean of the last
        ``min(100, steps)`` batches), ``test_loss`` (``test_size`` held-out sequences),
        ``diverged_at`` (step or ``None``), ``curve`` (about 50 points).
    """
    if loss not in LOSSES:
        raise ValueError(f"train_stack: loss must be one of {LOSSES}, got {loss!r}")
    if outside_disk not in OUTSIDE_DISK:
        raise ValueError(f"train_stack: outside_disk must be one of {OUTSIDE_DISK}, got "
                         f"{outside_disk!r}")
    pairs = [(seed, lr) for seed in seeds for lr in lrs]
    models = []
    for seed, _ in pairs:
        torch.manual_seed(mix_seed(seed, run=base_seed))
        cell = STUDENTS[name](d_state, nu0).to(device=teacher.A.device, dtype=teacher.dtype)
        models.append(_set_mode(cell, mode))
    trainer = StackedTrainer(models, [lr for _, lr in pairs], total_steps=steps, eta_min=1e-7)
    gens = [torch.Generator().manual_seed(mix_seed(0, run=base_seed, step=seed + 1))
            for seed in seeds]
    index = torch.tensor([seeds.index(seed) for seed, _ in pairs], device=teacher.A.device)
    n = len(pairs)
    active = torch.ones(n, dtype=torch.bool, device=teacher.A.device)
    diverged_at: list[int | None] = [None] * n
    left_disk_at: list[int | None] = [None] * n
    last = max(1, min(100, steps))
    tail = torch.zeros(n, dtype=torch.float64)
    curves: list[list[float]] = [[] for _ in range(n)]
    every = max(1, steps // 50)
    check_disk = _can_leave_disk(name)
    target = teacher.impulse_response(length)  # (T, 1, 1)
    for step in tqdm(range(steps), disable=None if progress else True, desc=name, leave=False):
        xs = torch.stack([torch.randn(batch_size, length, 1, dtype=teacher.dtype, generator=g)
                          for g in gens]).to(teacher.A.device)  # (seeds, B, T, 1)
        if loss == "gram":
            losses = gram_losses(trainer, xs, target)  # (S,)
        else:
            ys = teacher(xs.flatten(0, 1)).reshape(xs.shape)  # one teacher call for every seed
            x, y = xs[index], ys[index]  # (S, B, T, 1)
            losses = trainer.call(lambda m, a, b: half_mse(m(a)[0], b), x, y, in_dims=(0, 0))
        grads = torch.autograd.grad(losses.sum(), list(trainer.params.values()),
                                    allow_unused=True)
        losses = losses.detach()
        ok = torch.isfinite(losses)
        for g in grads:
            if g is not None:
                ok &= torch.isfinite(g.reshape(n, -1)).all(1) if not g.is_complex() else \
                    torch.isfinite(torch.view_as_real(g).reshape(n, -1)).all(1)
        newly = active & ~ok
        active &= ok
        trainer.apply_gradients(dict(zip(trainer.params, grads)), active=active)
        if check_disk:
            with torch.no_grad():
                inside = (trainer.call(_eigs).abs() < 1).reshape(n, -1).all(1)
            for i in torch.nonzero(active & ~inside).flatten().tolist():
                if left_disk_at[i] is None:
                    left_disk_at[i] = step
            if outside_disk == "stop":
                newly |= active & ~inside
                active &= inside
        for i in torch.nonzero(newly).flatten().tolist():
            diverged_at[i] = step
        if step >= steps - last:
            tail += losses.cpu().double()
        if log_every and (step % log_every == 0 or step == steps - 1):
            by_lr = {lr: [] for lr in lrs}
            for (_, lr), v in zip(pairs, losses.tolist()):
                by_lr[lr].append(v)
            text = ", ".join(f"{lr:g}: {sum(v) / len(v):.3g}" for lr, v in by_lr.items())
            print(f"  {name} step {step}: mean batch loss by lr {{{text}}}; diverged "
                  f"{sum(d is not None for d in diverged_at)}/{n}", flush=True)
        if step % every == 0 or step == steps - 1:
            for i, v in enumerate(losses.tolist()):
                curves[i].append(v if diverged_at[i] is None else math.inf)
    gen = torch.Generator().manual_seed(mix_seed(base_seed, stream=1))
    x, y = teacher_data(teacher, test_size, length, generator=gen)
    with torch.no_grad():
        test = trainer.call(lambda m, a, b: half_mse(m(a)[0], b), x, y).double().cpu()
    out = []
    for i, (seed, lr) in enumerate(pairs):
        bad = diverged_at[i] is not None or not math.isfinite(float(test[i]))
        out.append({"lr": lr, "seed": seed,
                    "train_loss": math.inf if bad else float(tail[i]) / last,
                    "test_loss": math.inf if bad else float(test[i]),
                    "diverged_at": diverged_at[i] if diverged_at[i] is not None else
                    (steps if bad else None),
                    "left_disk_at": left_disk_at[i],
                    "curve": curves[i]})
    return out


def _sem(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def best_lr(runs: list[dict]) -> dict:
    """Seed mean and SEM at the lr whose seed mean (training loss) is best.

    An lr with a diverged seed has an infinite mean; only when every lr has one is the lr
    with the fewest divergences taken, its mean over the finite seeds reported, and
    ``all_lrs_diverged`` set.
    """
    by_lr: dict[float, list[dict]] = {}
    for r in runs:
        by_lr.setdefault(r["lr"], []).append(r)
    stats = []
    for lr, rs in by_lr.items():
        ok = [r for r in rs if r["diverged_at"] is None]
        div = len(rs) - len(ok)
        train = [r["train_loss"] for r in ok]
        test = [r["test_loss"] for r in ok]
        mean = sum(train) / len(train) if train else math.inf
        stats.append({"lr": lr, "diverged": div, "seeds": len(rs),
                      "left_disk": sum(r.get("left_disk_at") is not None for r in rs),
                      "train": mean if div == 0 else math.inf, "train_finite": mean,
                      "train_sem": _sem(train),
                      "test": sum(test) / len(test) if test else math.inf,
                      "test_sem": _sem(test)})
    finite = [s for s in stats if s["diverged"] == 0]
    if finite:
        best = min(finite, key=lambda s: s["train"])
        best["all_lrs_diverged"] = False
    else:
        best = min(stats, key=lambda s: (s["diverged"], s["train_finite"]))
        best["train"] = best["train_finite"]
        best["all_lrs_diverged"] = True
    best = dict(best)
    best["diverged_total"] = sum(s["diverged"] for s in stats)
    best["runs_total"] = sum(s["seeds"] for s in stats)
    best["left_disk_total"] = sum(s["left_disk"] for s in stats)
    best["per_lr"] = stats
    return best


def run(args: argparse.Namespace) -> dict | None:
    """Sweep nu0 x students (x lrs x seeds, side by side); print, save and plot the table.

    Under ``torchrun --nproc-per-node N`` the (nu0, student, seed chunk) configurations are
    split across the ranks and rank 0 reports the gathered table (the other ranks return
    ``None``); see :mod:`recurrent_params.experiments.sweep`.
    """
    if args.from_json:
        return _from_json(args)
    s = _settings(args)
    progress = not args.no_progress
    n_runs = len(s["nu0"]) * sum(len(s["lrs"][n]) for n in s["students"]) * s["seeds"]
    seeds = list(range(s["seeds"]))
    work = [(nu0, name, seeds[c:c + max(1, args.stack // len(s["lrs"][name]))])
            for nu0 in s["nu0"] for name in s["students"]
            for c in range(0, len(seeds), max(1, args.stack // len(s["lrs"][name])))]
    with sweep() as ctx:
        device = ctx.device(args.device)
        if ctx.is_main:
            print(f"teacher-student ({s['preset']}): {n_runs} runs of {s['steps']} steps (T = "
                  f"{s['length']}, batch {s['batch_size']}, {s['d_state']} student states, "
                  f"{s['seeds']} seeds, {s['dtype']}, {args.device}, loss {s['loss']}, mode "
                  f"{s['mode'] or 'cells default'}"
                  + (f", {ctx.world} processes" if ctx.world > 1 else "") + ")")
        start = time.perf_counter()
        teachers, done = {}, []
        for i, (nu0, name, chunk) in ctx.share(work):
            if nu0 not in teachers:
                teachers[nu0] = make_teacher(nu0, 10, seed=args.seed,
                                             dtype=getattr(torch, s["dtype"]), device=device)
            t0 = time.perf_counter()
            runs = train_stack(name, teachers[nu0], lrs=s["lrs"][name], seeds=chunk,
                               steps=s["steps"], batch_size=s["batch_size"],
                               length=s["length"], nu0=nu0, d_state=s["d_state"],
                               test_size=s["test_size"], mode=s["mode"], loss=s["loss"],
                               outside_disk=s["outside_disk"], base_seed=args.seed,
                               progress=progress, log_every=args.log_every)
            seconds = time.perf_counter() - t0
            if progress:
                print(f"  nu0 {nu0} {name} seeds {chunk[0]}-{chunk[-1]}: {seconds:.0f} s"
                      + (f" (rank {ctx.rank})" if ctx.world > 1 else ""))
            done.append((i, ([dict(r, nu0=nu0, student=name) for r in runs], seconds)))
        gathered = ctx.gather(done)
        seconds = ctx.sum(time.perf_counter() - start)
    if gathered is None:
        return None  # a rank other than 0: rank 0 reports
    results, timings = [], {}
    for (nu0, name, _), (runs, secs) in zip(work, gathered):
        results += runs
        timings[f"{nu0}/{name}"] = timings.get(f"{nu0}/{name}", 0.0) + secs
    return _report(s, results, seconds, timings, n_runs, args)


def _from_json(args: argparse.Namespace) -> dict:
    """Rebuild the table and figure from saved ``teacher-student.json`` files (no training).

    The files' runs are pooled (e.g. one file per student, trained in separate processes).
    """
    results, timings, seconds, settings = [], {}, 0.0, None
    for path in args.from_json:
        data = _read_result(Path(path))
        results += data["runs"]
        timings.update(data.get("seconds_per_student", {}))
        seconds += data.get("seconds", 0.0)
        s = data["settings"]
        if settings is None:
            settings = dict(s, students=list(s["students"]), nu0=list(s["nu0"]),
                            lrs=dict(s["lrs"]))
        else:
            settings["students"] += [n for n in s["students"] if n not in settings["students"]]
            settings["nu0"] += [v for v in s["nu0"] if v not in settings["nu0"]]
            settings["lrs"].update(s["lrs"])
    settings["nu0"] = sorted(settings["nu0"])
    for r in results:
        r["curve"] = [math.inf if v is None else v for v in r["curve"]]
    print(f"teacher-student: {len(results)} runs read from {len(args.from_json)} file(s)")
    return _report(settings, results, seconds, timings, len(results), args)


#: what ``--from-json`` reads from each file: the settings and the keys of every run
_RESULT_SETTINGS = ("students", "nu0", "lrs", "seeds")
_RESULT_RUN_KEYS = ("nu0", "student", "lr", "diverged_at", "train_loss", "test_loss", "curve")


def _read_result(path: Path) -> dict:
    """A saved ``teacher-student.json``, checked; a ``ValueError`` naming the file otherwise."""
    import json

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"--from-json {str(path)!r}: cannot read it ({exc.strerror or exc})") \
            from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--from-json {str(path)!r}: not a JSON file ({exc})") from None
    why = None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) \
            or not isinstance(data.get("settings"), dict):
        why = "expected an object with 'settings' and 'runs'"
    elif any(k not in data["settings"] for k in _RESULT_SETTINGS) \
            or not isinstance(data["settings"]["lrs"], dict):
        why = f"its 'settings' need {', '.join(_RESULT_SETTINGS)} ('lrs' a mapping)"
    elif any(not isinstance(r, dict) or any(k not in r for k in _RESULT_RUN_KEYS)
             or not isinstance(r["curve"], list) for r in data["runs"]):
        why = f"every run needs {', '.join(_RESULT_RUN_KEYS)}"
    if why is not None:
        raise ValueError(f"--from-json {str(path)!r} is not a teacher-student result "
                         f"(written by --out): {why}")
    return data


def _report(s: dict, results: list[dict], seconds: float, timings: dict, n_runs: int,
            args: argparse.Namespace) -> dict:
    table, best = [], {}
    for nu0 in s["nu0"]:
        row: dict = {"nu0": nu0}
        for name in s["students"]:
            b = best_lr([r for r in results if r["nu0"] == nu0 and r["student"] == name])
            best[f"{nu0}/{name}"] = b
            row[name] = b["train"]
            row[f"{name}_sem"] = b["train_sem"]
            row[f"{name}_test"] = b["test"]
            row[f"{name}_lr"] = b["lr"]
            row[f"{name}_diverged"] = f"{b['diverged']}/{b['seeds']} ({b['diverged_total']}/" \
                                      f"{b['runs_total']})"
        table.append(row)
    print("\nTraining loss (1/2 MSE, last 100 batches; mean over seeds, SEM, test loss, best lr; "
          "diverged: at that lr (over the whole grid)):")
    write_table(table, args.out / "teacher_student.csv" if args.out else None)
    for key, b in best.items():
        if b["all_lrs_diverged"]:
            print(f"warning: {key}: every lr had a diverged seed; mean over finite seeds shown")
        if b["left_disk_total"]:
            left = next(s["left_disk"] for s in b["per_lr"] if s["lr"] == b["lr"])
            print(f"note: {key}: an eigenvalue left the unit disk in {left}/{b['seeds']} runs at "
                  f"the chosen lr ({b['left_disk_total']}/{b['runs_total']} over the grid)")
    print(f"\n{n_runs} runs in {seconds:.0f} s (training, summed over processes).")
    plot_path = args.plot or (args.out / "teacher_student.png" if args.out else None)
    if plot_path is not None:
        plot(table, s["students"], plot_path)
    for r in results:
        r["curve"] = [v if math.isfinite(v) else None for v in r["curve"]]
    return {"settings": s, "seconds": seconds, "seconds_per_student": timings,
            "table": table, "best": best, "runs": results,
            "paper": {k: {str(n): v for n, v in d.items()} for k, d in PAPER.items()}}


def plot(table: list[dict], students: list[str], path) -> None:
    """Loss vs nu0 (log y), SEM error bars, one line per student, the paper's values dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    nus = [r["nu0"] for r in table]
    for i, name in enumerate(students):
        color = f"C{i}"
        ys = [r[name] for r in table]
        ax.errorbar(nus, ys, yerr=[r[f"{name}_sem"] for r in table], fmt="o-", color=color,
                    capsize=3, label=f"{name} (measured)")
        if name in PAPER:
            ref = [(n, PAPER[name][n]) for n in nus if n in PAPER[name]]
            if len(ref) == 1:
                ax.plot(*zip(*ref), "x", color=color, ms=9, label=f"{name} (paper)")
            elif ref:
                ax.plot(*zip(*ref), ":", marker="x", color=color, label=f"{name} (paper)")
    ax.set_yscale("log")
    ax.set(xlabel="nu0 (teacher eigenvalue magnitudes in [nu0, 1))",
           ylabel="training loss (1/2 MSE, last 100 batches)",
           title="teacher-student (arXiv 2405.21064, Fig. 3)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    last = result["table"][-1]
    students = result["settings"]["students"]
    ranked = sorted(students, key=lambda k: last[k])
    text = ", ".join(f"{k} {last[k]:.3g}" for k in ranked)
    return (f"at nu0 = {last['nu0']} the training losses (best lr, mean over "
            f"{result['settings']['seeds']} seeds) are {text}.")
