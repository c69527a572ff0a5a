"""``recurrent-params lsc --task brown``: word-level language modelling with LSC, on the Brown
corpus **as a stand-in for Penn Treebank** (PTB is not shipped by any package registry).

Why this file is above 400 lines: it is one experiment of the command line end to end (the
corpus windows, the LSTM and LRU language models, LSC on token windows, truncated-BPTT training
and perplexity); what other experiments share lives in ``_runs.py``, ``resumable_sweep.py``,
``sweep.py`` and ``_arg_types.py``.

The corpus is :func:`recurrent_params.data.load_brown` (400 / 50 / 50 files, the 10,000 most
frequent training words plus ``<unk>`` and ``<eos>``), batchified and read by truncated
backpropagation through time (:func:`~recurrent_params.data.batchify`,
:func:`~recurrent_params.data.bptt_batches`; the state is carried across windows and
detached). Networks (``--nets``, ``<kind><depth>``):

* ``lstm2``: :class:`~recurrent_params.TorchRNNStack` (an embedding, ``nn.LSTM`` of depth 2,
  a final layer norm, a per-step linear head), width 1,300 at ``--preset full`` as in the paper,
  reduced on the CPU (the preset says how much);
* ``lru3``, ``lru6``: :class:`~recurrent_params.RecurrentStack` of
  :class:`~recurrent_params.LRU` residual blocks (GLU mixer, layer norm), depth 3 and 6.

Initialisations (``--inits``): torch's / the package's default, and the default network
pre-trained with :class:`optim.LSCPretrainer` to target radius 1.0 and 0.5 (the LSTM's
``nn.LSTM`` on embedded training windows; an LRU stack as a whole on token windows, where the
installed pre-trainer supports ``RecurrentStack``: otherwise those runs are skipped with a
message). Training: AdaBelief (eps 1e-14, rectified) inside Lookahead(6, 0.5), lr 3.16e-4
(the paper's PTB rate), gradient norm clipped at 5 (ours, Zaremba et al.'s), dropout 0.3,
early stopping on the validation perplexity with patience 10. Reported: validation and test
perplexity at the best epoch, mean +- SD over seeds, the radii before and after training.

Resumable like :mod:`~recurrent_params.experiments.lsc_long` (``lsc_brown_runs.jsonl``,
per-epoch checkpoints).

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075. Zaremba, Sutskever & Vinyals, "Recurrent neural network regularization",
    arXiv 1409.2329. Orvieto et al., "Resurrecting recurrent neural networks for long
    sequences", arXiv 2303.06349.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
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
from recurrent_params.experiments.lsc_long import make_optimizer

__all__ = ["PRESETS", "BROWN_INITS", "net_name", "build_lm", "standin_corpus", "lru_lsc_support",
           "sizes_for", "train_run", "run_brown", "measure", "summary_table", "markdown_table",
           "summarize"]

BROWN_INITS = ("default", "keras", "lsc-1.0", "lsc-0.5")
_RECORDS = "lsc_brown_runs"
_NET = re.compile(r"(lstm|lru)([1-9][0-9]*)")

#: Sizes of each preset. ``width``: the LSTM's hidden size (and embedding); ``lru_width`` /
#: ``lru_state``: the LRU stacks' ``d_model`` and complex states; ``train_tokens`` /
#: ``eval_tokens``: a prefix of each split's stream (``None``: all of it).
PRESETS: dict[str, dict] = {
    "quick": dict(nets=["lstm2", "lru3"], inits=["default", "lsc-1.0", "lsc-0.5"], width=16,
                  lru_width=16, lru_state=16, seeds=1, epochs=2, patience=10, batch=4, bptt=16,
                  lr=3e-3, dropout=0.3, clip=5.0, train_tokens=2000, eval_tokens=600,
                  pretrain_steps=3, pretrain_batch=4),
    "cpu": dict(nets=["lstm2", "lru3", "lru6"], inits=["default", "lsc-1.0", "lsc-0.5"],
                width=256, lru_width=128, lru_state=128, seeds=2, epochs=2, patience=10,
                batch=32, bptt=35, lr=1e-3, dropout=0.3, clip=5.0, train_tokens=240_000,
                eval_tokens=40_000, pretrain_steps=30, pretrain_batch=32),
    "full": dict(nets=["lstm2", "lru3", "lru6"], inits=["default", "lsc-1.0", "lsc-0.5"],
                 width=1300, lru_width=512, lru_state=512, seeds=4, epochs=100, patience=10,
                 batch=32, bptt=35, lr=3.16e-4, dropout=0.3, clip=5.0, train_tokens=None,
                 eval_tokens=None, pretrain_steps=200, pretrain_batch=32),
}


def net_name(text: str) -> str:
    """Parse ``<kind><depth>`` (``lstm2``, ``lru6``): an ``argparse`` type."""
    if not _NET.fullmatch(str(text)):
        raise argparse.ArgumentTypeError(f"expected lstm<depth> or lru<depth> (e.g. lstm2, "
                                         f"lru6), got {text!r}")
    return str(text)


def build_lm(net: str, s: dict, vocab_size: int) -> nn.Module:
    """The language model ``net`` (``lstm<depth>`` or ``lru<depth>``) at the sizes ``s``."""
    from recurrent_params import LRU
    from recurrent_params.deep import RecurrentStack, TorchRNNStack

    m = _NET.fullmatch(net)
    if m is None:
        raise ValueError(f"net must be lstm<depth> or lru<depth>, got {net!r}")
    kind, depth = m.group(1), int(m.group(2))
    if kind == "lstm":
        return TorchRNNStack("lstm", depth=depth, d_model=s["width"], vocab_size=vocab_size,
                             task="lm", dropout=s["dropout"])
    n = s["lru_state"]
    return RecurrentStack.of(lambda d: LRU(d, n), depth=depth, d_model=s["lru_width"],
                             vocab_size=vocab_size, task="lm", dropout=s["dropout"])


def standin_corpus(n_train: int = 6000, n_eval: int = 1500, seed: int = 0):
    """A generated stand-in corpus (NOT Brown): sentences of a tiny grammar
    (``det adj* noun verb det noun .``) over 40 words, as a
    :class:`~recurrent_params.data.BrownCorpus` whose streams hold about ``n_train`` /
    ``n_eval`` / ``n_eval`` tokens. Used only by ``--quick`` when the corpus is missing."""
    from recurrent_params.data import BrownCorpus, Vocabulary

    g = torch.Generator().manual_seed(seed)
    words = {"det": ["the", "a", "every", "no"],
             "adj": [f"adj{i}" for i in range(8)], "noun": [f"noun{i}" for i in range(14)],
             "verb": [f"verb{i}" for i in range(12)]}

    def pick(kind):
        w = words[kind]
        return w[int(torch.randint(len(w), (1,), generator=g))]

    def sentences(n_tokens):
        out, count = [], 0
        while count < n_tokens:
            s = [pick("det")] + [pick("adj") for _ in range(int(torch.randint(3, (1,),
                                                                             generator=g)))]
            s += [pick("noun"), pick("verb"), pick("det"), pick("noun"), "."]
            out.append(s)
            count += len(s) + 1
        return out

    split = {"train": sentences(n_train), "valid": sentences(n_eval), "test": sentences(n_eval)}
    vocab = Vocabulary.build(split["train"])
    streams = {k: torch.cat([vocab.encode(s, eos=True) for s in v]) for k, v in split.items()}
    return BrownCorpus(streams["train"], streams["valid"], streams["test"], vocab)


_SUPPORT: dict[str, str | None] = {}


def lru_lsc_support() -> str | None:
    """``None`` when :class:`optim.LSCPretrainer` can pre-train a ``RecurrentStack`` of LRU
    blocks on token inputs, else the reason (the error it raised on a tiny stack)."""
    if "lru" not in _SUPPORT:
        from optim import LSCPretrainer

        with torch.random.fork_rng(devices=[]):
            model = build_lm("lru2", dict(lru_width=4, lru_state=4, dropout=0.0), 7)
            try:
                LSCPretrainer(model, data=[torch.randint(0, 7, (2, 5))], max_steps=1,
                              progress=False, process_group="local").run()
                _SUPPORT["lru"] = None
            except (TypeError, ValueError, NotImplementedError, AttributeError) as exc:
                _SUPPORT["lru"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return _SUPPORT["lru"]


def _detach(state):
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_detach(v) for v in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(v) for v in state)
    return state


@torch.no_grad()
def _perplexity(model, stream: torch.Tensor, bptt: int, batch: int = 10) -> float:
    from recurrent_params.data import batchify, bptt_batches

    model.eval()
    data = batchify(stream, min(batch, max(1, len(stream) // 2)))
    state, total, count = None, 0.0, 0
    for x, y in bptt_batches(data, bptt):
        logits, state = model(x, state)  # (B, L, V)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return math.exp(min(total / max(1, count), 50.0))


def _lsc_target_module(model: nn.Module) -> nn.Module:
    """What LSC pre-trains: the ``nn.LSTM`` of a TorchRNNStack, or the whole LRU stack."""
    return model.rnn if hasattr(model, "rnn") else model


def _lsc_inputs(model: nn.Module, windows: list[torch.Tensor]) -> list[torch.Tensor]:
    if hasattr(model, "rnn"):
        with torch.no_grad():
            return [model.encoder(w) for w in windows]  # (B, L, d) embeddings
    return windows


def _radii(model, window: torch.Tensor, seed: int) -> dict[str, float]:
    from diagnostics import transition_radii

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return transition_radii(_lsc_target_module(model), _lsc_inputs(model, [window])[0],
                                    generator=torch.Generator().manual_seed(seed),
                                    process_group="local")
    except (TypeError, ValueError, NotImplementedError) as exc:
        return {"unavailable": str(exc).splitlines()[0]}
    finally:
        model.train(was)


def _on_epoch_end(key: str, epoch: int) -> None:
    """Called after each checkpoint is written (tests interrupt runs here)."""


def train_run(item: dict, s: dict, corpus, *, checkpoint: Path | None = None,
              progress: bool = False, device="cpu") -> dict:
    """Initialise, pre-train (LSC inits) and train one (net, init, seed) by truncated BPTT
    with early stopping; resume from ``checkpoint``. Returns the run's record."""
    from optim import LSCPretrainer
    from recurrent_params.data import batchify, bptt_batches
    from recurrent_params.experiments.lsc_digits import keras_like_init_

    net, init, seed = item["net"], item["init"], item["seed"]
    vocab = len(corpus.vocab)
    torch.manual_seed(seed)
    model = build_lm(net, s, vocab).to(device)
    opt = make_optimizer(model.parameters(), s["lr"])
    gen = torch.Generator().manual_seed(seed + 99)
    train = (corpus.train[:s["train_tokens"]] if s["train_tokens"] else corpus.train).to(device)
    valid = (corpus.valid[:s["eval_tokens"]] if s["eval_tokens"] else corpus.valid).to(device)
    test = (corpus.test[:s["eval_tokens"]] if s["eval_tokens"] else corpus.test).to(device)
    data = batchify(train, s["batch"])
    probe = batchify(valid, min(s["pretrain_batch"], len(valid) // 2))[:, :s["bptt"]]
    ckpt = load_checkpoint(checkpoint)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"], [gen])
        state = ckpt["state"]
    else:
        state = {"epoch": -1, "curve": [], "bad": 0, "train_seconds": 0.0, "diverged": None,
                 "lsc": {}}
        if init == "keras":
            keras_like_init_(model)
        elif init.startswith("lsc-"):
            pre = batchify(train, s["pretrain_batch"])
            windows = [x for x, _ in bptt_batches(pre, s["bptt"])][:s["pretrain_steps"]]
            t0 = time.perf_counter()
            res = LSCPretrainer(_lsc_target_module(model), data=_lsc_inputs(model, windows),
                                target=float(init.split("-")[1]), max_steps=s["pretrain_steps"],
                                seed=seed, progress=progress, process_group="local").run()
            state["lsc"] = {"lsc_converged": res.converged, "lsc_steps": res.steps,
                            "lsc_seconds": time.perf_counter() - t0, "lsc_reason": res.reason,
                            "lsc_radii_before": res.radii_before,
                            "lsc_radii_after": res.radii_after, "lsc_warnings": res.warnings}
        state["radii_start"] = _radii(model, probe, seed)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": model.state_dict(),
                                         "optimizer": opt.state_dict(),
                                         "rng": rng_state([gen]), "state": state})
            _on_epoch_end(item["key"], -1)
    model.train()
    for epoch in range(state["epoch"] + 1, s["epochs"]):
        if state["diverged"] is not None or state["bad"] >= s["patience"]:
            break
        t0, total, count, hidden = time.perf_counter(), 0.0, 0, None
        for step, (x, y) in enumerate(bptt_batches(data, s["bptt"])):
            logits, hidden = model(x, hidden)  # (B, L, V)
            loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            if not torch.isfinite(loss):
                state["diverged"] = {"epoch": epoch, "step": step}
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
            opt.step()
            hidden = _detach(hidden)
            total, count = total + loss.item() * y.numel(), count + y.numel()
        secs = time.perf_counter() - t0
        state["train_seconds"] += secs
        val_ppl = _perplexity(model, valid, s["bptt"])
        test_ppl = _perplexity(model, test, s["bptt"])
        best = min((c["val_ppl"] for c in state["curve"]), default=math.inf)
        state["bad"] = 0 if val_ppl < best else state["bad"] + 1
        state["curve"].append({"epoch": epoch, "train_ppl": math.exp(min(total / max(1, count),
                                                                         50.0)),
                               "val_ppl": val_ppl, "test_ppl": test_ppl, "seconds": secs})
        state["epoch"] = epoch
        if progress:
            print(f"    {item['key']} epoch {epoch + 1}/{s['epochs']}: valid ppl {val_ppl:.1f},"
                  f" test ppl {test_ppl:.1f} ({secs:.0f} s)", flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"model": model.state_dict(),
                                         "optimizer": opt.state_dict(),
                                         "rng": rng_state([gen]), "state": state})
            _on_epoch_end(item["key"], epoch)
    curve = state["curve"]
    best = min(curve, key=lambda c: (c["val_ppl"], c["epoch"])) if curve else None
    return {**{k: item[k] for k in ("key", "net", "init", "seed")}, "signature": s["signature"],
            "params": sum(p.numel() for p in model.parameters()),
            "val_ppl": best["val_ppl"] if best else float("nan"),
            "test_ppl": best["test_ppl"] if best else float("nan"),
            "best_epoch": best["epoch"] if best else -1, "epochs_run": len(curve),
            "diverged": state["diverged"], "train_seconds": state["train_seconds"],
            **state["lsc"], "radii_start": state["radii_start"],
            "radii_end": _radii(model, probe, seed), "curve": curve}


