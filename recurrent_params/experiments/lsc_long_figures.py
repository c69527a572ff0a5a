"""Figures and the LSC-outcome table of ``lsc --task smnist|fashion`` (issue 19), read from the
sweep's records (one dict per finished run, as ``lsc_long_runs.jsonl`` holds them).

* :func:`plot_gradient_grid`: per network, $\\log_{10}\\mathbb E_b\\lVert\\partial L_b/\\partial
  s^l_t\\rVert$ against $t$ at the start of training, for the lowest and the top layer and
  every initialisation: how much of the loss's gradient reaches the first steps and the
  lower layers of the depth-time grid (the quantity LSC's targets are meant to keep from
  vanishing or exploding).
* :func:`plot_traces`: the runs that recorded a ``trace`` (``--trace-every``): validation
  accuracy and loss, that gradient norm at $t = 0$ of the lowest layer, and the mean time
  radius and mean depth radius (layers 1 and up), against the optimiser step, one line per
  seed.
* :func:`lsc_outcome_table`: per (network, init), how the pre-training ended: steps,
  converged seeds, and each transition that did not reach its target with the reason.
* :func:`compact_table`: the main table narrowed for a web page: means over layers of the
  radii, and the gradient at $t = 0$ of the lowest and the top layer only (the per-layer
  numbers stay in ``lsc_long.md`` / ``.csv``).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from recurrent_params.experiments.lsc_long import group_runs, mean_sd_text

__all__ = ["INIT_COLORS", "plot_gradient_grid", "plot_traces", "lsc_outcome_table",
           "compact_table", "mean_radius"]

#: one colour per initialisation, shared by every figure
INIT_COLORS = {"default": "tab:gray", "keras": "tab:blue", "lsc-1.0": "tab:orange",
               "lsc-0.5": "tab:green"}


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 else -math.inf


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if len(finite) == len(values) and finite else -math.inf


def _layers(norms: dict) -> list[str]:
    return sorted((k for k in norms if k.startswith("layer")), key=lambda k: int(k[5:]))


def plot_gradient_grid(runs: list[dict], path: Path, key: str = "grad_norms_start") -> None:
    """One panel per (cell, depth): log10 of the state-gradient norm (mean of the log over
    seeds) against the probe time, lowest layer solid, top layer dashed, per init."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recurrent_params.experiments._output import save_figure

    groups = group_runs(runs)
    cells = list(dict.fromkeys(c for c, _, _ in groups))
    depths = sorted({d for _, d, _ in groups})
    if not cells:
        return
    fig, axes = plt.subplots(len(cells), len(depths), figsize=(4.2 * len(depths),
                                                                 3.0 * len(cells)),
                             squeeze=False)
    for i, cell in enumerate(cells):
        for j, depth in enumerate(depths):
            ax = axes[i][j]
            ax.set_title(f"{cell.upper()} x{depth}", fontsize=9)
            for (c, d, init), rs in groups.items():
                if (c, d) != (cell, depth):
                    continue
                norms = [r[key] for r in rs]
                layers = _layers(norms[0])
                for layer, style in ((layers[0], "-"), (layers[-1], "--")):
                    ys = [_mean([_log10(n[layer][k]) for n in norms])
                          for k in range(len(norms[0]["times"]))]
                    ax.plot(norms[0]["times"], ys, style, marker=".",
                            color=INIT_COLORS.get(init, "black"))
            ax.set_xlabel("time step t", fontsize=8)
            ax.set_ylabel("log10 E|dL/ds_t|", fontsize=8)
    fig.suptitle("state-gradient norm at the start of training (mean of log10 over seeds; "
                 "a point at -inf, e.g. ALIF at t = T-1, is left out)", fontsize=9)
    from matplotlib.lines import Line2D

    inits = [i for i in INIT_COLORS if any(k[2] == i for k in groups)]
    handles = [Line2D([], [], color=INIT_COLORS[i], label=i) for i in inits]
    handles += [Line2D([], [], color="black", ls="-", label="lowest layer"),
                Line2D([], [], color="black", ls="--", label="top layer")]
    axes[-1][-1].legend(handles=handles, fontsize=7, loc="lower right")
    save_figure(fig, path)


