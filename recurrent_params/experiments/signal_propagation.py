"""``recurrent-params signal-propagation``: the curse of memory in a deep stack at initialisation.

Why this file is above 400 lines: it is one experiment of the command line end to end (its
models at a given nu0, the input sources and their autocorrelation, the table and the figure in
the paper's layout); what other experiments share lives in ``_runs.py``, ``resumable_sweep.py``,
``sweep.py`` and ``_arg_types.py``.

The curse-of-memory paper (arXiv 2405.21064, Section 5) feeds a 4-layer residual stack at
initialisation with real, temporally correlated inputs and follows, per layer, the second
moment of the hidden states and of their derivatives with respect to the recurrent parameters
as the eigenvalue magnitudes approach 1. This module does the same for a complex diagonal RNN
without normalisation, the LRU (exponential parametrization + input normalisation) and a GRU,
on a real stand-in for the authors' BERT embeddings of Wikipedia (which we cannot fetch), on
white noise of the same variance and on an AR(1) input of known correlation.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from diagnostics import autocorrelation, correlated_inputs, correlation_time, signal_propagation
from recurrent_params import LRU, DiagonalRNN, RecurrentStack
from recurrent_params.experiments._output import format_table, save_figure

SUMMARY = ("Signal propagation at initialisation (curse-of-memory paper, Section 5): "
           "per-layer moments of states and their sensitivities in a deep stack.")

HELP = (
    "Signal propagation at initialisation in a deep stack (curse-of-memory paper, arXiv "
    "2405.21064, Section 5). A 4-layer residual stack (encoder, blocks of recurrent layer + "
    "GELU/GLU mixer + skip, no norm by default as the authors' main figure) is fed real, "
    "temporally correlated inputs; for eigenvalue magnitudes nu0 from 0.5 to 0.999 it measures "
    "per layer E|h_t|^2 and the second moment of dh_t/dtheta for the recurrent parameters: a "
    "complex diagonal RNN without normalisation (d/dlam), the LRU (ExpMag + gamma; d/dnu, "
    "d/dtheta_log) and a GRU (update-gate bias logit(nu0), so its retention sigmoid(b) = nu0; "
    "d/dW_hh). Inputs: fashion-mnist / mnist pixel streams or Brown tokens through a fixed "
    "random embedding (real data: fetch it with `python -m recurrent_params.data.fetch`), white "
    "noise and AR(1) of the same variance; each input's autocorrelation and integrated "
    "correlation time are reported. --quick runs white noise + AR(1) only, in seconds."
)

SOURCES = ("fashion-mnist", "mnist", "brown", "white", "ar1")
REAL_SOURCES = ("fashion-mnist", "mnist", "brown")
MODELS = ("crnn", "lru", "gru")
NORMS = ("none", "layer", "rms")
DEFAULT_SOURCES = ("fashion-mnist", "brown", "white", "ar1")
QUICK_SOURCES = ("white", "ar1")
DEFAULT_NU0 = (0.5, 0.9, 0.97, 0.99, 0.997, 0.999)
QUICK_NU0 = (0.5, 0.9, 0.99)
ACF_LAGS = (1, 2, 5, 10, 28, 100)
# derivative label of each model (the first is the "magnitude" one, drawn solid)
LABELS = {"crnn": ("lam",), "lru": ("nu", "theta_log"), "gru": ("weight_hh",)}
COLUMN = {"lam": "E|dh/dlam|^2", "nu": "E|dh/dnu|^2", "theta_log": "E|dh/dtheta_log|^2",
          "weight_hh": "E|dh/dW_hh|^2"}
TITLES = {"crnn": "complex diagonal RNN (no gamma)", "lru": "LRU (ExpMag + gamma)",
          "gru": "GRU (z bias = logit nu0)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the signal-propagation experiment."""
    parser.add_argument("--inputs", nargs="+", default=None, metavar="SOURCE",
                        help=f"input sources among {', '.join(SOURCES)} (default "
                        f"{' '.join(DEFAULT_SOURCES)}; --quick: {' '.join(QUICK_SOURCES)}); the "
                        "first is the main figure")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help=f"among {', '.join(MODELS)} (default all)")
    parser.add_argument("--nu0", type=float, nargs="+", default=None,
                        help="initial eigenvalue magnitudes in (0, 1) (default "
                        f"{' '.join(map(str, DEFAULT_NU0))}; --quick "
                        f"{' '.join(map(str, QUICK_NU0))})")
    parser.add_argument("--depth", type=int, default=4, help="number of residual blocks")
    parser.add_argument("--d-model", type=int, default=None,
                        help="width of the residual stream and of the GRU (default 128, "
                        "--quick 16)")
    parser.add_argument("--d-state", type=int, default=None,
                        help="eigenvalues per diagonal layer (default: d-model)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences (default 16, --quick 8)")
    parser.add_argument("--length", type=int, default=None,
                        help="time steps per sequence (default 1024, --quick 128)")
    parser.add_argument("--features", type=int, default=None,
                        help="input features of white / ar1 / brown (default 64, --quick 8); "
                        "pixel streams have 1")
    parser.add_argument("--rho", type=float, default=0.9,
                        help="lag-one correlation of the ar1 source, in (-1, 1)")
    parser.add_argument("--norm", default="none",
                        help=f"norm of every block, one of {', '.join(NORMS)} (none: the "
                        "authors' main figure; layer: their normalisation ablation)")
    parser.add_argument("--probes", type=int, default=2,
                        help="Rademacher tangents for the GRU's dense W_hh (diagonal layers "
                        "are exact with one)")
    parser.add_argument("--burn-in", type=int, default=0,
                        help="time steps left out of the averages (default 0: the whole "
                        "sequence, as a loss sees it)")
    parser.add_argument("--max-lag", type=int, default=256,
                        help="largest lag of the input autocorrelation and correlation time")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder holding the real data set (default: the data cache that "
                        "`python -m recurrent_params.data.fetch` fills)")


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be a positive integer, got {value}")
    return value