def sizes_for(args) -> dict:
    """The preset's sizes overridden by the options, with the ``signature`` of the records."""
    preset = args.preset or ("quick" if args.quick else "cpu")
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset} is not a preset of --task brown (one of "
                         f"{', '.join(PRESETS)})")
    s = dict(PRESETS[preset], preset=preset)
    over = {"nets": args.nets, "inits": args.inits, "width": args.hidden, "seeds": args.seeds,
            "epochs": args.epochs, "patience": args.patience, "batch": args.train_batch,
            "bptt": args.bptt, "lr": args.lr, "dropout": args.dropout,
            "pretrain_steps": args.pretrain_steps, "pretrain_batch": args.pretrain_batch,
            "train_tokens": args.train_size, "eval_tokens": args.test_size}
    s.update({k: v for k, v in over.items() if v is not None})
    if not s["dropout"] < 1:
        raise ValueError(f"--dropout must be < 1, got {s['dropout']}")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise ValueError(f"--data-root: {args.data_root} is not a folder")
    s["nets"], s["inits"] = list(dict.fromkeys(s["nets"])), list(dict.fromkeys(s["inits"]))
    keyed = {k: v for k, v in s.items() if k not in ("seeds", "nets", "inits", "preset")}
    s["signature"] = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    return s


