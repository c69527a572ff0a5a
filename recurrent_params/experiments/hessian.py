"""Hessian at the optimum: dense vs complex-diagonal vs LRU students of a linear teacher.

Reproduces the Hessian experiment of Zucchet & Orvieto (arXiv 2405.21064, Section 4.3): a
teacher RNN with eigenvalue magnitudes near 1 (``nu0``), students given exactly the teacher's
function (loss ~1e-25), and the float64 Hessian of the loss computed exactly by chunked
Hessian-vector products. The paper shows the structure in plots; this experiment also
prints scalars: the diagonal mass ``||diag H|| / ||H||_F``, the participation numbers of the
top eigenvectors (1 = one coordinate), ``lambda_max(D^-1/2 H D^-1/2)`` and the share of the
top eigenvector on the recurrent parameters (``A``, or the eigenvalue originals).
"""

from __future__ import annotations

import time

import torch

from recurrent_params.experiments._arg_types import comma_list, finite_float, positive_int

SUMMARY = ("The Hessian at the optimum (curse-of-memory paper, Section 4.3): how much of its "
           "mass sits on the diagonal for dense, diagonal and LRU students.")

HELP = (
    "Hessian at the optimum (paper Section 4.3): a teacher with |lambda| near 1 is loaded "
    "into dense, complex-diagonal and LRU students; prints diagonal mass and participation "
    "numbers of the top eigenvectors, and with --plot/--out draws heat maps of |H| and the "
    "top eigenvectors."
)

MODELS = ("dense", "diagonal", "lru")


