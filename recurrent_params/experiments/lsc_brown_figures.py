"""The figure of ``lsc --task brown`` (issue 19): per network, the training and validation
perplexity after each epoch, one line per seed and colour per initialisation, read from the
sweep's records (``lsc_brown_runs.jsonl``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_perplexities"]


def plot_perplexities(runs: list[dict], path: Path) -> None:
    """One panel per network (``lstm2``, ``lru3``, ...): validation perplexity (solid) and
    training perplexity (dashed, the running mean over the epoch's windows) against the
    epoch, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from recurrent_params.experiments._output import save_figure
    from recurrent_params.experiments.lsc_long_figures import INIT_COLORS

    nets = list(dict.fromkeys(r["net"] for r in runs))
    if not nets:
        return
    fig, axes = plt.subplots(1, len(nets), figsize=(4.2 * len(nets), 3.4), squeeze=False)
    for ax, net in zip(axes[0], nets):
        for r in sorted((r for r in runs if r["net"] == net), key=lambda r: r["seed"]):
            color = INIT_COLORS.get(r["init"], "black")
            epochs = [c["epoch"] + 1 for c in r["curve"]]
            ax.plot(epochs, [c["val_ppl"] for c in r["curve"]], "-o", color=color, ms=3)
            ax.plot(epochs, [c["train_ppl"] for c in r["curve"]], "--", color=color)
        ax.set_yscale("log")
        ax.set_xticks(sorted({c["epoch"] + 1 for r in runs for c in r["curve"]}))
        ax.set_title(net, fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("perplexity (Brown corpus, PTB stand-in)")
    inits = [i for i in INIT_COLORS if any(r["init"] == i for r in runs)]
    handles = [Line2D([], [], color=INIT_COLORS[i], label=i) for i in inits]
    handles += [Line2D([], [], color="black", ls="-", marker="o", ms=3, label="validation"),
                Line2D([], [], color="black", ls="--", label="training")]
    axes[0][-1].legend(handles=handles, fontsize=7)
    save_figure(fig, path)
