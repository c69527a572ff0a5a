"""``recurrent-params lsc``: pre-training a deep LSTM/GRU to the Local Stability Condition.

Two tasks (``--task``): ``digits`` (the default) runs the paper's protocol on scikit-learn's
8x8 digits, see :mod:`recurrent_params.experiments.lsc_digits`. ``copy`` is the synthetic task
below.

With ``--task copy``, a deep LSTM (or GRU) with a linear readout learns a generated
delayed-copy task
(``y_t = x_{t-delay}``, Gaussian ``x_t``). Three copies of the same initial network are
compared: torch's default initialisation, and the same weights pre-trained with
``optim.LSCPretrainer`` to target radius 1.0 and 0.5. The radii of every transition are
printed before/after, then each network is trained briefly with AdaBelief and the loss
curves are printed (``--plot`` writes them as a PNG).

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from recurrent_params.experiments._arg_types import (
    finite_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from recurrent_params.experiments.lsc_digits import ACTIVATIONS, CELLS

SUMMARY = ("Pre-train deep LSTMs/GRUs to the Local Stability Condition (arXiv 2308.12075) and "
           "train them on 8x8 digits or a delayed copy.")

HELP = (
    "Pre-train deep LSTMs/GRUs to the Local Stability Condition (arXiv 2308.12075). "
    "--task digits (default): 8x8 digits read pixel by pixel, LSTM/GRU depth 2 and 5, torch "
    "default vs Keras-like vs LSC 1.0 vs LSC 0.5, AdaBelief+Lookahead, test accuracy mean +- SD "
    "over seeds (--cells alif: ALIF spiking stacks on threshold-crossing spikes), plus the "
    "depth-30 FFN (sin/relu/cos; Glorot/He/orthogonal vs LSC); needs scikit-learn. "
    "--task copy: a generated delayed-copy task, radii before/after and loss curves (--plot "
    "writes a PNG)."
)


#: the tasks of ``--task``, in the order their option groups appear
TASKS = ("digits", "copy", "smnist", "fashion", "brown")
_LONG = ("smnist", "fashion", "brown")

#: option destination -> (flag, the tasks that read it); options missing here (``--task``,
#: ``--hidden``, ``--pretrain-steps``, ``--lr`` and the common ones) are read by every task
OWNERS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{dest: (flag, ("copy",)) for dest, flag in (
        ("cell", "--cell"), ("layers", "--layers"), ("features", "--features"),
        ("length", "--length"), ("delay", "--delay"), ("train_steps", "--train-steps"),
        ("batch", "--batch"))},
    "cells": ("--cells", ("digits", "smnist", "fashion")),
    "depths": ("--depths", ("digits", "smnist", "fashion")),
    "seeds": ("--seeds", ("digits", *_LONG)),
    "epochs": ("--epochs", ("digits", *_LONG)),
    "train_batch": ("--train-batch", ("digits", *_LONG)),
    "pretrain_batch": ("--pretrain-batch", ("digits", *_LONG)),
    **{dest: (flag, ("digits",)) for dest, flag in (
        ("ffn_pretrain_steps", "--ffn-pretrain-steps"), ("no_rnn", "--no-rnn"),
        ("no_ffn", "--no-ffn"), ("ffn_depth", "--ffn-depth"), ("ffn_width", "--ffn-width"),
        ("ffn_epochs", "--ffn-epochs"), ("ffn_lr", "--ffn-lr"),
        ("activations", "--activations"))},
    **{dest: (flag, _LONG) for dest, flag in (
        ("preset", "--preset"), ("inits", "--inits"), ("patience", "--patience"),
        ("dropout", "--dropout"), ("data_root", "--data-root"), ("measure", "--measure"),
        ("train_size", "--train-size"), ("test_size", "--test-size"))},
    **{dest: (flag, ("smnist", "fashion")) for dest, flag in (
        ("permute", "--permute"), ("val_size", "--val-size"), ("alif_lr", "--alif-lr"),
        ("trace_every", "--trace-every"))},
    **{dest: (flag, ("brown",)) for dest, flag in (("nets", "--nets"), ("bptt", "--bptt"))},
}
#: kept for callers of the earlier two-task version
COPY_ONLY = {d: f for d, (f, tasks) in OWNERS.items() if tasks == ("copy",)}
DIGITS_ONLY = {d: f for d, (f, tasks) in OWNERS.items() if "digits" in tasks}


def _probability(text: str) -> float:
    """A dropout probability: a number in [0, 1)."""
    import argparse

    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_arguments(parser) -> None:
    """Options of the experiment (the common ones are added by the CLI).

    One group in ``--help`` for the options every task reads, then one per task (or family of
    tasks); an option of one task given with another is refused (:func:`check_task_options`).
    """
    from recurrent_params.experiments.lsc_brown import net_name
    from recurrent_params.experiments.lsc_digits import RNN_INITS
    from recurrent_params.experiments.lsc_long import PRESETS as LONG_PRESETS

    parser.add_argument("--task", choices=list(TASKS), default="digits",
                        help="8x8 digits classification (default); synthetic delayed copy; "
                        "784-step sequential MNIST (smnist) or Fashion-MNIST (fashion); "
                        "word-level LM on the Brown corpus (brown, the PTB stand-in)")
    both = parser.add_argument_group("every task", "options every --task reads")
    both.add_argument("--hidden", type=positive_int, default=None,
                      help="width (copy: default 64, quick 32; digits: default 128, quick 16; "
                      "smnist/fashion: the preset's; brown: the LSTM's, the preset's)")
    both.add_argument("--pretrain-steps", type=positive_int, default=None,
                      help="max LSC steps (copy: default 150, quick 80; digits: default 40, "
                      "quick 6; smnist/fashion/brown: the preset's)")
    both.add_argument("--lr", type=positive_float, default=None,
                      help="AdaBelief learning rate (copy 3e-3; digits and smnist/fashion 1e-2; "
                      "brown: the preset's, full 3.16e-4)")
    copy_task = parser.add_argument_group("--task copy")
    copy_task.add_argument("--cell", choices=["lstm", "gru"], default=None,
                           help="recurrent layer (default lstm)")
    copy_task.add_argument("--layers", type=positive_int, default=None,
                           help="depth (default 4; quick 3)")
    copy_task.add_argument("--features", type=positive_int, default=None,
                           help="input/output features (default 32; the encoder transition is "
                           "restricted to min(features, 2 * hidden))")
    copy_task.add_argument("--length", type=positive_int, default=None,
                           help="sequence length (default 40; quick 20)")
    copy_task.add_argument("--delay", type=positive_int, default=None,
                           help="copy delay, below --length (default 10; quick 5)")
    copy_task.add_argument("--train-steps", type=positive_int, default=None,
                           help="AdaBelief steps (default 1500; quick 400)")
    copy_task.add_argument("--batch", type=positive_int, default=None,
                           help="batch size (default 32)")
    digits = parser.add_argument_group("--task digits")
    digits.add_argument("--cells", nargs="+", choices=list(CELLS), default=None,
                        help="recurrent layers (default lstm gru; alif: ALIF spiking neurons "
                        "on threshold-crossing spikes of the pixels; smnist/fashion too, "
                        "default lstm gru alif)")
    digits.add_argument("--depths", nargs="+", type=positive_int, default=None,
                        help="depths (default 2 5; quick 2; smnist/fashion too)")
    digits.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds --seed, --seed+1, ... (default 4; quick 1; the long tasks: "
                        "the preset's)")
    digits.add_argument("--epochs", type=positive_int, default=None,
                        help="training epochs of the recurrent nets (default 15; quick 3; the "
                        "long tasks: the most epochs, with early stopping)")
    digits.add_argument("--train-batch", type=positive_int, default=None,
                        help="training batch size (default 256, the paper's; quick 64)")
    digits.add_argument("--pretrain-batch", type=positive_int, default=None,
                        help="task batch size of LSC pre-training (default 32; quick 16)")
    digits.add_argument("--ffn-pretrain-steps", type=positive_int, default=None,
                        help="max LSC steps of the FFN (default 40; quick 6)")
    digits.add_argument("--no-rnn", action="store_true", help="skip the recurrent part")
    digits.add_argument("--no-ffn", action="store_true", help="skip the FFN part")
    digits.add_argument("--ffn-depth", type=positive_int, default=None,
                        help="FFN hidden layers (default 30; quick 4)")
    digits.add_argument("--ffn-width", type=positive_int, default=None,
                        help="FFN width (default 128; quick 16)")
    digits.add_argument("--ffn-epochs", type=positive_int, default=None,
                        help="FFN training epochs (default 30; quick 2)")
    digits.add_argument("--ffn-lr", type=positive_float, default=None,
                        help="FFN learning rate (default 1e-3)")
    digits.add_argument("--activations", nargs="+", choices=list(ACTIVATIONS),
                        default=None, help="FFN activations (default all; quick relu)")
    long = parser.add_argument_group(
        "--task smnist / fashion / brown",
        "the paper's protocols at their real lengths; resumable with --out, split across "
        "torchrun ranks")
    long.add_argument("--preset", choices=sorted(LONG_PRESETS), default=None,
                      help="sizes: quick (seconds; a generated stand-in when the data are "
                      "missing), cpu (smnist/fashion: every network at the start of training, "
                      "about 1 h per data set on two torchrun processes; brown: about 30 min), "
                      "cpu-depth5 (smnist/fashion: GRU x5 trained 2 epochs, LSC 1.0 vs 0.5, "
                      "about 45 min on two processes), full (the paper's settings, for a GPU); "
                      "default cpu, or quick with --quick")
    long.add_argument("--inits", nargs="+", choices=list(RNN_INITS), default=None,
                      help="initialisations (smnist/fashion default: all four; alif skips "
                      "keras; brown default: default lsc-1.0 lsc-0.5)")
    long.add_argument("--patience", type=positive_int, default=None,
                      help="early-stopping patience in epochs (default 10, the paper's)")
    long.add_argument("--dropout", type=_probability, default=None,
                      help="dropout (default 0.3, the paper's)")
    long.add_argument("--train-size", type=positive_int, default=None,
                      help="training samples (brown: tokens) (default: the preset's)")
    long.add_argument("--test-size", type=positive_int, default=None,
                      help="test samples (brown: validation and test tokens)")
    long.add_argument("--data-root", type=Path, default=None,
                      help="a folder with the data (laid out like the data cache); default: "
                      "the data cache")
    long.add_argument("--measure", action="store_true",
                      help="only time one training step and one LSC pre-training step of "
                      "each network at the preset's sizes (random inputs) and print the ratio")
    long.add_argument("--permute", action="store_true",
                      help="smnist/fashion: read the pixels in one fixed permuted order")
    long.add_argument("--val-size", type=positive_int, default=None,
                      help="smnist/fashion: validation samples drawn from the training split")
    long.add_argument("--alif-lr", type=positive_float, default=None,
                      help="smnist/fashion: learning rate of the ALIF stacks (default 1e-3, "
                      "the paper's SHD rate)")
    long.add_argument("--trace-every", type=nonnegative_int, default=None,
                      help="smnist/fashion: every N optimiser steps record validation loss and "
                      "accuracy, radii and gradient norms in the run's trace (0: off; default "
                      "50 at cpu-depth5, off at cpu / full); does not change the training")
    long.add_argument("--nets", nargs="+", type=net_name, default=None,
                      help="brown: networks lstm<depth> / lru<depth> (default lstm2 lru3 lru6)")
    long.add_argument("--bptt", type=positive_int, default=None,
                      help="brown: truncated-BPTT window (default 35)")


def check_task_options(args) -> None:
    """Refuse an option of one task given with another (``ValueError``, one line)."""
    given: dict[tuple[str, ...], list[str]] = {}
    for dest, (flag, tasks) in OWNERS.items():
        if args.task not in tasks and getattr(args, dest, None) not in (None, False):
            given.setdefault(tasks, []).append(flag)
    parts = []
    for tasks, flags in given.items():
        verb = "is an option" if len(flags) == 1 else "are options"
        also = f" (also of --task {', '.join(tasks[1:])})" if len(tasks) > 1 else ""
        parts.append(f"{', '.join(flags)} {verb} of --task {tasks[0]}, not of --task "
                     f"{args.task}{also}")
    if parts:
        raise ValueError("; ".join(parts))


class _Net(nn.Module):
    def __init__(self, cell: str, features: int, hidden: int, layers: int):
        super().__init__()
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(features, hidden, num_layers=layers, batch_first=True)
        self.readout = nn.Linear(hidden, features)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


def _task(batch: int, length: int, features: int, delay: int, generator, device):
    x = torch.randn(batch, length, features, generator=generator).to(device)  # (B, L, d)
    y = torch.zeros_like(x)
    y[:, delay:] = x[:, :-delay]
    return x, y


def _train(net, args, sizes, device):
    from optim import AdaBelief

    opt = AdaBelief(net.parameters(), lr=3e-3 if args.lr is None else args.lr)
    gen = torch.Generator().manual_seed(args.seed + 1)  # same data for every variant
    losses = []
    for _ in range(sizes["train_steps"]):
        x, y = _task(sizes["batch"], sizes["length"], sizes["features"], sizes["delay"], gen,
                     device)
        loss = 0.5 * ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        losses.append(loss.item())
    return losses


def run(args) -> dict:
    """Run the chosen task and print its tables; returns a JSON-serialisable summary."""
    check_task_options(args)
    if args.task in ("smnist", "fashion"):
        from recurrent_params.experiments.lsc_long import run_long

        return run_long(args)
    if args.task == "brown":
        from recurrent_params.experiments.lsc_brown import run_brown

        return run_brown(args)
    if args.task == "digits":
        from recurrent_params.experiments.lsc_digits import run_digits

        return run_digits(args)
    return _run_copy(args)


def _run_copy(args) -> dict:
    from optim import LSCPretrainer

    quick = args.quick
    sizes = {
        "cell": args.cell or "lstm",
        "features": args.features or 32,
        "batch": args.batch or 32,
        "layers": args.layers or (3 if quick else 4),
        "hidden": args.hidden or (32 if quick else 64),
        "length": args.length or (20 if quick else 40),
        "delay": args.delay or (5 if quick else 10),
        "train_steps": args.train_steps or (400 if quick else 1500),
        "pretrain_steps": args.pretrain_steps or (80 if quick else 150),
    }
    if sizes["delay"] >= sizes["length"]:
        raise ValueError(f"--delay {sizes['delay']} must be smaller than --length "
                         f"{sizes['length']}")
    device = args.device
    torch.manual_seed(args.seed)
    base = _Net(sizes["cell"], sizes["features"], sizes["hidden"], sizes["layers"]).to(device)
    variants = {"default": None, "lsc-1.0": 1.0, "lsc-0.5": 0.5}
    nets, results = {}, {}
    print(f"LSC pre-training: {sizes['cell'].upper()} depth {sizes['layers']}, width "
          f"{sizes['hidden']}, delayed copy (delay {sizes['delay']}, length {sizes['length']})")
    for name, target in variants.items():
        net = copy.deepcopy(base)
        if target is not None:
            t0 = time.perf_counter()
            res = LSCPretrainer(net.rnn, target=target, max_steps=sizes["pretrain_steps"],
                                batch_size=sizes["batch"], seq_len=sizes["length"],
                                clip=(0.75, 1.25), seed=args.seed,
                                progress=not args.no_progress).run()
            results[name] = res
            print(f"  {name}: {'converged' if res.converged else 'NOT converged'} after "
                  f"{res.steps} steps ({time.perf_counter() - t0:.1f} s)")
        nets[name] = net
    before = results["lsc-1.0"].radii_before
    print(f"\n{'transition':<14}{'default':>10}{'lsc-1.0':>10}{'lsc-0.5':>10}")
    for k in before:
        print(f"{k:<14}{before[k]:>10.3f}{results['lsc-1.0'].radii_after[k]:>10.3f}"
              f"{results['lsc-0.5'].radii_after[k]:>10.3f}")
    curves = {}
    for name, net in nets.items():
        t0 = time.perf_counter()
        curves[name] = _train(net, args, sizes, device)
        print(f"  trained {name} for {sizes['train_steps']} AdaBelief steps "
              f"({time.perf_counter() - t0:.1f} s)")
    marks = sorted({0, *range(0, sizes["train_steps"], max(1, sizes["train_steps"] // 6)),
                    sizes["train_steps"] - 1})
    print(f"\n{'step':>6}" + "".join(f"{n:>12}" for n in curves))
    for i in marks:
        print(f"{i:>6}" + "".join(f"{curves[n][i]:>12.4f}" for n in curves))
    plot_path = args.plot or (args.out / "lsc.png" if args.out is not None else None)
    if plot_path is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for n, c in curves.items():
            ax.plot(c, label=n)
        ax.set_xlabel("AdaBelief step")
        ax.set_ylabel("half MSE")
        ax.set_yscale("log")
        ax.set_title(f"{sizes['cell'].upper()} x{sizes['layers']}: delayed copy")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)
        plt.close(fig)
        print(f"figure written to {plot_path}")
    return {
        "task": "copy", "sizes": sizes, "cell": sizes["cell"],
        "radii": {"default": before,
                  **{n: r.radii_after for n, r in results.items()}},
        "converged": {n: r.converged for n, r in results.items()},
        "final_loss": {n: c[-1] for n, c in curves.items()},
        "loss_curves": curves,
    }


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    if result.get("task") in ("smnist", "fashion"):
        from recurrent_params.experiments.lsc_long import summarize as summarize_long

        return summarize_long(result)
    if result.get("task") == "brown":
        from recurrent_params.experiments.lsc_brown import summarize as summarize_brown

        return summarize_brown(result)
    if result.get("task") == "digits":
        from recurrent_params.experiments.lsc_digits import summarize as summarize_digits

        return summarize_digits(result)
    radii = result["radii"]
    parts = []
    for name in ("default", "lsc-1.0", "lsc-0.5"):
        values = list(radii[name].values())
        parts.append(f"{name} radii {min(values):.2f}-{max(values):.2f}")
    losses = ", ".join(f"{k} {v:.3g}" for k, v in result["final_loss"].items())
    return (f"{result['cell'].upper()} x{result['sizes']['layers']}: " + "; ".join(parts)
            + f" (converged: {result['converged']}); loss after training: {losses}.")
