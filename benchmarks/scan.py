"""Benchmark of the linear-scan core, the LRU and S4D (forward + backward, medians and ratios).

Run from the repository root:

    python benchmarks/scan.py                    # CPU, batch 16, d 256, L 1024 4096 (LRU, S4D);
                                                 # scan also at 128 x 300 x 64, complex64 + float32
    python benchmarks/scan.py --device cuda      # adds GB/s against the 40 B/element floor
    python benchmarks/scan.py --quick            # a smoke run (small sizes, 2 repeats)
    python benchmarks/scan.py --only scan --clock cpu   # CPU time of this thread, not wall time
    python benchmarks/scan.py --only threads --scan-threads 2 --scan-shapes 16x4096x256
                                                 # the compiled scan on 2 threads against 1
    python benchmarks/scan.py --only losses --clock cpu   # the scan under ordinary losses vs
                                                 # its floor, glibc default vs kept memory

Every timing is a median over ``--repeats`` runs, the methods of one table being run
round-robin in one process so that load changes on a shared machine hit all of them alike.
Memory: on CUDA the peak allocated; on CPU (Linux) the peak resident-set growth of one
forward + backward, each method in a fresh process, over its inputs; elsewhere (or with
``--no-rss``) the bytes autograd saves for backward (unique storages).

The LRU column compares with the PyPI package ``lru-pytorch`` (module ``LRU_pytorch``) when it
is importable; install it in a separate environment for the benchmark only. Without it that
column is skipped.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import print_table, round_robin  # noqa: E402  (benchmarks/ is the script folder)

from recurrent_params import LRU, S4D, linear_scan  # noqa: E402
from recurrent_params.allocator import keep_freed_memory  # noqa: E402
from recurrent_params.scan import scan_implementation  # noqa: E402


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


def peak_memory(fn, device: torch.device, section: str, name: str, L: int, args):
    """(label, MiB): CUDA peak allocated; on CPU the peak RSS growth of one forward +
    backward in a fresh process (Linux), else the bytes autograd saves for backward."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return "peak", (torch.cuda.max_memory_allocated() - base) / 2**20
    if Path("/proc/self/clear_refs").exists() and not args.no_rss:
        mib = rss_peak(section, name, L, args)
        if mib is not None:
            return "peak RSS +", mib
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