def _load_corpus(s: dict, data_root: Path | None):
    from recurrent_params.data import DataNotFoundError, load_brown

    try:
        corpus = load_brown(root=data_root)
        return corpus, f"Brown corpus (PTB stand-in), {corpus.folder}"
    except DataNotFoundError as exc:
        if s["preset"] != "quick":
            raise ValueError(str(exc)) from None
        return standin_corpus(), ("generated stand-in corpus (a tiny grammar): the Brown corpus "
                                  "was not found, NOT Brown")


def _quiet(*args, **kwargs) -> None:
    """``print`` of the ranks other than 0 (the header is printed once)."""


def run_brown(args) -> dict | None:
    """``lsc --task brown``: the resumable sweep; rank 0 prints and writes the tables."""
    from recurrent_params.experiments.resumable_sweep import (
        is_main_process,
        run_resumable,
        with_source,
    )

    s = sizes_for(args)
    corpus, source = _load_corpus(s, args.data_root)
    if args.measure:
        return {"task": "brown", "sizes": s, "measure": measure(s, len(corpus.vocab))}
    say = print if is_main_process() else _quiet
    say(f"LSC on word-level language modelling: the Brown corpus standing in for PTB, "
          f"preset {s['preset']}: {s['nets']} x {s['inits']}, LSTM width {s['width']} (the "
          f"paper: 1,300), LRU d_model {s['lru_width']}, batch {s['batch']}, BPTT {s['bptt']}, "
          f"<= {s['epochs']} epochs of {s['train_tokens'] or 'all'} tokens, {s['seeds']} "
          f"seed(s)")
    say(f"  data: {source}; vocabulary {len(corpus.vocab)}")
    s["signature"] = with_source(s["signature"], source)
    work = []
    for seed in range(args.seed, args.seed + s["seeds"]):
        for net in s["nets"]:
            for init in s["inits"]:
                if init == "keras" and not net.startswith("lstm"):
                    continue
                work.append({"key": f"brown/{net}/{init}/seed{seed}", "net": net,
                             "init": init, "seed": seed})
    why = lru_lsc_support() if any(w["net"].startswith("lru") and w["init"].startswith("lsc")
                                   for w in work) else None
    if why is not None:
        skipped = [w["key"] for w in work if w["net"].startswith("lru")
                   and w["init"].startswith("lsc")]
        work = [w for w in work if w["key"] not in skipped]
        say(f"  SKIPPED {len(skipped)} LRU runs with LSC: this version of LSCPretrainer cannot "
              f"pre-train a RecurrentStack ({why})")
    costs = [(int(_NET.fullmatch(w["net"]).group(2))
              * (4 * s["width"] ** 2 if w["net"].startswith("lstm") else 6 * s["lru_width"] ** 2))
             for w in work]

    def run_one(item, ckpt):
        rec = train_run(item, s, corpus, checkpoint=ckpt, progress=not args.no_progress,
                        device=args.device)
        rec["source"] = source
        return rec

    def describe(r):
        return (f"{r['key']}: valid ppl {r['val_ppl']:.1f}, test ppl {r['test_ppl']:.1f} "
                f"(best epoch {r['best_epoch']} of {r['epochs_run']}, "
                f"{r['train_seconds']:.0f} s)" + (", DIVERGED" if r["diverged"] else ""))

    runs, seconds = run_resumable(work, [float(c) for c in costs], args.out, _RECORDS,
                                  s["signature"], run_one, describe)
    if runs is None:
        return None
    table = summary_table(runs)
    print(f"\nperplexity at the best validation epoch, mean +- SD over seeds ({seconds:.0f} s "
          f"this call; Brown corpus as the PTB stand-in)")
    write_table(table, Path(args.out) / "lsc_brown.csv" if args.out is not None else None)
    if args.out is not None:
        (Path(args.out) / "lsc_brown.md").write_text(markdown_table(table) + "\n")
        from recurrent_params.experiments.lsc_brown_figures import plot_perplexities

        plot_perplexities(runs, Path(args.out) / "lsc_brown.png")
    return {"task": "brown", "sizes": s, "source": source, "table": table, "seconds": seconds,
            "skipped_lru_lsc": why, "runs": [{k: v for k, v in r.items() if k != "curve"}
                                             for r in runs]}


