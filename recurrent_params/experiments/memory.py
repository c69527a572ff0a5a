"""``recurrent-params memory``: the curse of memory and its cure, measured against theory."""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils import parametrize

from diagnostics import (
    memory_sensitivity,
    normalized_exp_sensitivity,
    second_moment,
    sensitivity,
)
from recurrent_params import DiagonalRNN, ExpMag, assign_, input_gamma
from recurrent_params.experiments._arg_types import finite_float, positive_int
from recurrent_params.experiments._output import save_figure, write_table

SUMMARY = ("The curse of memory (arXiv 2405.21064): the sensitivity of h_t = lam h_t-1 + x_t "
           "and of its cure, beside their closed forms.")

HELP = (
    "The curse of memory (arXiv 2405.21064). For eigenvalues lam approaching 1, simulate the "
    "scalar recurrence h_t = lam h_{t-1} + x_t on unit-variance inputs and measure E[h^2] and "
    "E[(dh/dlam)^2] (forward-mode AD), next to their closed forms, which explode like "
    "(1-lam)^-1 and (1-lam)^-3. Then do the same for the cure: input normalisation "
    "gamma(lam) = sqrt(1-lam^2) and lam = exp(-exp(nu)), whose sensitivity w.r.t. nu stays "
    "bounded (-> 1/4)."
)

DEFAULT_LAMBDAS = (0.5, 0.9, 0.97, 0.99, 0.995, 0.999)
QUICK_LAMBDAS = (0.5, 0.9, 0.97, 0.99)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the memory experiment."""
    default = " ".join(map(str, DEFAULT_LAMBDAS))
    parser.add_argument("--lambdas", type=finite_float, nargs="+", default=None,
                        help=f"eigenvalues in (0, 1) (default {default})")
    parser.add_argument("--rho", type=finite_float, default=0.0,
                        help="input autocorrelation in (-1, 1) for the plain recurrence")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="Monte-Carlo sequences (default 8192, 2048 with --quick)")


def _cells(lambdas: torch.Tensor) -> tuple[DiagonalRNN, DiagonalRNN]:
    """The plain recurrence (u_t = x_t) and the cured one (u_t = gamma(lam) x_t)."""
    n = lambdas.numel()
    plain = DiagonalRNN(1, n, 1, complex=False).to(lambdas.dtype)
    cured = DiagonalRNN(1, n, 1, complex=False, normalization="iid").to(lambdas.dtype)
    for cell in (plain, cured):
        assign_(cell, "lam", lambdas)
    assign_(plain, "B", torch.ones_like(plain.B))
    # B is normalised in the cured cell: its stored matrix is 1, its effective one gamma(lam).
    assign_(cured, "B", input_gamma(lambdas).unsqueeze(-1))
    parametrize.register_parametrization(cured, "lam", ExpMag())
    return plain, cured


def run(args: argparse.Namespace) -> dict:
    """Simulate, print the table, optionally plot; return the numbers."""
    lambdas = args.lambdas or (QUICK_LAMBDAS if args.quick else DEFAULT_LAMBDAS)
    if any(not 0 < lam < 1 for lam in lambdas):
        raise ValueError(f"--lambdas must lie in (0, 1), got {lambdas}")
    if not -1 < args.rho < 1:
        raise ValueError(f"--rho must lie in (-1, 1), got {args.rho}")
    batch = args.batch_size or (2048 if args.quick else 8192)
    lam = torch.tensor(sorted(lambdas), dtype=torch.float64, device=args.device)
    plain, cured = (c.to(args.device) for c in _cells(lam))
    gen = torch.Generator(device=args.device).manual_seed(args.seed)

    start = time.perf_counter()
    raw = memory_sensitivity(plain, batch_size=batch, rho=args.rho, generator=gen)
    cure = memory_sensitivity(cured, batch_size=batch, rho=0.0, generator=gen)
    seconds = time.perf_counter() - start

    rows = []
    for i, value in enumerate(lam.tolist()):
        rows.append({
            "lam": value,
            "E[h^2]": float(raw.second_moment[i]),
            "E[h^2] theory": float(second_moment(lam[i], args.rho)),
            "E[(dh/dlam)^2]": float(raw.sensitivity["lam"][i]),
            "E[(dh/dlam)^2] theory": float(sensitivity(lam[i], args.rho)),
            "cured E[h^2]": float(cure.second_moment[i]),
            "cured E[(dh/dnu)^2]": float(cure.sensitivity["nu"][i]),
            "cured theory": float(normalized_exp_sensitivity(lam[i])),
        })
    print(f"Curse of memory: h_t = lam h_t-1 + x_t, rho = {args.rho}, {batch} sequences of "
          f"length {raw.length}; cure: gamma = sqrt(1-lam^2), lam = exp(-exp(nu)), i.i.d. inputs")
    write_table(rows, args.out / "memory.csv" if args.out else None)
    growth = rows[-1]["E[(dh/dlam)^2]"] / rows[0]["E[(dh/dlam)^2]"]
    print(f"\nFrom lam = {rows[0]['lam']} to {rows[-1]['lam']} the plain sensitivity grows "
          f"{growth:.3g}x; the cured one stays <= {max(r['cured E[(dh/dnu)^2]'] for r in rows):.3g}"
          f" (theory -> 1/4). Simulated in {seconds:.1f} s.")
    plot_path = args.plot or (args.out / "memory.png" if args.out else None)
    if plot_path is not None:
        _plot(rows, plot_path)
    return {"rho": args.rho, "batch_size": batch, "length": raw.length, "rows": rows}


def _plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gap = [1 - r["lam"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.loglog(gap, [r["E[h^2]"] for r in rows], "o", label="plain, simulated")
    ax1.loglog(gap, [r["E[h^2] theory"] for r in rows], "-", label="plain, theory")
    ax1.loglog(gap, [r["cured E[h^2]"] for r in rows], "s", label="normalised, simulated")
    ax1.set(xlabel="1 - lam", ylabel="E[h^2]", title="hidden state")
    ax2.loglog(gap, [r["E[(dh/dlam)^2]"] for r in rows], "o", label="plain dh/dlam, simulated")
    ax2.loglog(gap, [r["E[(dh/dlam)^2] theory"] for r in rows], "-", label="plain, theory")
    ax2.loglog(gap, [r["cured E[(dh/dnu)^2]"] for r in rows], "s",
               label="normalised + exp dh/dnu, simulated")
    ax2.loglog(gap, [r["cured theory"] for r in rows], "--", label="cured, theory")
    ax2.set(xlabel="1 - lam", ylabel="squared sensitivity", title="sensitivity")
    for ax in (ax1, ax2):
        ax.invert_xaxis()
        ax.legend(fontsize=8)
    save_figure(fig, path)


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    rows = result["rows"]
    first, last = rows[0], rows[-1]
    growth = last["E[(dh/dlam)^2]"] / first["E[(dh/dlam)^2]"]
    return (f"from lam = {first['lam']} to {last['lam']}, E[(dh/dlam)^2] grew {growth:.2g}x "
            f"(theory {last['E[(dh/dlam)^2] theory'] / first['E[(dh/dlam)^2] theory']:.2g}x) "
            f"while the normalised, exp-parametrized sensitivity stayed at "
            f"{last['cured E[(dh/dnu)^2]']:.2f} (theory 1/4): the curse of memory and its cure.")