def add_arguments(parser) -> None:
    """Options of ``recurrent-params hessian``."""
    parser.add_argument("--nu0", type=finite_float, default=0.99,
                        help="teacher eigenvalue magnitude floor, in [0, 1) (default 0.99)")
    parser.add_argument("--d-state", type=positive_int, default=10,
                        help="teacher and student states")
    parser.add_argument("--length", type=positive_int, default=None,
                        help="sequence length (default 300, --quick 100)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="sequences in the batch (default 64, --quick 32)")
    parser.add_argument("--top-k", type=positive_int, default=3,
                        help="top eigenvectors to analyse")
    parser.add_argument("--models", type=comma_list(MODELS), default=list(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")


def _student(kind: str, d_state: int, device: torch.device):
    from recurrent_params import LRU, DenseRNN, DiagonalRNN

    if kind == "dense":
        cell = DenseRNN(1, d_state, 1)
    elif kind == "diagonal":
        cell = DiagonalRNN(1, d_state, 1, complex=True)
    elif kind == "lru":
        cell = LRU(1, d_state)
    else:
        raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")
    return cell.to(device=device).double()


def _loss(out, target):
    return 0.5 * ((out[0] - target) ** 2).mean()


def _recurrent_share(report, names: list[str]) -> float:
    keys = [n for n in names if n == "A" or n == "lam" or n.startswith("parametrizations.lam")]
    return sum(report.eigenvector_block_mass[0][k] for k in keys)


def run(args) -> dict:
    """Run the experiment, print the table, return the summary."""
    # The tensors here are tiny: without an explicit --threads, one CPU thread (measured 10x
    # faster than two on a busy 2-core machine); the previous setting is restored afterwards.
    threads = torch.get_num_threads()
    if getattr(args, "threads", None) is None:
        torch.set_num_threads(1)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args) -> dict:
    from diagnostics import HessianOperator, hessian_diagonality
    from recurrent_params.experiments.teacher import load_teacher, make_teacher, teacher_data

    length = args.length or (100 if args.quick else 300)
    batch = args.batch_size or (32 if args.quick else 64)
    models = list(args.models)
    if not 0 <= args.nu0 < 1:
        raise ValueError(f"--nu0 must be in [0, 1), got {args.nu0}")
    device = args.device
    progress = not args.no_progress
    teacher = make_teacher(args.nu0, args.d_state, seed=args.seed, device=device)
    x, y = teacher_data(teacher, batch, length, seed=args.seed + 1)
    print(f"teacher: N={args.d_state}, nu0={args.nu0}, |lambda| in "
          f"[{float(teacher.eigenvalues.abs().min()):.4f}, "
          f"{float(teacher.eigenvalues.abs().max()):.4f}]; data: batch {batch}, T={length}, "
          f"float64 on {device}")

    results, hessians = {}, {}
    for kind in models:
        student = load_teacher(_student(kind, args.d_state, device), teacher)
        start = time.perf_counter()
        op = HessianOperator(student, _loss, (x, y), progress=progress)
        h = op.dense(cache=True, progress=progress)
        report = hessian_diagonality(op, k=min(args.top_k, op.num_params), method="exact",
                                     progress=progress)
        elapsed = time.perf_counter() - start
        evals, evecs = torch.linalg.eigh(h.double())
        hessians[kind] = (h.cpu(), evecs.flip(1)[:, : args.top_k].cpu(), op)
        results[kind] = {
            "num_params": op.num_params,
            "loss": op.loss(),
            "seconds": elapsed,
            "recurrent_share_top1": _recurrent_share(report, op.names),
            **report.to_dict(),
        }

    header = (f"{'model':<9} {'P':>4} {'loss':>9} {'lam_max':>9} {'diag mass':>9} "
              f"{'PR top-k':>18} {'lam_max(DHD)':>12} {'top-1 on lam/A':>14} {'time':>6}")
    print(header)
    print("-" * len(header))
    for kind, r in results.items():
        prs = " ".join(f"{p:.1f}" for p in r["participation_numbers"])
        print(f"{kind:<9} {r['num_params']:>4} {r['loss']:>9.1e} {r['top_eigenvalues'][0]:>9.3g} "
              f"{r['diagonal_mass']:>9.3f} {prs:>18} {r['preconditioned_lambda_max']:>12.3g} "
              f"{r['recurrent_share_top1']:>14.2f} {r['seconds']:>5.1f}s")

    if args.plot is not None or args.out is not None:
        paths = _plots(hessians, args)
        for p in paths:
            print(f"figure written to {p}")
    return {"length": length, "batch_size": batch, "nu0": args.nu0, "d_state": args.d_state,
            "models": results}


def _plots(hessians: dict, args) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    paths = []
    kinds = list(hessians)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        h, _, op = hessians[kind]
        mag = h.abs().numpy()
        floor = max(float(mag.max()) * 1e-8, 1e-300)
        im = ax.imshow(mag.clip(min=floor), norm=LogNorm(vmin=floor, vmax=float(mag.max())),
                       cmap="viridis", interpolation="nearest")
        for b in op.blocks[1:]:
            ax.axhline(b.start - 0.5, color="w", lw=0.5)
            ax.axvline(b.start - 0.5, color="w", lw=0.5)
        ax.set_title(f"|H| at the optimum: {kind}")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    main = args.plot if args.plot is not None else args.out / "hessian_heatmaps.png"
    fig.savefig(main, dpi=120)
    plt.close(fig)
    paths.append(main)

    k = max(v[1].shape[1] for v in hessians.values())
    fig, axes = plt.subplots(k, len(kinds), figsize=(4.2 * len(kinds), 1.8 * k), squeeze=False)
    for j, kind in enumerate(kinds):
        _, vecs, op = hessians[kind]
        for i in range(vecs.shape[1]):
            ax = axes[i][j]
            ax.bar(range(vecs.shape[0]), vecs[:, i].abs().numpy(), width=1.0)
            for b in op.blocks[1:]:
                ax.axvline(b.start - 0.5, color="k", lw=0.4)
            ax.set_title(f"{kind}: |eigenvector {i + 1}|", fontsize=9)
    fig.tight_layout()
    vec_path = (args.out / "hessian_top_eigenvectors.png" if args.out is not None
                else args.plot.with_name(args.plot.stem + "_eigenvectors.png"))
    fig.savefig(vec_path, dpi=120)
    plt.close(fig)
    paths.append(vec_path)
    return paths


def summarize(result: dict) -> str:
    """One sentence for the demo's summary."""
    parts = [f"{kind}: diagonal mass {r['diagonal_mass']:.2f}, top-1 PR "
             f"{r['participation_numbers'][0]:.1f}" for kind, r in result["models"].items()]
    return (f"Hessian at the optimum (nu0 = {result['nu0']}): " + "; ".join(parts)
            + ". Diagonal recurrences concentrate curvature on few coordinates.")