DTYPES = {"complex64": torch.complex64, "float32": torch.float32}
TARGET_SHAPES = [(16, 4096, 256), (128, 300, 64)]  # issue 12: >= 4x and >= 5x vs the loop
FLOOR = "memory floor (copy + add)"
FRESH = "copy + add, fresh outputs"
CACHE_ENV = "RECURRENT_PARAMS_SCAN_CACHE_MB"
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"16x4096x256"`` -> ``(16, 4096, 256)`` (batch, length, d)."""
    B, L, d = (int(v) for v in text.lower().split("x"))
    return B, L, d


def scan_methods(args, device, shape, dtype_name: str = "complex64") -> dict:
    """The scan contestants at ``shape = (B, L, d)``: name -> ``run(backward=True)``.

    The last two entries are not scans: a copy of ``u`` (forward) and one add of two tensors
    (backward) read and write the same bytes as the scan's forward + backward (read ``u``, write
    ``h``; read the incoming gradient and ``h``, write the input gradient). Into two outputs
    allocated once and reused, that is the memory-traffic floor on this machine (``FLOOR``);
    into two freshly allocated outputs per run it adds what first-touch page faults cost.
    On CPU, ``linear_scan`` also runs with its output cache switched off
    (``RECURRENT_PARAMS_SCAN_CACHE_MB=0``), so that every run faults its outputs in afresh.
    """
    B, L, d = shape
    dtype = DTYPES[dtype_name]
    if dtype.is_complex:
        lam = torch.polar(torch.rand(d) * 0.999, torch.rand(d) * 6.28).to(device)
    else:
        lam = ((torch.rand(d) * 0.999) * torch.where(torch.rand(d) < 0.3, -1.0, 1.0)).to(device)
    lam.requires_grad_()
    u = torch.randn(B, L, d, dtype=dtype, device=device, requires_grad=True)
    g = torch.randn_like(u)

    def make(fn):
        def run(backward=True):
            h = fn(lam, u)
            if backward:
                torch.autograd.backward(h, g)
                lam.grad = u.grad = None
            return h

        return run

    bufs = [torch.zeros_like(u, requires_grad=False) for _ in range(2)]

    def floor(backward=True):
        h = bufs[0].copy_(u.detach())
        if backward:
            torch.add(g, h, out=bufs[1])
        return h

    def fresh(backward=True):
        h = u.detach().clone()
        if backward:
            torch.add(g, h)
        return h

    def no_cache(backward=True):
        old = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = "0"
        try:
            return make(linear_scan)(backward)
        finally:
            if old is None:
                del os.environ[CACHE_ENV]
            else:
                os.environ[CACHE_ENV] = old

    methods = {
        "python loop (autograd)": make(python_loop),
        f"linear_scan (auto: {scan_implementation(device)})": make(linear_scan),
    }
    if device.type == "cpu":
        methods["linear_scan, output cache off"] = no_cache
        methods["linear_scan impl=loop"] = make(lambda a, b: linear_scan(a, b, impl="loop"))
    if device.type == "cpu" or args.all_impls:
        methods["linear_scan impl=chunked"] = make(lambda a, b: linear_scan(a, b, impl="chunked"))
    methods[FRESH] = fresh
    methods[FLOOR] = floor
    return methods


def scan_shapes(args) -> list[tuple[int, int, int]]:
    if args.scan_shapes:
        return [parse_shape(s) for s in args.scan_shapes]
    shapes = [(args.batch, L, args.d) for L in args.lengths]
    return shapes + [s for s in TARGET_SHAPES if not args.quick and s not in shapes]


def bench_scan(args, device) -> None:
    for dtype_name in args.dtypes:
        elt = torch.empty((), dtype=DTYPES[dtype_name]).element_size()
        rows = []
        for shape in scan_shapes(args):
            B, L, d = shape
            methods = scan_methods(args, device, shape, dtype_name)
            times = round_robin(methods, args.repeats, device, clock=CLOCKS[args.clock])
            base, floor = times["python loop (autograd)"], times[FLOOR]
            for name, ms in times.items():
                key = f"{B},{L},{d},{dtype_name}"
                label, mib = peak_memory(methods[name], device, "scan", name, key, args)
                gbps = 5 * elt * B * L * d / (ms * 1e-3) / 1e9
                row = [f"{B}x{L}x{d}", name, f"{ms:.1f}", f"{base / ms:.2f}x",
                       f"{ms / floor:.2f}", f"{gbps:.1f}", f"{label} {mib:.0f} MiB"]  # fmt: skip
                if device.type == "cuda":
                    row.append(f"{gbps / args.peak_gbps:.0%}")
                rows.append(row)
        header = ["B x L x d", "method", f"median ms ({args.clock})", "speed-up vs loop", "x floor",
                  f"GB/s ({5 * elt} B/elt)", "memory"]  # fmt: skip
        if device.type == "cuda":
            header.append(f"of {args.peak_gbps:.0f} GB/s")
        print_table(f"linear scan, {dtype_name}, forward + backward", header, rows)


def _scan_inputs(shape, device):
    """A complex64 scan's ``lam`` (d,), ``u`` (B, L, d) and an output gradient ``g``."""
    B, L, d = shape
    lam = torch.polar(torch.rand(d) * 0.999, torch.rand(d) * 6.28).to(device).requires_grad_()
    u = torch.randn(B, L, d, dtype=torch.complex64, device=device, requires_grad=True)
    return lam, u, torch.randn_like(u)


def thread_methods(shape, counts) -> dict:
    """``linear_scan`` forward + backward with the thread count switched inside each run."""
    lam, u, g = _scan_inputs(shape, torch.device("cpu"))

    def on(threads):
        def run(backward=True):
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                h = linear_scan(lam, u)
                if backward:
                    torch.autograd.backward(h, g)
                    lam.grad = u.grad = None
                return h
            finally:
                torch.set_num_threads(before)

        return run

    return {f"{n} thread{'s' * (n > 1)}": on(n) for n in sorted({1, *counts})}


def bench_threads(args, device) -> None:
    """The compiled scan with its batch rows split across threads, against one thread.

    Round-robin in one process, so load changes hit both alike; the ratio is the speed-up.
    """
    if device.type != "cpu":
        return
    rows = []
    for shape in scan_shapes(args):
        times = round_robin(thread_methods(shape, args.scan_threads), args.repeats, device,
                            clock=CLOCKS["wall"])
        rows += [["x".join(map(str, shape)), name, f"{ms:.1f}", f"{times['1 thread'] / ms:.2f}x"]
                 for name, ms in times.items()]
    print_table("linear_scan (compiled) on several threads, complex64, forward + backward",
                ["B x L x d", "threads", "median ms (wall)", "speed-up vs 1 thread"], rows)


