"""Benchmark the Hessian tools on a dense linear RNN with ~10k parameters.

Compares, on one problem (a ``DenseRNN(1, 100, 1)``, P = 10,201, float32, one thread, at the
optimum of a teacher so that the Hessian is positive semi-definite):

* top-10 eigenvalues: :func:`diagnostics.eigsh` on :class:`diagnostics.HessianOperator`
  (block Lanczos, blocks of 1 and of 10 vmapped HVPs, and scipy's ARPACK path), and
  PyHessian 0.1 (run in its own virtual environment when one is found, see
  ``--pyhessian-python``), each against the exact spectrum: time, ratio to PyHessian, worst
  relative error of the 10 eigenvalues;
* the exact Hessian: chunked vmapped HVPs (``HessianOperator.dense``) vs
  ``torch.func.hessian``: time and peak resident memory, each in a fresh subprocess;
* a CUDA section (HVP throughput, Lanczos) when a GPU is present.

Usage::

    python benchmarks/hessian.py            # full (several minutes: torch.func.hessian is slow)
    python benchmarks/hessian.py --quick    # P = 1,681, a few seconds

PyHessian is never a dependency: install it in a separate venv (``python -m venv
/tmp/benchvenv-diag; pip install torch==2.13.0 pyhessian``) and pass its interpreter with
``--pyhessian-python``; without it the column is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PYHESSIAN = "/tmp/benchvenv-diag/bin/python"


def _problem(d_state: int, batch: int, length: int, device: str = "cpu"):
    from recurrent_params import DenseRNN
    from recurrent_params.experiments.teacher import load_teacher, make_teacher, teacher_data

    teacher = make_teacher(0.9, d_state, seed=0)
    x, y = teacher_data(teacher, batch, length, seed=1)
    model = load_teacher(DenseRNN(1, d_state, 1).double(), teacher).float().to(device)
    return model, x.float().to(device), y.float().to(device)


def _loss(out, target):
    return 0.5 * ((out[0] - target) ** 2).mean()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(kind: str, d_state: int, batch: int, length: int) -> None:
    """One exact-Hessian measurement in a fresh process (for an honest peak memory)."""
    torch.set_num_threads(1)
    from diagnostics import HessianOperator

    model, x, y = _problem(d_state, batch, length)
    op = HessianOperator(model, _loss, (x, y), chunk_size=64, progress=False)
    theta = op.flat_parameters()
    before = _rss_mib()
    start = time.perf_counter()
    if kind == "chunked":
        h = op.dense()
    else:
        h = torch.func.hessian(op.loss_at)(theta)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_extra_mib": _rss_mib() - before,
                      "hessian_mib": h.numel() * h.element_size() / 2**20}))


_PYHESSIAN_WORKER = r'''
import json, sys, time
import torch
from torch import nn
torch.set_num_threads(1)
from pyhessian import hessian

data = torch.load(sys.argv[1])


class Dense(nn.Module):
    """The same dense linear RNN as recurrent_params.DenseRNN (returns y only)."""

    def __init__(self, A, B, C, D):
        super().__init__()
        self.A, self.B = nn.Parameter(A), nn.Parameter(B)
        self.C, self.D = nn.Parameter(C), nn.Parameter(D)

    def forward(self, x):
        bx = x @ self.B.T
        h = torch.zeros_like(bx[:, 0])
        hs = []
        for bx_t in bx.unbind(1):
            h = torch.addmm(bx_t, h, self.A.T)
            hs.append(h)
        return torch.stack(hs, 1) @ self.C.T + x @ self.D.T


model = Dense(data["A"], data["B"], data["C"], data["D"])
crit = lambda out, target: 0.5 * ((out - target) ** 2).mean()
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    hc = hessian(model, crit, data=(data["x"], data["y"]), cuda=False)
    values, _ = hc.eigenvalues(maxIter=100, tol=1e-3, top_n=int(sys.argv[2]))
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "values": [float(v) for v in values],
                  "training_mode_after": model.training}))
'''


def _pyhessian(python: str, model, x, y, k: int, repeats: int) -> dict:
    if not Path(python).exists():
        return {"skipped": f"no interpreter at {python}"}
    check = subprocess.run([python, "-c", "import pyhessian"], capture_output=True, text=True)
    if check.returncode:
        return {"skipped": "pyhessian not importable: " + check.stderr.strip().splitlines()[-1]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problem.pt"
        torch.save({**{n: p.detach().cpu() for n, p in model.named_parameters()},
                    "x": x.cpu(), "y": y.cpu()}, path)
        script = Path(tmp) / "worker.py"
        script.write_text(_PYHESSIAN_WORKER)
        run = subprocess.run([python, str(script), str(path), str(k), str(repeats)],
                             capture_output=True,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if run.returncode:
        tail = (run.stderr.strip().splitlines() or ["?"])[-1]
        return {"skipped": f"PyHessian crashed: {tail}"}
    return json.loads(run.stdout.strip().splitlines()[-1])


def _subprocess(kind: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--d-state", str(args.d_state),
           "--batch", str(args.batch), "--length", str(args.length)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        return {"skipped": (run.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def _rel_err(values, exact) -> float:
    v = torch.as_tensor(values, dtype=torch.float64)
    return float(((v - exact) / exact).abs().max())


def _median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P = 1,681 instead of 10,201")
    parser.add_argument("--d-state", type=int, default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--k", type=int, default=10, help="eigenvalues to compute")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pyhessian-python", default=DEFAULT_PYHESSIAN)
    parser.add_argument("--skip-func-hessian", action="store_true",
                        help="skip torch.func.hessian (minutes and GiBs at P = 10k)")
    parser.add_argument("--worker", choices=["chunked", "func"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.d_state = args.d_state or (40 if args.quick else 100)
    if args.worker:
        _worker(args.worker, args.d_state, args.batch, args.length)
        return

    torch.set_num_threads(1)
    from diagnostics import HessianOperator, eigsh

    model, x, y = _problem(args.d_state, args.batch, args.length)
    op = HessianOperator(model, _loss, (x, y), chunk_size=64, progress=False)
    P, k = op.num_params, args.k
    print(f"# Hessian benchmark: DenseRNN(1, {args.d_state}, 1), P = {P:,}, float32, batch "
          f"{args.batch}, T = {args.length}, 1 thread, torch {torch.__version__}")

    # HVP throughput
    v = torch.randn(64, P)
    op.hvp(v[:2])  # resolves the backend
    t_one, _ = _median_time(lambda: op.hvp(v[0]), args.repeats)
    t_64, _ = _median_time(lambda: op.hvp(v), args.repeats)
    mode = "" if op.batched_products else ", looped over the cached gradient graph"
    print(f"\n## HVPs (backend {op.backend}{mode})\none HVP: {1e3 * t_one:.1f} ms; a block of 64: "
          f"{1e3 * t_64 / 64:.1f} ms per vector ({t_one / (t_64 / 64):.1f}x cheaper)")

    # exact Hessian, each in a fresh process
    print("\n## Exact Hessian (fresh subprocess each; peak = extra resident memory)")
    chunked = _subprocess("chunked", args)
    rows = [("chunked vmapped HVPs (HessianOperator.dense)", chunked)]
    if not args.skip_func_hessian:
        rows.append(("torch.func.hessian", _subprocess("func", args)))
    for name, r in rows:
        if "skipped" in r:
            print(f"{name:<46} skipped: {r['skipped']}")
        else:
            ratio = r["seconds"] / chunked["seconds"] if "seconds" in chunked else float("nan")
            print(f"{name:<46} {r['seconds']:8.1f} s  peak +{r['peak_extra_mib']:7.0f} MiB  "
                  f"(x{ratio:.2f} time vs chunked; the matrix is {r['hessian_mib']:.0f} MiB)")

    # exact spectrum (float64 eigensolver on the dense matrix)
    start = time.perf_counter()
    exact = torch.linalg.eigvalsh(op.dense(progress=False).double()).flip(0)[:k]
    t_exact = time.perf_counter() - start
    print(f"\n## Top-{k} eigenvalues (exact: dense + eigvalsh, {t_exact:.1f} s; "
          f"lambda_1 = {float(exact[0]):.4g}, lambda_{k} = {float(exact[-1]):.4g})")

    results = []
    for name, fn in (
        ("Lanczos, block 1, tol 1e-2", lambda: eigsh(op, k, tol=1e-2)),
        ("Lanczos, block 1 (diagnostics.eigsh)", lambda: eigsh(op, k, tol=1e-4)),
        (f"Lanczos, block {k} (vmapped)", lambda: eigsh(op, k, block_size=k, tol=1e-4)),
        ("scipy eigsh on the LinearOperator", lambda: eigsh(op, k, method="scipy", tol=1e-4)),
    ):
        before = op.num_hvps
        t, (vals, _) = _median_time(fn, args.repeats)
        hvps = (op.num_hvps - before) // args.repeats
        results.append((name, t, _rel_err(vals, exact), hvps))
    ph = _pyhessian(args.pyhessian_python, model, x, y, k, args.repeats)
    if "skipped" in ph:
        print(f"PyHessian: skipped ({ph['skipped']})")
        base = None
    else:
        base = ph["seconds"]
        results.append(("PyHessian 0.1 (deflated power iteration)", base,
                        _rel_err(sorted(ph["values"], reverse=True), exact), None))
        if not ph.get("training_mode_after", True):
            print("note: PyHessian left the model in eval() mode")
    print(f"{'method':<44} {'time':>8} {'vs PyHessian':>12} {'max rel err':>12} {'HVPs':>6}")
    for name, t, err, hvps in results:
        ratio = f"{base / t:.1f}x" if base else "-"
        print(f"{name:<44} {t:7.2f}s {ratio:>12} {err:12.1e} {hvps if hvps else '-':>6}")

    if torch.cuda.is_available():
        print("\n## CUDA")
        model_c, x_c, y_c = _problem(args.d_state, args.batch, args.length, device="cuda")
        op_c = HessianOperator(model_c, _loss, (x_c, y_c), chunk_size=64, progress=False)
        v_c = torch.randn(64, P, device="cuda")
        op_c.hvp(v_c[:2])

        def sync(fn):
            def run():
                out = fn()
                torch.cuda.synchronize()
                return out
            return run

        t1, _ = _median_time(sync(lambda: op_c.hvp(v_c[0])), args.repeats)
        t64, _ = _median_time(sync(lambda: op_c.hvp(v_c)), args.repeats)
        tl, (vals, _) = _median_time(sync(lambda: eigsh(op_c, k, block_size=k, tol=1e-4)),
                                     args.repeats)
        print(f"one HVP {1e3 * t1:.1f} ms; vmapped {1e3 * t64 / 64:.2f} ms per vector; "
              f"Lanczos block {k}: {tl:.2f} s, max rel err {_rel_err(vals.cpu(), exact):.1e}")


if __name__ == "__main__":
    main()
