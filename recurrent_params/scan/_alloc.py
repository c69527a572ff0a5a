"""Private allocation helper: large CPU outputs of the scan, reused instead of page-faulted.

Filling a fresh multi-megabyte CPU tensor is bound by page faults on many Linux machines:
glibc maps every block over 32 MiB afresh (and smaller ones often too), so each call of the
scan would fault its outputs in again. Measured on a 2-core KVM guest (complex64,
16 x 4096 x 256 = 134 MB): filling fresh 4 KiB pages 80-140 ms, fresh transparent huge pages
26 ms typically but up to 670 ms, touched memory 10-12 ms; the compiled scan itself reads and
writes such a tensor in about 20 ms.

So outputs of at least 4 MiB come from a small cache of buffers this module allocated
before: a buffer is handed out again only once nothing references it any more (no tensor,
view, saved tensor, gradient, storage object or NumPy array: its storage's use count and the
Python reference count of the cached storage object are back to their idle values), exactly
as a caching allocator would reuse freed memory. The cache holds at most
``RECURRENT_PARAMS_SCAN_CACHE_MB`` MiB (default 1024; ``0`` switches it off), evicts idle
buffers oldest first when full, and :func:`empty_cache` releases every idle buffer. A fresh
buffer is advised to use transparent huge pages (``MADV_HUGEPAGE``, where the kernel offers
them in ``madvise`` mode), which cuts its first-touch faults by 512.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import torch

__all__ = ["empty_output", "empty_cache"]

_MADV_HUGEPAGE = 14
_PAGE = 4096
_MIN_BYTES = 1 << 22  # below 4 MiB the allocator's cached pages are fine
_madvise = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _madvise = _libc.madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - depends on the platform
        _madvise = None

_lock = threading.Lock()
_cache: list[list] = []  # [storage, idle Python reference count], oldest first


def _cache_limit() -> int:
    try:
        return int(float(os.environ.get("RECURRENT_PARAMS_SCAN_CACHE_MB", "1024")) * 2**20)
    except ValueError:
        return 1 << 30


def _refs(entry: list) -> tuple[int, int]:
    """(Python references to the cached storage object, strong references to its memory)."""
    storage = entry[0]
    return sys.getrefcount(storage), torch._C._storage_Use_Count(storage._cdata)


def _idle(entry: list) -> bool:
    return _refs(entry) == (entry[1], 1)


def _advise_huge_pages(storage: torch.UntypedStorage) -> None:
    if _madvise is None:
        return
    ptr, nbytes = storage.data_ptr(), storage.nbytes()
    start = -(-ptr // _PAGE) * _PAGE
    length = (ptr + nbytes - start) // _PAGE * _PAGE
    if length > 0:
        _madvise(start, length, _MADV_HUGEPAGE)  # advice only: failure changes nothing


def _on(storage: torch.UntypedStorage, like: torch.Tensor) -> torch.Tensor:
    """A new contiguous tensor shaped like ``like`` on ``storage`` (not a view of anything)."""
    strides, step = [], 1
    for size in reversed(like.shape):
        strides.append(step)
        step *= max(size, 1)
    out = torch.empty(0, dtype=like.dtype)
    return out.set_(storage, 0, like.shape, tuple(reversed(strides)))


def empty_output(like: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(like)`` (contiguous); large CPU outputs come from the buffer cache."""
    nbytes = like.numel() * like.element_size()
    if like.device.type != "cpu" or nbytes < _MIN_BYTES or like.is_quantized:
        return torch.empty_like(like, memory_format=torch.contiguous_format)
    limit = _cache_limit()
    with _lock:
        if limit <= 0:  # switched off: let go of idle buffers, allocate afresh
            _cache[:] = [e for e in _cache if not _idle(e)]
            storage = torch.UntypedStorage(nbytes)
            _advise_huge_pages(storage)
            return _on(storage, like)
        for i, entry in enumerate(_cache):
            if entry[0].nbytes() == nbytes and _idle(entry):
                _cache.append(_cache.pop(i))  # most recently used last
                return _on(entry[0], like)
        held = sum(entry[0].nbytes() for entry in _cache)
        for entry in [e for e in _cache if _idle(e)]:  # make room: idle buffers, oldest first
            if held + nbytes <= limit:
                break
            _cache.remove(entry)
            held -= entry[0].nbytes()
        storage = torch.UntypedStorage(nbytes)
        _advise_huge_pages(storage)
        if held + nbytes <= limit:
            entry = [storage, 0]
            del storage
            entry[1] = _refs(entry)[0]  # idle: no tensor on it yet
            _cache.append(entry)
            storage = entry[0]
        return _on(storage, like)


def empty_cache() -> int:
    """Release the idle buffers of the scan's CPU output cache; returns the bytes released.

    Buffers still referenced (by a tensor, a view, autograd, a gradient...) stay cached and
    become reusable once dropped. Costs one pass over the cache (a few entries).

    Examples:
        >>> from recurrent_params.scan import empty_cache
        >>> empty_cache() >= 0
        True
    """
    with _lock:
        idle = [e for e in _cache if _idle(e)]
        for entry in idle:
            _cache.remove(entry)
        return sum(entry[0].nbytes() for entry in idle)