def loss_methods(shape, device) -> dict:
    """``linear_scan`` forward + backward under three losses, and the scan's memory floor.

    (a) a precomputed dense output gradient (how the scan table drives it), (b) the loss
    ``h.real.sum()``, (c) ``(h * g).real.sum()``; the floor is a copy and an add into reused
    buffers, the bytes the scan alone must move.
    """
    lam, u, g = _scan_inputs(shape, device)
    bufs = [torch.zeros_like(u, requires_grad=False) for _ in range(2)]

    def step(loss_of):
        def run(backward=True):
            h = linear_scan(lam, u)
            if backward:
                loss = loss_of(h)
                if loss is None:
                    torch.autograd.backward(h, g)
                else:
                    loss.backward()
                lam.grad = u.grad = None
            return h

        return run

    def floor(backward=True):
        h = bufs[0].copy_(u.detach())
        if backward:
            torch.add(g, h, out=bufs[1])
        return h

    return {
        "dense gradient given": step(lambda h: None),
        "loss h.real.sum()": step(lambda h: h.real.sum()),
        "loss (h * g).real.sum()": step(lambda h: (h * g).real.sum()),
        FLOOR: floor,
    }


def bench_losses(args, device) -> None:
    """The scan inside an ordinary training step: what autograd's temporaries around it add.

    On CPU the table is measured twice in one process: with glibc's default allocator settings,
    then with :func:`recurrent_params.allocator.keep_freed_memory` (what the command line uses).
    """
    settings = [("default", None)]
    if device.type == "cpu" and keep_freed_memory(False):
        settings.append(("keep_freed_memory", True))
    rows = []
    for label, keep in settings:
        if keep:
            keep_freed_memory(True)
        for shape in scan_shapes(args):
            times = round_robin(loss_methods(shape, device), args.repeats, device,
                                clock=CLOCKS[args.clock])
            rows += [["x".join(map(str, shape)), label, name, f"{ms:.1f}",
                      f"{ms / times[FLOOR]:.2f}"] for name, ms in times.items()]
    if len(settings) > 1:
        keep_freed_memory(False)
    print_table("linear_scan in a training step, complex64, forward + backward",
                ["B x L x d", "host allocator", "loss", f"median ms ({args.clock})", "x floor"],
                rows)


def _peer_class():
    try:
        from LRU_pytorch import LRU as PeerLRU
    except ImportError:
        return None
    return PeerLRU


def lru_methods(args, device, L: int, with_peer: bool = True) -> dict:
    """Our LRU and (if importable and asked for) lru-pytorch's: name -> ``run()``."""
    B, d = args.batch, args.d
    x = torch.randn(B, L, d, device=device)
    ours = LRU(d, d).to(device)

    def run_ours(backward=True):
        y = ours(x)[0]
        if backward:
            y.square().mean().backward()
        return y

    methods = {"recurrent_params.LRU": run_ours}
    PeerLRU = _peer_class()
    if with_peer and PeerLRU is not None:
        peer = PeerLRU(d, d, d).to(device)

        def run_peer(backward=True):
            y = peer(x)
            if backward:
                y.square().mean().backward()
            return y

        methods["lru-pytorch"] = run_peer
    return methods


def bench_lru(args, device) -> None:
    PeerLRU = _peer_class()
    if PeerLRU is None:
        print("\nlru-pytorch is not installed: the peer column is skipped")
    B, d = args.batch, args.d
    rows, skipped = [], []
    lengths = sorted(set(args.lengths) | set(args.peer_lengths if PeerLRU is not None else []))
    for L in lengths:
        # the peer multiplies gamma into B at every step: its graph keeps a (d, d) complex
        # matrix per (batch, time) step
        need = 8 * B * L * d * d
        fits = L <= args.peer_max_length and need <= 0.8 * _available_bytes()
        if PeerLRU is not None and not fits:
            skipped.append(f"L={L} (its graph needs ~{need / 2**30:.0f} GiB)")
        methods = lru_methods(args, device, L, with_peer=fits)
        try:
            times = round_robin(methods, args.repeats, device, budget_s=5.0)
        except Exception as err:  # the peer is known to break off the CPU
            if "lru-pytorch" not in methods:
                raise
            skipped.append(f"L={L} (it failed: {type(err).__name__}: {err})")
            methods.pop("lru-pytorch")
            times = round_robin(methods, args.repeats, device, budget_s=5.0)
        ms_ours = times["recurrent_params.LRU"]
        for name, ms in times.items():
            label, mib = peak_memory(methods[name], device, "lru", name, L, args)
            rows.append([L, name, f"{ms:.1f}", f"{ms / ms_ours:.1f}x", f"{label} {mib:.0f} MiB"])
    print_table(
        f"LRU layer (d_model {d}, d_state {d}), batch {B}, forward + backward",
        ["L", "method", "median ms", "time / ours", "memory"],
        rows,
    )
    if skipped:
        print("lru-pytorch skipped at " + ", ".join(skipped))


