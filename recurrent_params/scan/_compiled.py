r"""Private: the compiled CPU scan kernel, built at first use, with a clean fallback.

The kernel (``_cpu_scan.c``, plain C99, no Python or torch headers) is compiled once per
source version with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``) into a
shared library in a user cache directory (``$RECURRENT_PARAMS_CACHE``, else
``$XDG_CACHE_HOME/recurrent_params`` or ``~/.cache/recurrent_params``; the temporary directory
if that is not writable) and called through :mod:`ctypes`, which releases the GIL during the
call. Building takes about a second, against tens of seconds for a
``torch.utils.cpp_extension`` module (torch's headers) and seconds of JIT per signature for
numba (an extra ~40 MB dependency). No ``-march=native``: the library runs on any machine of
the same architecture that shares the cache. On x86-64 Linux with GCC >= 12 the kernel is
cloned for AVX-512, AVX2 and SSE2 (``target_clones``) and the loader picks the best clone the
CPU supports; if that build fails, the plain build (``-DRP_NO_CLONES``) is tried once more.

Threads: the batch rows of a large scan (at least :data:`MIN_PARALLEL_ELEMENTS` elements) are
split into ``torch.get_num_threads()`` contiguous ranges, one kernel call each on a small
process-wide thread pool; rows are independent, so the outputs are bitwise those of one call
(the shared-``lam`` gradient sums its per-range float64 partials in a different order).
With one torch thread nothing changes.

Where no compiler exists or the build fails, :func:`available` returns ``False`` after one
``RuntimeWarning``, and callers use the Python loop. ``RECURRENT_PARAMS_NO_COMPILED_SCAN=1``
switches the compiled kernel off without a warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from recurrent_params.scan._alloc import empty_output

__all__ = ["available", "compiled_scan", "DTYPES"]

_SOURCE = Path(__file__).with_name("_cpu_scan.c")
_FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC"]
_SYMBOLS = {
    torch.float32: "scan_f32",
    torch.float64: "scan_f64",
    torch.complex64: "scan_c64",
    torch.complex128: "scan_c128",
}
DTYPES = frozenset(_SYMBOLS)

_lock = threading.Lock()
_state: dict = {"lib": None, "tried": False, "error": None}


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return cc
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _cache_dir() -> Path:
    env = os.environ.get("RECURRENT_PARAMS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recurrent_params"


def _build() -> ctypes.CDLL:
    if sys.platform == "win32":
        raise RuntimeError("building the C kernel is not supported on Windows")
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set $CC, or install cc/gcc/clang)")
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        source + " ".join([cc, *_FLAGS, platform.machine(), sys.platform]).encode()
    ).hexdigest()[:16]
    name = f"cpu_scan_{key}.so"
    for folder in (_cache_dir(), Path(tempfile.gettempdir()) / "recurrent_params"):
        lib_path = folder / name
        if lib_path.exists():
            return _load(lib_path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
        except OSError:
            continue
        try:
            for extra in ([], ["-DRP_NO_CLONES"]):  # the plain build if cloning fails
                cmd = [cc, *_FLAGS, *extra, str(_SOURCE), "-o", tmp]
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                if proc.returncode == 0:
                    break
            else:
                raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
            os.replace(tmp, lib_path)  # atomic: concurrent builders never see half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return _load(lib_path)
    raise RuntimeError("no writable cache directory for the compiled kernel")


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for symbol in _SYMBOLS.values():
        fn = getattr(lib, symbol)
        fn.restype = ctypes.c_int  # 0, or -1 when its small work buffer could not be allocated
        fn.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
    return lib


def available() -> bool:
    """Whether the compiled kernel can run (builds it on the first call; warns once if not)."""
    if _state["lib"] is not None:
        return True
    if os.environ.get("RECURRENT_PARAMS_NO_COMPILED_SCAN", "") not in ("", "0"):
        return False
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                _state["lib"] = _build()
            except Exception as err:  # no compiler, failed build, unloadable library
                _state["error"] = err
                warnings.warn(
                    f"linear_scan: the compiled CPU scan is unavailable "
                    f"({type(err).__name__}: {err}); using the Python loop over time",
                    RuntimeWarning,
                    stacklevel=4,
                )
    return _state["lib"] is not None


def _plain(t: torch.Tensor) -> torch.Tensor:
    """Contiguous, with conjugate and negative bits materialised (ctypes reads raw memory)."""
    return t.resolve_conj().resolve_neg().contiguous()

#: Fewest elements (B * L * d) worth splitting across threads: below it a thread pool's
#: hand-off (tens of microseconds) is a noticeable share of the scan itself.
MIN_PARALLEL_ELEMENTS = 1 << 18

_pool_state: dict = {"pool": None, "size": 0}


def _row_chunks(batch: int, row_elements: int) -> list[tuple[int, int]]:
    """Contiguous batch ranges, one per thread: ``torch.get_num_threads()`` of them at most.

    Batch rows are independent and contiguous in memory, so each range is one kernel call on
    its own slice; a range never holds less than :data:`MIN_PARALLEL_ELEMENTS` / threads
    elements, and a small scan stays in one call on the calling thread.
    """
    threads = min(torch.get_num_threads(), batch, max(1, batch * row_elements
                                                      // MIN_PARALLEL_ELEMENTS))
    if threads <= 1:
        return [(0, batch)]
    bounds = [round(i * batch / threads) for i in range(threads + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(threads)]


def _pool(size: int) -> ThreadPoolExecutor:
    """A process-wide pool of worker threads, grown when more threads are asked for."""
    with _lock:
        if _pool_state["size"] < size:
            old = _pool_state["pool"]
            _pool_state["pool"] = ThreadPoolExecutor(size, thread_name_prefix="rp-scan")
            _pool_state["size"] = size
            if old is not None:
                old.shutdown(wait=False)
        return _pool_state["pool"]


def _call(dtype, lam, u, h0, out, dot, acc, b0: int, b1: int, reverse: bool) -> None:
    """One kernel call on batch rows ``b0:b1`` (ctypes releases the GIL while it runs)."""
    per_step = lam.dim() == 3
    status = getattr(_state["lib"], _SYMBOLS[dtype])(
        (lam[b0:b1] if per_step else lam).data_ptr(), int(per_step), u[b0:b1].data_ptr(),
        None if h0 is None else h0[b0:b1].data_ptr(), out[b0:b1].data_ptr(), b1 - b0,
        u.shape[1], u.shape[2], int(reverse),
        None if dot is None else dot[b0:b1].data_ptr(), None if acc is None else acc.data_ptr(),
    )  # fmt: skip
    if status != 0:
        raise MemoryError(
            f"linear_scan: the compiled kernel could not allocate 4 x {u.shape[2]} values")


def compiled_scan(
    lam: torch.Tensor,
    u: torch.Tensor,
    h0: torch.Tensor | None,
    reverse: bool = False,
    dot_with: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The scan of :func:`recurrent_params.scan._kernels.loop_scan` in compiled C (no autograd).

    Same arguments and results; ``dot_with`` accumulates the shared-``lam`` gradient
    $\\sum_{b,t} h_{b,t} \\bar s_{b,t'}$ (per batch row in the input precision, across rows in
    float64) in the same pass. Inputs must be CPU tensors of one dtype in :data:`DTYPES`, and
    :func:`available` must have returned ``True``.

    Cost: one sequential pass over time, O(B L d) multiply-adds, streaming ``u`` (and a
    per-step ``lam``, and ``dot_with``) in and the output out once each: 16 bytes per complex64
    element (24 with ``dot_with``); measured on one core of a 2-core AMD EPYC at 12-20 GB/s,
    i.e. about as fast as ``torch.add`` moves the same bytes, once the output is not
    page-faulted in (see ``_alloc.py``).
    """
    B, L, d = u.shape
    lam, u = _plain(lam), _plain(u)
    h0 = None if h0 is None else _plain(h0)
    dot = None if dot_with is None else _plain(dot_with)
    out = empty_output(u)  # (B, L, d)
    acc = None
    if dot is not None:
        acc = torch.zeros(2 * d if u.is_complex() else d, dtype=torch.float64)
    if L > 0 and B > 0 and d > 0:
        chunks = _row_chunks(B, L * d)
        if len(chunks) == 1:
            _call(u.dtype, lam, u, h0, out, dot, acc, 0, B, reverse)
        else:
            accs = [None if acc is None else torch.zeros_like(acc) for _ in chunks]
            pool = _pool(len(chunks))
            jobs = [pool.submit(_call, u.dtype, lam, u, h0, out, dot, a, b0, b1, reverse)
                    for (b0, b1), a in zip(chunks, accs)]
            for job in jobs:
                job.result()
            if acc is not None:
                acc = torch.stack(accs).sum(0)  # rows are summed in float64, as in one call
    if acc is None:
        return out
    if u.is_complex():
        acc = torch.view_as_complex(acc.view(d, 2))
    return out, acc.to(u.dtype)
