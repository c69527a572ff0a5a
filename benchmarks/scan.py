"""Benchmark of the linear-scan core, the LRU and S4D (forward + backward, medians and ratios).

Run from the repository root:

    python benchmarks/scan.py                    # CPU, complex64, batch 16, d 256, L 1024 4096
    python benchmarks/scan.py --device cuda      # adds GB/s against the 40 B/element floor
    python benchmarks/scan.py --quick            # a smoke run (small sizes, 2 repeats)

Every timing is a median over ``--repeats`` runs, the methods of one table being run
round-robin in one process so that load changes on a shared machine hit all of them alike.
Memory: on CUDA the peak allocated; on CPU the bytes autograd saves for backward (unique
storages, counted with ``torch.autograd.graph.saved_tensors_hooks``).

The LRU column compares with the PyPI package ``lru-pytorch`` (module ``LRU_pytorch``) when it
is importable; install it in a separate environment for the benchmark only. Without it that
column is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recurrent_params import LRU, S4D, linear_scan  # noqa: E402
from recurrent_params.scan import scan_implementation  # noqa: E402

BYTES_FLOOR = 40  # bytes per (batch, time, state) element, forward + backward (complex64)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def round_robin(fns: dict, repeats: int, device: torch.device, budget_s: float = 1e9) -> dict:
    """Median milliseconds per callable; one warm-up, then ``repeats`` rounds in turn.

    A callable whose single run exceeds ``budget_s`` is run only once more.
    """
    times: dict = {k: [] for k in fns}
    slow = set()
    for name, fn in fns.items():  # warm-up (and compile)
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        if time.perf_counter() - start > budget_s:
            slow.add(name)
    for r in range(repeats):
        for name, fn in fns.items():
            if name in slow and r > 0:
                continue
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def saved_bytes(fn) -> int:
    """Bytes of the unique storages autograd saves for backward while ``fn()`` runs."""
    seen: dict = {}

    def pack(t):
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def peak_memory(fn, device: torch.device) -> tuple[str, float]:
    """(label, MiB): CUDA peak allocated, else bytes saved for backward."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return "peak", (torch.cuda.max_memory_allocated() - base) / 2**20
    return "saved", saved_bytes(lambda: fn(backward=False)) / 2**20


def _available_bytes() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return 1024.0 * int(line.split()[1])
    except OSError:
        pass
    return float("inf")


def python_loop(lam, u):
    """The baseline: autograd through a Python loop over ``unbind(1)``."""
    h = torch.zeros_like(u[:, 0])
    out = []
    for u_t in u.unbind(1):
        h = lam * h + u_t
        out.append(h)
    return torch.stack(out, 1)


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = " | ".join(f"{{:>{w}}}" for w in widths)
    print(fmt.format(*header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))


def bench_scan(args, device) -> None:
    B, d = args.batch, args.d
    rows = []
    for L in args.lengths:
        lam = torch.polar(torch.rand(d) * 0.999, torch.rand(d) * 6.28).to(device)
        lam.requires_grad_()
        u = torch.randn(B, L, d, dtype=torch.complex64, device=device, requires_grad=True)
        g = torch.randn_like(u)

        def make(fn, lam=lam, u=u, g=g):
            def run(backward=True):
                h = fn(lam, u)
                if backward:
                    torch.autograd.backward(h, g)
                    lam.grad = u.grad = None
                return h

            return run

        methods = {
            "python loop (autograd)": make(python_loop),
            f"linear_scan (auto: {scan_implementation(device)})": make(linear_scan),
        }
        if device.type == "cpu" or args.all_impls:
            methods["linear_scan impl=chunked"] = make(
                lambda a, b: linear_scan(a, b, impl="chunked")
            )
        times = round_robin(methods, args.repeats, device)
        base = times["python loop (autograd)"]
        for name, ms in times.items():
            label, mib = peak_memory(methods[name], device)
            gbps = BYTES_FLOOR * B * L * d / (ms * 1e-3) / 1e9
            row = [L, name, f"{ms:.1f}", f"{base / ms:.2f}x", f"{label} {mib:.0f} MiB"]
            if device.type == "cuda":
                row += [f"{gbps:.0f}", f"{gbps / args.peak_gbps:.0%}"]
            rows.append(row)
    header = ["L", "method", "median ms", "speed-up vs loop", "memory"]
    if device.type == "cuda":
        header += ["GB/s (40 B/elt)", f"of {args.peak_gbps:.0f} GB/s"]
    _table(f"linear scan, complex64, batch {B}, d {d}, forward + backward", header, rows)


