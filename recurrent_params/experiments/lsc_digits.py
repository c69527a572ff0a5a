"""``recurrent-params lsc --task digits``: the LSC paper's protocol on the offline 8x8 digits.

Why this file is above 400 lines: it is one experiment of the command line end to end (the
digits networks (LSTM / GRU / ALIF stacks and the depth-30 FFN), their initialisations, training
and the report); what other experiments share lives in ``_runs.py``, ``resumable_sweep.py``,
``sweep.py`` and ``_arg_types.py``.

Two parts, both on :mod:`recurrent_params.experiments.digits` (pixel values / 16, fixed
stratified splits):

* **Recurrent**: LSTM and GRU (``torch.nn.LSTM``/``nn.GRU`` + a linear readout of the last
  step) of depth 2 and 5, width 128, read the image pixel by pixel (64 steps, 1 feature).
  Initialisations: torch's default; Keras-like (:func:`keras_like_init_`); the default-init
  network pre-trained with ``optim.LSCPretrainer`` on task batches to target radius 1.0 and
  to 0.5.
* **Spiking** (``--cells alif``): stacks of :class:`recurrent_params.ALIF` neurons of depth 2
  and 5 read the same pixels as threshold-crossing spike trains
  (:func:`recurrent_params.experiments.spike_encoding.threshold_crossing`, 8 levels up and down:
  16 binary channels, 64 steps), with a linear readout of the top layer's spike rate over
  time. Initialisations: the cell's default and LSC 1.0 / 0.5 (no Keras-like variant).
* **Feed-forward**: depth 30, width 128, activations sin / relu / cos on the flattened image;
  Glorot, He and orthogonal initialisations vs the Glorot network pre-trained to radius 1.

Every network is trained with AdaBelief (eps 1e-14, rectify, no weight decay) inside
Lookahead(k = 6, alpha = 0.5) at batch 256 (the paper's sequential-MNIST settings, lr 1e-2 for
the recurrent nets), for a fixed number of epochs; the reported test accuracy is the one at the
epoch of lowest validation loss (early stopping without the paper's patience rule). No dropout
(the paper uses 0.3). The paper trains far longer; the epoch budget here fits a shared CPU.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recurrent_params.experiments._output import save_figure, write_table
from recurrent_params.experiments._runs import append_record
from recurrent_params.experiments.digits import (
    N_CLASSES,
    SEQ_LEN,
    DigitsSplit,
    load_digits_sequences,
)
from recurrent_params.experiments.spike_encoding import threshold_crossing

__all__ = ["SequenceClassifier", "SpikingClassifier", "spike_digits", "keras_like_init_",
           "make_ffn", "ffn_init_"]

RNN_INITS = ("default", "keras", "lsc-1.0", "lsc-0.5")
ALIF_INITS = ("default", "lsc-1.0", "lsc-0.5")
#: the recurrent layers of the digits task (``--cells``): torch's LSTM and GRU, ALIF stacks
CELLS = ("lstm", "gru", "alif")
#: threshold-crossing levels of the spiking digits (2 x 8 = 16 input channels)
SPIKE_LEVELS = 8
FFN_INITS = ("glorot", "he", "orthogonal", "lsc-1.0")
ACTIVATIONS = ("sin", "relu", "cos")


class SequenceClassifier(nn.Module):
    """A stacked ``nn.LSTM``/``nn.GRU`` (batch first) with a linear readout of the last step.

    Args:
        cell: ``"lstm"`` or ``"gru"``.
        hidden: width of every layer.
        layers: depth.
        d_input: input features per step.
        n_classes: outputs (logits).
        dropout: dropout between the layers (torch's) and before the readout (the paper: 0.3).
    """

    def __init__(self, cell: str, hidden: int, layers: int, d_input: int = 1,
                 n_classes: int = N_CLASSES, dropout: float = 0.0):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(d_input, hidden, num_layers=layers, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.readout = nn.Linear(hidden, n_classes)

    @property
    def recurrent(self) -> nn.Module:
        """The recurrent part, which LSC pre-trains."""
        return self.rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` from the last time step of ``x`` ``(B, T, d_input)``."""
        return self.readout(self.drop(self.rnn(x)[0][:, -1]))  # (B, C)


class SpikingClassifier(nn.Module):
    r"""A stack of :class:`recurrent_params.ALIF` layers with a linear readout of the top
    layer's spike rate, $\mathrm{logits} = W \frac1T\sum_t z^L_t + b$.

    Args:
        hidden: neurons per layer.
        layers: depth.
        d_input: input channels per step (spikes).
        n_classes: outputs (logits).
        dropout: dropout on the spikes between the layers and before the readout.
        **alif: keyword arguments of every :class:`~recurrent_params.ALIF` layer.
    """

    def __init__(self, hidden: int, layers: int, d_input: int = 2 * SPIKE_LEVELS,
                 n_classes: int = N_CLASSES, dropout: float = 0.0, **alif):
        super().__init__()
        from recurrent_params import ALIF

        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.stack = nn.Sequential(*[ALIF(d_input if l == 0 else hidden, hidden, **alif)
                                     for l in range(layers)])
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.readout = nn.Linear(hidden, n_classes)

    @property
    def recurrent(self) -> nn.Module:
        """The ALIF stack, which LSC pre-trains (an ``nn.Sequential`` of cells)."""
        return self.stack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` from spikes ``x`` ``(B, T, d_input)``."""
        z = x
        for cell in self.stack:
            z = self.drop(cell(z)[0])  # (B, T, hidden)
        return self.readout(z.mean(1))  # (B, C)


def spike_digits(split: DigitsSplit, levels: int = SPIKE_LEVELS) -> DigitsSplit:
    """The digits split with every pixel sequence ``(N, 64, 1)`` encoded as threshold-crossing
    spikes ``(N, 64, 2 * levels)`` (labels unchanged)."""
    return DigitsSplit(threshold_crossing(split.x_train, levels), split.y_train,
                       threshold_crossing(split.x_val, levels), split.y_val,
                       threshold_crossing(split.x_test, levels), split.y_test)


@torch.no_grad()
def keras_like_init_(module: nn.Module) -> nn.Module:
    r"""Keras's default initialisation of an ``nn.LSTM``/``nn.GRU``, in place.

    Input kernels Glorot-uniform over the stacked gate matrix ($U(\pm\sqrt{6/(n_{in}+n_{out})})$
    with $n_{out} = $ gates x hidden, as Keras does for its ``(in, gates * units)`` kernel),
    recurrent kernels orthogonal (``weight_hh`` has orthonormal columns,
    $W_{hh}^\top W_{hh} = I$), every bias zero except the LSTM forget gate, whose total bias
    $b_{ih} + b_{hh}$ is 1 (torch's gate order is i, f, g, o; the 1 sits in ``bias_ih``).
    Linear layers inside ``module`` get Glorot-uniform weights and zero biases.

    Returns:
        ``module``.

    Examples:
        >>> lstm = keras_like_init_(nn.LSTM(3, 4))
        >>> torch.allclose(lstm.weight_hh_l0.T @ lstm.weight_hh_l0, torch.eye(4), atol=1e-5)
        True
        >>> lstm.bias_ih_l0[4:8].tolist(), float(lstm.bias_hh_l0.abs().sum())
        ([1.0, 1.0, 1.0, 1.0], 0.0)
    """
    rnns = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    if not rnns:
        raise TypeError(f"keras_like_init_ needs an nn.LSTM/nn.GRU/nn.RNN inside, got "
                        f"{type(module).__name__}")
    for rnn in rnns:
        h = rnn.hidden_size
        for name, p in rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(p)
            elif name.startswith("bias"):
                p.zero_()
                if isinstance(rnn, nn.LSTM) and name.startswith("bias_ih"):
                    p[h:2 * h] = 1.0  # forget gate (order i, f, g, o)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                m.bias.zero_()
    return module


class _Sin(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class _Cos(nn.Module):
    def forward(self, x):
        return torch.cos(x)


def make_ffn(activation: str, depth: int = 30, width: int = 128, d_input: int = SEQ_LEN,
             n_classes: int = N_CLASSES) -> nn.Sequential:
    """``nn.Sequential`` of ``depth`` hidden ``Linear`` + activation layers and a readout.

    Args:
        activation: ``"sin"``, ``"relu"`` or ``"cos"``.
        depth: hidden layers.
        width: units per hidden layer.
        d_input: input features.
        n_classes: outputs.
    """
    acts = {"sin": _Sin, "relu": nn.ReLU, "cos": _Cos}
    if activation not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    mods: list[nn.Module] = []
    d = d_input
    for _ in range(depth):
        mods += [nn.Linear(d, width), acts[activation]()]
        d = width
    mods.append(nn.Linear(d, n_classes))
    return nn.Sequential(*mods)


@torch.no_grad()
def ffn_init_(net: nn.Module, scheme: str) -> nn.Module:
    r"""Initialise every ``nn.Linear`` of ``net`` in place; biases zero.

    ``"glorot"``: $\mathcal N(0, 2/(n_{in}+n_{out}))$; ``"he"``: $\mathcal N(0, 2/n_{in})$;
    ``"orthogonal"``: (semi-)orthogonal weights.
    """
    init = {"glorot": nn.init.xavier_normal_,
            "he": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
            "orthogonal": nn.init.orthogonal_}
    if scheme not in init:
        raise ValueError(f"scheme must be one of {sorted(init)}, got {scheme!r}")
    for m in net.modules():
        if isinstance(m, nn.Linear):
            init[scheme](m.weight)
            if m.bias is not None:
                m.bias.zero_()
    return net


# -- training -----------------------------------------------------------------------------------


def _optimizer(params, lr: float):
    """AdaBelief (eps 1e-14, rectified) inside Lookahead(6, 0.5): the LSC paper's optimiser."""
    from optim import AdaBelief, lookahead

    return lookahead(AdaBelief(params, lr=lr, eps=1e-14, rectify=True, weight_decay=0.0),
                     k=6, alpha=0.5)


@torch.no_grad()
def _evaluate(net, x, y, batch=512):
    net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        logits = net(x[i:i + batch])
        loss += nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
        correct += (logits.argmax(-1) == y[i:i + batch]).sum().item()
    net.train()
    return loss / max(1, len(y)), correct / max(1, len(y))


def _train(net, data, epochs: int, lr: float, batch: int, seed: int) -> dict:
    opt = _optimizer(net.parameters(), lr)
    gen = torch.Generator().manual_seed(seed + 12345)
    best = {"val_loss": math.inf, "test_acc": float("nan"), "epoch": -1}
    curve = []
    n = len(data.y_train)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(data.y_train.device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
            if not torch.isfinite(loss):
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_loss, val_acc = _evaluate(net, data.x_val, data.y_val)
        test_loss, test_acc = _evaluate(net, data.x_test, data.y_test)
        curve.append({"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc,
                      "test_acc": test_acc})
        if val_loss < best["val_loss"]:  # NaN never wins
            best = {"val_loss": val_loss, "test_acc": test_acc, "epoch": epoch}
    return {"best": best, "final_test_acc": curve[-1]["test_acc"] if curve else float("nan"),
            "curve": curve}


def _pretrain(model, data, target, steps, batch, seed, progress):
    from optim import LSCPretrainer

    gen = torch.Generator().manual_seed(seed + 777)
    perm = torch.randperm(len(data.y_train), generator=gen).to(data.y_train.device)
    batches = [data.x_train[perm[i:i + batch]] for i in range(0, len(perm) - batch + 1, batch)]
    t0 = time.perf_counter()
    # "local": under torchrun each rank pre-trains a configuration of its own
    res = LSCPretrainer(model, data=batches, target=target, max_steps=steps, seed=seed,
                        progress=progress, process_group="local").run()
    return res, time.perf_counter() - t0


def _stats(values):
    t = torch.tensor([v for v in values], dtype=torch.float64)
    sd = float(t.std()) if len(t) > 1 else 0.0
    return float(t.mean()), sd


# -- the experiment -------------------------------------------------------------------------------


def sizes_for(args) -> dict:
    """The run's sizes: the defaults (or ``--quick``'s) overridden by the options."""
    quick = args.quick
    return {
        "seeds": args.seeds or (1 if quick else 4),
        "depths": args.depths or ([2] if quick else [2, 5]),
        "hidden": args.hidden or (16 if quick else 128),
        "cells": args.cells or ["lstm", "gru"],
        "epochs": args.epochs or (3 if quick else 15),
        "pretrain_steps": args.pretrain_steps or (6 if quick else 40),
        "ffn_pretrain_steps": args.ffn_pretrain_steps or (6 if quick else 40),
        "pretrain_batch": args.pretrain_batch or (16 if quick else 32),
        "lr": args.lr if args.lr is not None else 1e-2,
        "batch": args.train_batch or (64 if quick else 256),
        "rnn": not args.no_rnn,
        "ffn": not args.no_ffn,
        "ffn_depth": args.ffn_depth or (4 if quick else 30),
        "ffn_width": args.ffn_width or (16 if quick else 128),
        "ffn_epochs": args.ffn_epochs or (2 if quick else 30),
        "ffn_lr": args.ffn_lr if args.ffn_lr is not None else 1e-3,
        "ffn_activations": args.activations or (["relu"] if quick else list(ACTIVATIONS)),
    }


def _log(path: Path | None, record: dict) -> None:
    append_record(path, record)


def _train_and_record(rec: dict, net, data, epochs: int, lr: float, batch: int, seed: int,
                      runs: list, log: Path | None) -> None:
    """Train ``net``, add its accuracies, curve and time to ``rec``, keep and log the record."""
    t0 = time.perf_counter()
    out = _train(net, data, epochs, lr, batch, seed)
    rec.update(test_acc=out["best"]["test_acc"], best_epoch=out["best"]["epoch"],
               final_test_acc=out["final_test_acc"], train_seconds=time.perf_counter() - t0,
               curve=out["curve"])
    runs.append(rec)
    _log(log, rec)


def _rnn_config(s: dict, data, seed: int, cell: str, depth: int, progress: bool,
                log: Path | None) -> list[dict]:
    """The initialisations of one recurrent configuration (four; ALIF: three, no Keras-like),
    trained one after another."""
    runs: list[dict] = []
    torch.manual_seed(seed)
    if cell == "alif":
        base = SpikingClassifier(s["hidden"], depth).to(data.x_train.device)
    else:
        base = SequenceClassifier(cell, s["hidden"], depth).to(data.x_train.device)
    for init in ALIF_INITS if cell == "alif" else RNN_INITS:
        net = copy.deepcopy(base)
        rec = {"part": "rnn", "cell": cell, "depth": depth, "init": init, "seed": seed}
        if init == "keras":
            keras_like_init_(net)
        elif init.startswith("lsc"):
            res, secs = _pretrain(net.recurrent, data, float(init.split("-")[1]),
                                  s["pretrain_steps"], s["pretrain_batch"], seed, progress)
            rec.update(lsc_converged=res.converged, lsc_steps=res.steps, lsc_seconds=secs,
                       radii_before=res.radii_before, radii_after=res.radii_after,
                       lsc_status=res.status, saturation_before=res.saturation_before,
                       saturation_after=res.saturation_after, lsc_warnings=res.warnings)
        _train_and_record(rec, net, data, s["epochs"], s["lr"], s["batch"], seed, runs, log)
        print(f"  seed {seed} {cell} x{depth} {init:<8} test acc "
              f"{rec['test_acc']:.3f} (epoch {rec['best_epoch']}, "
              f"{rec['train_seconds']:.0f} s"
              + (f", LSC {rec['lsc_steps']} steps {rec['lsc_seconds']:.0f} s"
                 if "lsc_steps" in rec else "") + ")", flush=True)
    return runs


def _ffn_config(s: dict, flat, seed: int, act: str, progress: bool,
                log: Path | None) -> list[dict]:
    """The four initialisations of one feed-forward configuration."""
    runs: list[dict] = []
    torch.manual_seed(seed)
    base = make_ffn(act, s["ffn_depth"], s["ffn_width"]).to(flat.x_train.device)
    for init in FFN_INITS:
        net = copy.deepcopy(base)
        rec = {"part": "ffn", "cell": act, "depth": s["ffn_depth"], "init": init, "seed": seed}
        ffn_init_(net, "glorot" if init.startswith("lsc") else init)
        if init.startswith("lsc"):
            res, secs = _pretrain(net, flat, 1.0, s["ffn_pretrain_steps"], s["pretrain_batch"],
                                  seed, progress)
            rec.update(lsc_converged=res.converged, lsc_steps=res.steps, lsc_seconds=secs)
        _train_and_record(rec, net, flat, s["ffn_epochs"], s["ffn_lr"], s["batch"], seed, runs,
                          log)
        print(f"  seed {seed} ffn {act} x{s['ffn_depth']} {init:<10} test acc "
              f"{rec['test_acc']:.3f} ({rec['train_seconds']:.0f} s)", flush=True)
    return runs


def _cost(item: tuple, s: dict) -> float:
    """Rough relative cost of one configuration, to balance ranks: proportional to depth x
    epochs x the cell's matrices per step (LSTM 4, GRU 3, ALIF 1; FFN layers at 1/64 of a
    recurrent layer's 64 time steps)."""
    part, _, net_name, depth = item
    if part == "ffn":
        return depth * s["ffn_epochs"] / 64
    return depth * s["epochs"] * {"lstm": 4, "gru": 3}.get(net_name, 1)


def run_digits(args) -> dict | None:
    """Run both parts, print the tables, write CSV/JSON/markdown/figure under ``--out``.

    Under ``torchrun --nproc-per-node N`` the (seed, network) configurations are split across
    the ranks (:mod:`recurrent_params.experiments.sweep`); rank 0 reports the gathered table
    and the other ranks return ``None`` (each rank logs its runs to its own
    ``lsc_digits_runs.rank<r>.jsonl``).
    """
    from recurrent_params.experiments.sweep import sweep

    s = sizes_for(args)
    progress = not args.no_progress
    work = []
    for seed in range(args.seed, args.seed + s["seeds"]):
        if s["rnn"]:
            work += [("rnn", seed, cell, depth) for cell in s["cells"] for depth in s["depths"]]
        if s["ffn"]:
            work += [("ffn", seed, act, s["ffn_depth"]) for act in s["ffn_activations"]]
    with sweep() as ctx:
        device = ctx.device(args.device)
        name = "lsc_digits_runs.jsonl" if ctx.world == 1 else \
            f"lsc_digits_runs.rank{ctx.rank}.jsonl"
        log = args.out / name if args.out is not None else None
        if log is not None and log.exists():
            log.unlink()
        if ctx.is_main:
            print(f"LSC on 8x8 digits, {s['seeds']} seed(s), train batch {s['batch']}"
                  + (f", {ctx.world} processes" if ctx.world > 1 else ""))
            if s["rnn"]:
                print(f"  recurrent (64 steps x 1 pixel; alif: x {2 * SPIKE_LEVELS} "
                      f"threshold-crossing spike channels): {s['cells']} depths {s['depths']}, "
                      f"width {s['hidden']}, {s['epochs']} epochs, LSC <= "
                      f"{s['pretrain_steps']} steps")
            if s["ffn"]:
                print(f"  FFN: {s['ffn_activations']} depth {s['ffn_depth']}, width "
                      f"{s['ffn_width']}, {s['ffn_epochs']} epochs, LSC <= "
                      f"{s['ffn_pretrain_steps']} steps")
        t_start = time.perf_counter()
        data: dict[tuple[int, str], Any] = {}
        done = []
        for i, (part, seed, net_name, depth) in ctx.share(work, [_cost(w, s) for w in work]):
            kind = "flat" if part == "ffn" else "spikes" if net_name == "alif" else "pixels"
            if (seed, kind) not in data:
                split = load_digits_sequences(seed=seed, flatten=kind == "flat")
                split = spike_digits(split) if kind == "spikes" else split
                data[(seed, kind)] = split.to(device)
            if part == "rnn":
                done.append((i, _rnn_config(s, data[(seed, kind)], seed, net_name, depth,
                                            progress, log)))
            else:
                done.append((i, _ffn_config(s, data[(seed, kind)], seed, net_name, progress,
                                            log)))
        gathered = ctx.gather(done)
        seconds = ctx.sum(time.perf_counter() - t_start)
    if gathered is None:
        return None  # a rank other than 0: rank 0 reports
    runs = [rec for recs in gathered for rec in recs]
    table = summary_table(runs)
    print(f"\ntest accuracy (mean +- SD over seeds; {seconds:.0f} s"
          + (" summed over processes" if ctx.world > 1 else "") + ")")
    csv_path = args.out / "lsc_digits.csv" if args.out is not None else None
    write_table(table, csv_path)
    if args.out is not None:
        (args.out / "lsc_digits.md").write_text(markdown_table(table) + "\n")
    plot_path = args.plot or (args.out / "lsc_digits.png" if args.out is not None else None)
    if plot_path is not None:
        plot_table(table, plot_path)
    return {"task": "digits", "sizes": s, "table": table,
            "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs]}


def summary_table(runs: list[dict]) -> list[dict]:
    """Rows ``part, cell, depth, init, n, mean, sd`` of the best-validation test accuracy."""
    groups: dict[tuple, list[float]] = {}
    for r in runs:
        groups.setdefault((r["part"], r["cell"], r["depth"], r["init"]), []).append(r["test_acc"])
    rows = []
    for (part, cell, depth, init), accs in groups.items():
        mean, sd = _stats(accs)
        rows.append({"part": part, "net": cell, "depth": depth, "init": init, "n": len(accs),
                     "test_acc_mean": mean, "test_acc_sd": sd})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The summary as a markdown table (accuracy in %)."""
    lines = ["| part | net | depth | init | seeds | test accuracy (%) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['net']} | {r['depth']} | {r['init']} | {r['n']} | "
                     f"{100 * r['test_acc_mean']:.1f} +- {100 * r['test_acc_sd']:.1f} |")
    return "\n".join(lines)


def plot_table(rows: list[dict], path: Path) -> None:
    """Bar chart: one group per network, one bar per init, error bars = SD over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("rnn", "ffn") if any(r["part"] == p for r in rows)]
    groups = {p: len({(r["net"], r["depth"]) for r in rows if r["part"] == p}) for p in parts}
    widths = [max(5.5, 1.3 * groups[p]) for p in parts]
    fig, axes = plt.subplots(1, len(parts), figsize=(sum(widths), 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, part in zip(axes[0], parts):
        sub = [r for r in rows if r["part"] == part]
        nets = list(dict.fromkeys((r["net"], r["depth"]) for r in sub))
        inits = list(dict.fromkeys(r["init"] for r in sub))
        w = 0.8 / len(inits)
        for j, init in enumerate(inits):
            xs, ms, sds = [], [], []
            for i, key in enumerate(nets):
                for r in sub:
                    if (r["net"], r["depth"]) == key and r["init"] == init:
                        xs.append(i + (j - (len(inits) - 1) / 2) * w)
                        ms.append(100 * r["test_acc_mean"])
                        sds.append(100 * r["test_acc_sd"])
            ax.bar(xs, ms, w, yerr=sds, capsize=2, label=init)
        ax.set_xticks(range(len(nets)), [f"{n} x{d}" for n, d in nets])
        ax.set_ylabel("test accuracy (%)")
        spiking = any(n == "alif" for n, _ in nets)
        ax.set_title(("recurrent (64 pixel steps" + ("; alif: threshold-crossing spikes"
                                                    if spiking else "") + ")")
                     if part == "rnn" else "feed-forward")
        ax.legend(fontsize=7)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    parts = [f"{r['net'].upper()} x{r['depth']} {r['init']} {100 * r['test_acc_mean']:.0f}%"
             for r in result["table"] if r["part"] == "rnn"]
    s = result["sizes"]
    return (f"digits test accuracy after {s['epochs']} epochs (width {s['hidden']}): "
            + ", ".join(parts) + ".")