def plot_traces(runs: list[dict], path: Path) -> bool:
    """Validation accuracy and loss, log10 gradient norm at $t = 0$ of layer 0, the mean time
    radius and the mean depth radius of layers 1 and up against the optimiser step for every
    run with a ``trace`` (one line per run, colour per init, line style per network when
    there are several). Returns whether there was anything to plot."""
    traced = [r for r in runs if r.get("trace")]
    if not traced:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recurrent_params.experiments._output import save_figure

    fig, grid = plt.subplots(2, 3, figsize=(12, 6.6))
    axes, legend_ax = list(grid.flat[:5]), grid.flat[5]
    nets = sorted({(r["cell"], r["depth"]) for r in traced})
    styles = dict(zip(nets, ("-", "--", ":", "-."), strict=False))  # one per network
    seen = set()
    rank = {init: i for i, init in enumerate(INIT_COLORS)}
    for r in sorted(traced, key=lambda r: (rank.get(r["init"], len(rank)), r["init"], r["seed"])):
        style = dict(color=INIT_COLORS.get(r["init"], "black"),
                     linestyle=styles.get((r["cell"], r["depth"]), "-"))
        label = None if r["init"] in seen else r["init"]
        seen.add(r["init"])
        steps = [0] + [p["step"] for p in r["trace"]]
        g0 = [r["grad_norms_start"]] + [p["grad_norms"] for p in r["trace"]]
        radii = [r["radii_start"]] + [p["radii"] for p in r["trace"]]
        axes[0].plot(steps[1:], [100 * p["val_acc"] for p in r["trace"]], label=label,
                     **style)
        axes[1].plot(steps[1:], [p["val_loss"] for p in r["trace"]], **style)
        axes[2].plot(steps, [_log10(g["layer0"][0]) for g in g0], **style)
        for ax, kind in ((axes[3], "time"), (axes[4], "depth")):
            ax.plot(steps, [mean_radius([{"radii": rd}], "radii", kind, kind == "depth")
                            for rd in radii], **style)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[1].set_ylabel("validation loss")
    axes[2].set_ylabel("log10 E|dL/ds| at t = 0, layer 0")
    axes[3].set_ylabel("mean time radius")
    axes[4].set_ylabel("mean depth radius (layers 1+)")
    for ax in axes:
        ax.set_xlabel("optimiser step")
    legend_ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    if len(nets) > 1:  # the line style tells the networks apart
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="black", linestyle=styles[n]) for n in nets]
        labels += [f"{c.upper()} x{d}" for c, d in nets]
    legend_ax.legend(handles, labels, loc="center", title="init (colour), network (line)"
                     if len(nets) > 1 else "init")
    name = [f"{c.upper()} x{d}" for c, d in nets]
    fig.suptitle(", ".join(name) + f" ({traced[0]['task']}, one line per run)", fontsize=9)
    save_figure(fig, path)
    return True


