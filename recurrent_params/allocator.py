"""Keep freed host memory in the process instead of handing it back to the system.

A training step around the scan allocates and frees several tensors of the size of the whole
batch (activations, their gradients, the loss's temporaries). glibc serves every block above
its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps it on free, so each step
page-faults all of that memory in again; measured on a 2-core KVM guest (one thread, complex64,
16 x 4096 x 256): ``linear_scan`` forward + backward with the loss ``(h * g).real.sum()`` took
270 ms, 5.9x the scan's memory-traffic floor, and 152 ms (3.4x) once freed memory stayed in
the heap; with ``h.real.sum()`` 108 -> 83 ms. The remaining gap is the loss's own passes over
memory, not the allocator.

:func:`keep_freed_memory` asks glibc (``mallopt``) to take every block from the heap
(``M_MMAP_MAX = 0``) and never trim it (``M_TRIM_THRESHOLD`` at its maximum), which is what a
caching allocator (jemalloc, tcmalloc, torch's CUDA allocator) does. It changes the whole
process, so the library never calls it on import: the ``recurrent-params`` command line does
(``RECURRENT_PARAMS_KEEP_FREED_MEMORY=0`` turns that off), and a user's training script may.
The cost is that the process's resident memory stays at its peak. Elsewhere than glibc it does
nothing and returns ``False``; the same effect comes from starting Python with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>`` or under ``LD_PRELOAD`` of jemalloc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_GLIBC_MMAP_MAX_DEFAULT = 65536
_GLIBC_TRIM_DEFAULT = 128 * 1024


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs without mallopt
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def keep_freed_memory(enable: bool = True) -> bool:
    """Keep (or, with ``enable=False``, return to glibc's defaults) freed host memory.

    Args:
        enable: ``True`` serves every allocation from the heap and never trims it; ``False``
            restores glibc's default settings (mmap for large blocks, trim at 128 KiB).

    Returns:
        Whether the setting took effect (``False`` where the C library is not glibc).

    Examples:
        >>> keep_freed_memory() in (True, False)
        True
        >>> keep_freed_memory(False) in (True, False)
        True
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    if enable:
        ok = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    else:
        ok = mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX_DEFAULT) and mallopt(
            _M_TRIM_THRESHOLD, _GLIBC_TRIM_DEFAULT)
    return bool(ok)