def _check(args: argparse.Namespace) -> dict:
    """Validated settings, with the --quick defaults filled in."""
    quick = args.quick
    sources = tuple(args.inputs or (QUICK_SOURCES if quick else DEFAULT_SOURCES))
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ValueError(f"--inputs must be among {', '.join(SOURCES)}, got {' '.join(bad)}")
    models = tuple(args.models or MODELS)
    bad = [m for m in models if m not in MODELS]
    if bad:
        raise ValueError(f"--models must be among {', '.join(MODELS)}, got {' '.join(bad)}")
    nu0 = tuple(sorted(args.nu0 or (QUICK_NU0 if quick else DEFAULT_NU0)))
    if any(not 0 < v < 1 or math.isnan(v) for v in nu0):
        raise ValueError(f"--nu0 must lie in (0, 1), got {' '.join(map(str, nu0))}")
    if not -1 < args.rho < 1:
        raise ValueError(f"--rho must lie in (-1, 1), got {args.rho}")
    if args.norm not in NORMS:
        raise ValueError(f"--norm must be one of {', '.join(NORMS)}, got {args.norm!r}")
    def pick(value, quick_default, default):
        return value if value is not None else (quick_default if quick else default)

    cfg = {
        "sources": sources, "models": models, "nu0": nu0, "norm": args.norm, "rho": args.rho,
        "depth": _positive("depth", args.depth),
        "d_model": _positive("d-model", pick(args.d_model, 16, 128)),
        "batch_size": _positive("batch-size", pick(args.batch_size, 8, 16)),
        "length": _positive("length", pick(args.length, 128, 1024)),
        "features": _positive("features", pick(args.features, 8, 64)),
        "probes": _positive("probes", args.probes),
    }
    cfg["d_state"] = _positive("d-state", pick(args.d_state, cfg["d_model"], cfg["d_model"]))
    if cfg["length"] < 2:
        raise ValueError(f"--length must be at least 2, got {cfg['length']}")
    if not 0 <= args.burn_in < cfg["length"]:
        raise ValueError(f"--burn-in must lie in [0, length) = [0, {cfg['length']}), got "
                         f"{args.burn_in}")
    cfg["burn_in"] = args.burn_in
    cfg["max_lag"] = min(_positive("max-lag", args.max_lag), cfg["length"] - 1)
    return cfg


# ----------------------------------------------------------------------------- inputs