def lsc_outcome_table(runs: list[dict]) -> str:
    """Markdown: per (network, LSC init), the pre-training steps and seconds of each seed,
    how many seeds converged, and the transitions that did not reach their target: per kind,
    the layers still more than the tolerance away when the steps ran out (in any seed), and
    the time transitions left at their floor, with the floor of each seed."""
    lines = ["| net | depth | init | steps (per seed) | seconds (per seed) | converged | "
             "transitions off target (any seed) |", "|---|---|---|---|---|---|---|"]
    for (cell, depth, init), rs in group_runs(runs).items():
        if not init.startswith("lsc"):
            continue
        tol: dict[str, set[str]] = {}  # kind -> layers still off target at the last step
        floors: dict[str, list[float]] = {}  # transition -> floors it was left at
        other: set[str] = set()
        for r in rs:
            for name, st in (r.get("lsc_status") or {}).items():
                if st.get("reached", True):
                    continue
                layer, _, kind = name.partition(".")
                why = st.get("why", "")
                if st.get("floor") is not None and "floor" in why:
                    floors.setdefault(name, []).append(st["floor"])
                elif "not within tolerance" in why:
                    tol.setdefault(kind or name, set()).add(layer[5:] if kind else name)
                else:
                    other.add(f"{name}: {why or 'not reached'}")
        parts = [f"{kind} off target in layer(s) {', '.join(sorted(ls))}"
                 for kind, ls in sorted(tol.items())]
        if floors:
            parts.append("time at its floor: " + ", ".join(
                f"layer {n.split('.')[0][5:]} ({'/'.join(f'{f:.3g}' for f in fs)})"
                for n, fs in sorted(floors.items())))
        parts += sorted(other)
        text = "; ".join(parts)
        steps = " ".join(str(r.get("lsc_steps", "-")) for r in rs)
        secs = " ".join(f"{r.get('lsc_seconds', 0.0):.0f}" for r in rs)
        converged = sum(bool(r.get("lsc_converged")) for r in rs)
        lines.append(f"| {cell} | {depth} | {init} | {steps} | {secs} | "
                     f"{converged} / {len(rs)} | {text or 'none'} |")
    return "\n".join(lines)


def mean_radius(rs: list[dict], key: str, kind: str, skip_encoder: bool = False) -> float:
    """The mean of the ``kind`` ("time" or "depth") radii in ``r[key]`` over the layers and
    the records ``rs`` (``skip_encoder``: without layer 0's depth transition, the encoder
    from the input); NaN when there is none."""
    vals = [v for r in rs for k, v in (r.get(key) or {}).items()
            if k.endswith("." + kind) and not (skip_encoder and k.startswith("layer0."))]
    return sum(vals) / len(vals) if vals else math.nan


def compact_table(runs: list[dict]) -> str:
    """Markdown, one row per (cell, depth, init): test accuracy mean +- SD (%), best epoch
    (counted from 1) / epochs run per seed, the mean time radius and the mean depth radius of
    the layers above the first (layer 0's depth transition is the encoder from the input) at
    the start -> end of training, and log10 of the gradient norm at $t = 0$ of the lowest
    and the top layer at the start -> end (mean of the log over seeds)."""
    lines = ["| net | init | test acc. (%) | best / run epochs | time radius | depth radius "
             "(layers 1+) | log10 grad t=0, lowest layer | top layer |",
             "|---|---|---|---|---|---|---|---|"]

    def grad(rs, key, which):
        logs = []
        for r in rs:
            layers = _layers(r[key])
            logs.append(_log10(r[key][layers[0 if which == "low" else -1]][0]))
        return _mean(logs)

    def arrow(a, b, fmt):
        return f"{a:{fmt}} -> {b:{fmt}}"

    for (cell, depth, init), rs in group_runs(runs).items():
        accs = [100 * r["test_acc"] for r in rs]
        mean, sd = statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0
        epochs = " ".join(f"{r['best_epoch'] + 1}/{r['epochs_run']}" for r in rs)
        time_r = arrow(mean_radius(rs, "radii_start", "time"),
                       mean_radius(rs, "radii_end", "time"), ".2f")
        depth_r = arrow(mean_radius(rs, "radii_start", "depth", True),
                        mean_radius(rs, "radii_end", "depth", True), ".2f")
        low = arrow(grad(rs, "grad_norms_start", "low"), grad(rs, "grad_norms_end", "low"), ".0f")
        top = arrow(grad(rs, "grad_norms_start", "top"), grad(rs, "grad_norms_end", "top"), ".0f")
        lines.append(f"| {cell.upper()} x{depth} | {init} | {mean_sd_text(mean, sd, len(accs))} | "
                     f"{epochs} | "
                     f"{time_r} | {depth_r} | {low} | {top} |")
    return "\n".join(lines)