def s4d_methods(args, device, L: int) -> dict:
    """S4D in FFT and scan mode at length ``L``: name -> ``run(backward=True)``."""
    H, N = args.s4d_channels, args.d // args.s4d_channels
    x = torch.randn(args.batch, L, H, device=device)
    cell = S4D(H, N).to(device)

    def run(mode):
        def go(backward=True):
            cell.mode = mode
            y, _ = cell(x)
            if backward:
                y.square().mean().backward()
            return y

        return go

    return {"fft": run("fft"), "scan": run("scan")}


def bench_s4d(args, device) -> None:
    H, N = args.s4d_channels, args.d // args.s4d_channels
    rows = []
    for L in args.lengths:
        methods = s4d_methods(args, device, L)
        times = round_robin(methods, args.repeats, device)
        for name, ms in times.items():
            label, mib = peak_memory(methods[name], device, "s4d", name, L, args)
            speed = f"{times['scan'] / ms:.2f}x"
            rows.append([L, name, f"{ms:.1f}", speed, f"{label} {mib:.0f} MiB"])
    print_table(
        f"S4D (d_model {H}, {N} complex modes each = {H * N} states), batch {args.batch}, "
        "fwd + bwd",
        ["L", "mode", "median ms", "speed-up vs scan", "memory"],
        rows,
    )


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return 1024 * int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def rss_worker(args) -> None:
    """Child process: one forward + backward of one method; prints its peak RSS growth.

    The kernel's high-water mark (VmHWM) is reset through ``/proc/self/clear_refs`` just
    before the run, so the peak belongs to the run and not to ``import torch``. The first
    run is measured (no warm-up): freed small blocks stay resident in the C heap, so a
    second run would hide the memory of methods that allocate many small tensors.
    """
    section, name, key = args.rss_worker
    if section == "scan":
        B, L, d, dtype_name = key.split(",")
        fn = scan_methods(args, torch.device("cpu"), (int(B), int(L), int(d)), dtype_name)[name]
    else:
        build = {"s4d": s4d_methods, "lru": lru_methods}[section]
        fn = build(args, torch.device("cpu"), int(key))[name]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_bytes("VmRSS")
    fn()
    print(f"RSS_PEAK_BYTES={max(_status_bytes('VmHWM') - base, 0)}")


def rss_peak(section: str, name: str, L, args) -> float | None:
    """Peak RSS growth (MiB) of one forward + backward, measured in a fresh process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-worker", section, name, str(L)]
    cmd += ["--batch", str(args.batch), "--d", str(args.d), "--threads", str(args.threads)]
    cmd += ["--s4d-channels", str(args.s4d_channels)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    for line in out.splitlines():
        if line.startswith("RSS_PEAK_BYTES="):
            return int(line.split("=")[1]) / 2**20
    return None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--scan-shapes", nargs="+", metavar="BxLxd",
                   help="scan sizes (default: --batch x --lengths x --d and the targets)")
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES),
                   help="scan dtypes")
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--s4d-channels", type=int, default=64)
    p.add_argument("--peer-max-length", type=int, default=4096)
    p.add_argument("--peer-lengths", type=int, nargs="*", default=[256], help="extra L, peer")
    p.add_argument("--peak-gbps", type=float, default=3350.0, help="device memory bandwidth")
    p.add_argument("--all-impls", action="store_true", help="also time the chunked scan on GPU")
    p.add_argument("--only", choices=["scan", "threads", "losses", "lru", "s4d"], nargs="+")
    p.add_argument("--scan-threads", type=int, nargs="+", default=[2],
                   help="thread counts of the threads table (against 1)")
    p.add_argument("--clock", choices=list(CLOCKS), default="wall",
                   help="scan table: wall time, or CPU time of this thread (needs --threads 1)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-rss", action="store_true", help="CPU memory: bytes saved, not RSS")
    p.add_argument("--rss-worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_worker:
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        rss_worker(args)
        return
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        p.error("--clock cpu counts the calling thread only: use it with --threads 1 on CPU")
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
    only = args.only or ["scan", "threads", "losses", "lru", "s4d"]
    if "scan" in only:
        bench_scan(args, device)
    if "threads" in only:
        bench_threads(args, device)
    if "losses" in only:
        bench_losses(args, device)
    if "lru" in only:
        bench_lru(args, device)
    if "s4d" in only:
        bench_s4d(args, device)


if __name__ == "__main__":
    main()