def _windows(stream: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """``batch`` windows of ``length`` steps at evenly spaced offsets of a long stream."""
    if stream.shape[0] < length:
        raise ValueError(f"the data stream has {stream.shape[0]} steps, fewer than --length "
                         f"{length}")
    starts = torch.linspace(0, stream.shape[0] - length, batch).long().tolist()
    return torch.stack([stream[s:s + length] for s in starts])  # (B, L, ...)


def make_inputs(source: str, *, batch: int, length: int, features: int, rho: float,
                seed: int, root: Path | None = None) -> torch.Tensor:
    r"""A batch ``(batch, length, F)`` of one input source, z-scored per feature.

    * ``"white"``: i.i.d. $N(0, 1)$, ``features`` channels.
    * ``"ar1"``: $x_t = \rho x_{t-1} + \sqrt{1-\rho^2}\epsilon_t$ (autocorrelation
      $\rho^{|d|}$), ``features`` channels.
    * ``"brown"``: the Brown corpus' training token stream (10k words + ``<unk>``, ``<eos>``)
      through a fixed random embedding $E \in \mathbb{R}^{V \times F}$, $E_{wf} \sim N(0, 1)$
      (seeded), ``batch`` windows at evenly spaced offsets (every genre).
    * ``"fashion-mnist"`` / ``"mnist"``: the test images' pixels (row-major) read as one
      stream, ``batch`` windows at evenly spaced offsets (a window spans several images when
      ``length > 784``), one channel.

    Every source is then z-scored per feature over the batch and time, so all have the
    variance of the white noise and differ only in their temporal correlation.

    Raises:
        RuntimeError: a real data set is missing (the message names the fetch command).
    """
    gen = torch.Generator().manual_seed(seed)
    if source == "white":
        x = torch.randn(batch, length, features, generator=gen)
    elif source == "ar1":
        x = correlated_inputs(batch, length, features, rho, generator=gen)
    else:
        from recurrent_params.data import (
            DataNotFoundError,
            load_brown,
            load_sequential_fashion_mnist,
            load_sequential_mnist,
        )

        try:
            if source == "brown":
                corpus = load_brown(root=root)
                table = torch.randn(len(corpus.vocab), features, generator=gen)  # (V, F)
                x = table[_windows(corpus.train, batch, length)]  # (B, L, F)
            else:
                load = load_sequential_mnist if source == "mnist" else \
                    load_sequential_fashion_mnist
                pixels = load("test", root=root).inputs.reshape(-1, 1)  # (N * 784, 1)
                x = _windows(pixels, batch, length)  # (B, L, 1)
        except DataNotFoundError as exc:
            raise RuntimeError(f"--inputs {source}: {exc}") from None
    x = x.to(torch.get_default_dtype())
    return (x - x.mean((0, 1))) / x.std((0, 1)).clamp_min(1e-12)


# ----------------------------------------------------------------------------- models


class _GRULayer(nn.Module):
    """One ``nn.GRU`` layer with the cells' ``forward`` / ``step`` convention, so that it fits
    in a :class:`~recurrent_params.ResidualBlock`; the update-gate bias is ``logit(nu0)``."""

    def __init__(self, d_model: int, nu0: float):
        super().__init__()
        self.d_input = self.d_output = d_model
        self.gru = nn.GRU(d_model, d_model, batch_first=True)
        with torch.no_grad():  # torch's gate order: reset, update (z), new
            self.gru.bias_ih_l0[d_model:2 * d_model] = math.log(nu0 / (1 - nu0))
            self.gru.bias_hh_l0[d_model:2 * d_model] = 0.0

    def initial_state(self, batch_size: int) -> torch.Tensor:
        w = self.gru.weight_hh_l0
        return torch.zeros(batch_size, self.d_output, dtype=w.dtype, device=w.device)

    def forward(self, x, state=None):
        y, h = self.gru(x, None if state is None else state.unsqueeze(0))
        return y, h[0]

    def step(self, x_t, state=None):
        y, h = self.gru(x_t.unsqueeze(1), None if state is None else state.unsqueeze(0))
        return y[:, 0], h[0]


def build_model(kind: str, nu0: float, *, depth: int, d_model: int, d_state: int,
                d_input: int, norm: str = "none") -> RecurrentStack:
    """The stack at initialisation: a ``RecurrentStack`` of ``depth`` blocks around ``kind``.

    * ``"crnn"``: ``DiagonalRNN(d, N, d)``, complex, plain ``lam``, no input normalisation;
    * ``"lru"``: ``LRU(d, N)`` (``ExpMag(phase="exp")`` and the learned $\\gamma$);
    * ``"gru"``: one ``nn.GRU(d, d)`` layer per block, torch's initialisation except the
      update-gate bias $b_z = \\mathrm{logit}(\\nu_0)$.

    Every eigenvalue starts at $|\\lambda| = \\nu_0$ (phases uniform in $[0, 2\\pi)$).
    ``norm="none"`` replaces the blocks' pre-norms (and the final norm) by identities: the
    authors' main figure has no normalisation; ``"layer"`` / ``"rms"`` keep them.
    """
    if kind == "crnn":
        def make(d):
            return DiagonalRNN(d, d_state, d, complex=True, r_min=nu0, r_max=nu0)
    elif kind == "lru":
        def make(d):
            return LRU(d, d_state, r_min=nu0, r_max=nu0)
    elif kind == "gru":
        def make(d):
            return _GRULayer(d, nu0)
    else:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {kind!r}")
    stack = RecurrentStack.of(make, depth=depth, d_model=d_model, d_input=d_input, d_output=1,
                              norm="layer" if norm == "none" else norm)
    if norm == "none":
        for block in stack.blocks:
            block.norm = nn.Identity()
        stack.norm = nn.Identity()
    return stack


# ----------------------------------------------------------------------------- run


def _acf_summary(x: torch.Tensor, max_lag: int) -> dict:
    acf = autocorrelation(x, max_lag)
    tau = correlation_time(acf)
    out = {f"rho({d})": float(acf[d]) for d in ACF_LAGS if d <= max_lag}
    out.update({"tau": tau, "window": max_lag, "rho_eq": (tau - 1) / (tau + 1),
                "acf": acf.tolist()})
    return out


def run(args: argparse.Namespace) -> dict:
    """Measure every (source, model, nu0), print the tables, plot; return the numbers."""
    cfg = _check(args)
    device = args.device
    root = getattr(args, "data_root", None)
    start = time.perf_counter()
    rows: list[dict] = []
    acfs: dict[str, dict] = {}
    for source in cfg["sources"]:
        x = make_inputs(source, batch=cfg["batch_size"], length=cfg["length"],
                        features=cfg["features"], rho=cfg["rho"], seed=args.seed,
                        root=root).to(device)
        acfs[source] = _acf_summary(x.cpu(), cfg["max_lag"])
        for kind in cfg["models"]:
            for nu0 in cfg["nu0"]:
                torch.manual_seed(args.seed)  # same weights for every nu0 and source
                model = build_model(kind, nu0, depth=cfg["depth"], d_model=cfg["d_model"],
                                    d_state=cfg["d_state"], d_input=x.shape[-1],
                                    norm=cfg["norm"]).to(device)
                gen = torch.Generator().manual_seed(args.seed)
                report = signal_propagation(model, x, burn_in=cfg["burn_in"],
                                            probes=cfg["probes"], generator=gen)
                for layer in range(cfg["depth"]):
                    row = {"source": source, "model": kind, "nu0": nu0, "layer": layer + 1,
                           "E|x|^2": report.input_second_moment[layer],
                           "E|h|^2": report.second_moment[layer]}
                    for label, column in COLUMN.items():
                        row[column] = report.sensitivity[layer].get(label)
                    rows.append(row)
    seconds = time.perf_counter() - start
    _print(rows, acfs, cfg, seconds)
    if args.out is not None:
        _write_csv(rows, args.out / "signal_propagation.csv")
    figures = []
    plot_path = args.plot or (args.out / f"signal_propagation_{cfg['sources'][0]}.png"
                              if args.out else None)
    if plot_path is not None:
        _plot(rows, cfg, cfg["sources"][0], acfs[cfg["sources"][0]], plot_path)
        figures.append(str(plot_path))
        if args.out is not None:
            for source in cfg["sources"][1:]:
                path = args.out / f"signal_propagation_{source}.png"
                _plot(rows, cfg, source, acfs[source], path)
                figures.append(str(path))
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return {"config": config, "seconds": seconds, "autocorrelation": acfs, "rows": rows,
            "figures": figures}


def _write_csv(rows: list[dict], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _print(rows: list[dict], acfs: dict, cfg: dict, seconds: float) -> None:
    print(f"Signal propagation at initialisation: {cfg['depth']} residual blocks "
          f"(norm {cfg['norm']}), d_model {cfg['d_model']}, {cfg['d_state']} eigenvalues, "
          f"{cfg['batch_size']} sequences of {cfg['length']} steps (burn-in {cfg['burn_in']})")
    acf_rows = [{"source": s, **{k: v for k, v in a.items() if k != "acf"}}
                for s, a in acfs.items()]
    print("\nInput autocorrelation (z-scored; tau = 1 + 2 sum_d rho(d) up to the window; rho_eq:"
          " the AR(1) with the same tau)")
    print(format_table(acf_rows))
    for source in cfg["sources"]:
        print(f"\n{source}: per-layer second moments (layer 1 = bottom)")
        table = []
        for kind in cfg["models"]:
            for nu0 in cfg["nu0"]:
                sel = [r for r in rows if r["source"] == source and r["model"] == kind
                       and r["nu0"] == nu0]
                for column in ("E|h|^2",) + tuple(COLUMN[k] for k in LABELS[kind]):
                    entry = {"model": kind, "nu0": nu0, "quantity": column}
                    entry.update({f"L{r['layer']}": r[column] for r in sel})
                    table.append(entry)
        print(format_table(table))
    print(f"\nMeasured in {seconds:.1f} s.")


def _plot(rows: list[dict], cfg: dict, source: str, acf: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = cfg["models"]
    nu0 = list(cfg["nu0"])
    memory = [1 / (1 - v) for v in nu0]
    fig, axes = plt.subplots(2, len(models), figsize=(3.6 * len(models), 6.4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    depth = cfg["depth"]
    for j, kind in enumerate(models):
        for layer in range(1, depth + 1):
            color = cmap(0.85 * (layer - 1) / max(depth - 1, 1))
            sel = [r for r in rows if r["source"] == source and r["model"] == kind
                   and r["layer"] == layer]
            sel.sort(key=lambda r: r["nu0"])
            axes[0, j].loglog(memory, [r["E|h|^2"] for r in sel], "o-", color=color,
                              ms=3, label=f"layer {layer}")
            for k, label in enumerate(LABELS[kind]):
                column = COLUMN[label]
                name = label
                axes[1, j].loglog(memory, [r[column] for r in sel], "o-" if k == 0 else "s--",
                                  color=color, ms=3,
                                  label=f"{name}, layer {layer}" if layer in (1, depth) else None)
        axes[0, j].set_title(TITLES[kind], fontsize=10)
        axes[0, j].set_ylabel("E|h_t|^2")
        axes[1, j].set_ylabel("E|dh_t/dtheta|^2 (per parameter)")
        for ax in axes[:, j]:
            ax.set_xticks(memory)
            ax.set_xticklabels([f"{v:g}" for v in nu0], fontsize=7)
            ax.minorticks_off()
            ax.set_xlabel("nu0 = |lambda| at init (log of 1/(1-nu0))")
            ax.grid(alpha=0.3)
        axes[0, j].legend(fontsize=7)
        axes[1, j].legend(fontsize=7)
    fig.suptitle(f"Signal propagation at init, {depth} residual blocks (norm {cfg['norm']}); "
                 f"inputs: {source} (tau = {acf['tau']:.3g} over {acf['window']} lags)",
                 fontsize=10)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for a summary: the top layer's growth from the first to the last nu0."""
    rows, cfg = result["rows"], result["config"]
    src, top = cfg["sources"][0], cfg["depth"]
    lo, hi = cfg["nu0"][0], cfg["nu0"][-1]
    parts = []
    for kind in cfg["models"]:
        sel = {r["nu0"]: r for r in rows if r["source"] == src and r["model"] == kind
               and r["layer"] == top}
        parts.append(f"{kind} {sel[hi]['E|h|^2'] / sel[lo]['E|h|^2']:.3g}x")
    return (f"top-layer E|h|^2 from nu0 = {lo} to {hi} on {src}: " + ", ".join(parts))