def _mean_sd(values):
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def summary_table(runs: list[dict]) -> list[dict]:
    """One row per (net, init): validation and test perplexity mean / SD over seeds, the best
    epochs, the pre-training's steps and converged seeds, and the mean time / depth radius
    (over layers and seeds) at the start and at the end of training."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["net"], r["init"]), []).append(r)
    rows = []
    for (net, init), rs in groups.items():
        vm, vs = _mean_sd([r["val_ppl"] for r in rs])
        tm, ts = _mean_sd([r["test_ppl"] for r in rs])
        rows.append({"net": net, "init": init, "seeds": len(rs), "params": rs[0]["params"],
                     "val_ppl_mean": vm, "val_ppl_sd": vs, "test_ppl_mean": tm,
                     "test_ppl_sd": ts, "best_epochs": " ".join(str(r["best_epoch"] + 1)
                                                                for r in rs),
                     "lsc": (" ".join(str(r["lsc_steps"]) for r in rs) + " steps, "
                             f"{sum(bool(r.get('lsc_converged')) for r in rs)} / {len(rs)} "
                             "converged") if all("lsc_steps" in r for r in rs) else "-",
                     "radii_start": _mean_kinds(rs, "radii_start"),
                     "radii_end": _mean_kinds(rs, "radii_end")})
    return rows


def _mean_kinds(rs: list[dict], key: str) -> str:
    """``time a / depth b``: the mean radius of each kind over the layers and the seeds."""
    from recurrent_params.experiments.lsc_long_figures import mean_radius

    means = {kind: mean_radius(rs, key, kind) for kind in ("time", "depth")}
    return " / ".join(f"{k} {v:.2f}" for k, v in means.items() if not math.isnan(v)) or "-"


def markdown_table(rows: list[dict]) -> str:
    """The summary as a markdown table."""
    lines = ["| net | init | seeds | params | valid ppl | test ppl | best epochs (from 1) | LSC | "
             "mean radii at start of training | at end |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['init']} | {r['seeds']} | {r['params']} | "
                     f"{r['val_ppl_mean']:.1f} +- {r['val_ppl_sd']:.1f} | "
                     f"{r['test_ppl_mean']:.1f} +- {r['test_ppl_sd']:.1f} | {r['best_epochs']} | "
                     f"{r.get('lsc', '-')} | {r.get('radii_start', '-')} | "
                     f"{r.get('radii_end', '-')} |")
    return "\n".join(lines)


def _lm_step(model, opt, x, y, clip: float):
    def step():
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    return step


def measure(s: dict, vocab_size: int, repeats: int = 1) -> dict:
    """Seconds of one training step (a BPTT window of ``batch x bptt`` tokens: forward,
    backward, clipping, optimiser) and of one LSC pre-training step on the same window
    (:func:`~recurrent_params.experiments.lsc_costs.time_lsc_step`), per network, and their
    ratio."""
    from recurrent_params.experiments.lsc_costs import time_lsc_step, time_training_step

    out = {}
    for net in s["nets"]:
        torch.manual_seed(0)
        model = build_lm(net, s, vocab_size)
        opt = make_optimizer(model.parameters(), s["lr"])
        x = torch.randint(0, vocab_size, (s["batch"], s["bptt"]))
        y = torch.randint(0, vocab_size, (s["batch"], s["bptt"]))
        t_step = time_training_step(_lm_step(model, opt, x, y, s["clip"]), repeats)
        t_pre = float("nan")
        if net.startswith("lstm") or lru_lsc_support() is None:
            t_pre = time_lsc_step(_lsc_target_module(model), _lsc_inputs(model, [x])[0])
        out[net] = {"step_s": t_step, "lsc_step_s": t_pre, "ratio": t_pre / t_step}
        print(f"  {net}: training step {t_step:.3f} s, LSC step {t_pre:.3f} s (ratio "
              f"{t_pre / t_step:.2f}); batch {s['batch']} x BPTT {s['bptt']}, vocabulary "
              f"{vocab_size}, {torch.get_num_threads()} thread(s)", flush=True)
    return out


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    parts = [f"{r['net']} {r['init']} test ppl {r['test_ppl_mean']:.0f}" for r in result["table"]]
    data = "generated stand-in" if "stand-in corpus" in result["source"] else \
        "Brown (PTB stand-in)"
    return f"{data}, preset {result['sizes']['preset']}: " + ", ".join(parts) + "."