def bench_lru(args, device) -> None:
    try:
        from LRU_pytorch import LRU as PeerLRU
    except ImportError:
        PeerLRU = None
        print("\nlru-pytorch is not installed: the peer column is skipped")
    B, d = args.batch, args.d
    rows, skipped = [], []
    lengths = sorted(set(args.lengths) | set(args.peer_lengths if PeerLRU is not None else []))
    for L in lengths:
        x = torch.randn(B, L, d, device=device)
        ours = LRU(d, d).to(device)
        methods = {"recurrent_params.LRU": lambda m=ours, x=x: m(x)[0].square().mean().backward()}
        # the peer multiplies gamma into B at every step: its graph keeps a (d, d) complex
        # matrix per (batch, time) step
        need = 8 * B * L * d * d
        if PeerLRU is not None and (L > args.peer_max_length or need > 0.8 * _available_bytes()):
            skipped.append(f"L={L} (its graph needs ~{need / 2**30:.0f} GiB)")
        elif PeerLRU is not None:
            peer = PeerLRU(d, d, d).to(device)
            methods["lru-pytorch"] = lambda m=peer, x=x: m(x).square().mean().backward()
        times = round_robin(methods, args.repeats, device, budget_s=5.0)
        ms_ours = times["recurrent_params.LRU"]
        for name, ms in times.items():
            rows.append([L, name, f"{ms:.1f}", f"{ms / ms_ours:.1f}x"])
    _table(
        f"LRU layer (d_model {d}, d_state {d}), batch {B}, forward + backward",
        ["L", "method", "median ms", "time / ours"],
        rows,
    )
    if skipped:
        print("lru-pytorch skipped at " + ", ".join(skipped))


def bench_s4d(args, device) -> None:
    B = args.batch
    H, N = args.s4d_channels, args.d // args.s4d_channels
    rows = []
    for L in args.lengths:
        x = torch.randn(B, L, H, device=device)
        cell = S4D(H, N).to(device)

        def run(mode, cell=cell, x=x):
            def go(backward=True):
                cell.mode = mode
                y, _ = cell(x)
                if backward:
                    y.square().mean().backward()
                return y

            return go

        methods = {"fft": run("fft"), "scan": run("scan")}
        times = round_robin(methods, args.repeats, device)
        for name, ms in times.items():
            label, mib = peak_memory(methods[name], device)
            speed = f"{times['scan'] / ms:.2f}x"
            rows.append([L, name, f"{ms:.1f}", speed, f"{label} {mib:.0f} MiB"])
    _table(
        f"S4D (d_model {H}, {N} complex modes each = {H * N} states), batch {B}, fwd + bwd",
        ["L", "mode", "median ms", "speed-up vs scan", "memory"],
        rows,
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--s4d-channels", type=int, default=64)
    p.add_argument("--peer-max-length", type=int, default=4096)
    p.add_argument("--peer-lengths", type=int, nargs="*", default=[256], help="extra L, peer")
    p.add_argument("--peak-gbps", type=float, default=3350.0, help="device memory bandwidth")
    p.add_argument("--all-impls", action="store_true", help="also time the chunked scan on GPU")
    p.add_argument("--only", choices=["scan", "lru", "s4d"], nargs="+")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.repeats, args.batch, args.d = [256], 2, 4, 64
        args.peer_lengths = []
        args.s4d_channels = 16
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__}, device {name}, threads {torch.get_num_threads()}, "
        f"repeats {args.repeats}"
    )
    only = args.only or ["scan", "lru", "s4d"]
    if "scan" in only:
        bench_scan(args, device)
    if "lru" in only:
        bench_lru(args, device)
    if "s4d" in only:
        bench_s4d(args, device)


if __name__ == "__main__":
    main()
