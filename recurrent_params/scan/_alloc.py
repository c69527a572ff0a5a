"""Private allocation helper: large CPU buffers backed by transparent huge pages.

Filling a fresh multi-megabyte CPU tensor is bound by page faults on many Linux machines
(measured here: ~1 GB/s for 4 KiB pages). Where transparent huge pages are in ``madvise``
mode, advising the buffer with ``MADV_HUGEPAGE`` before the first write cuts the number of
faults by 512 (measured: 134 MB filled in 47 ms instead of 110 ms). The advice only concerns
the buffer itself; anywhere it is unavailable (other OS, no libc, an error) the plain
``torch.empty`` is used.
"""

from __future__ import annotations

import ctypes
import sys

import torch

__all__ = ["empty_output"]

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


def empty_output(like: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(like)`` (contiguous), huge-page advised when large and on CPU."""
    out = torch.empty_like(like, memory_format=torch.contiguous_format)
    nbytes = out.numel() * out.element_size()
    if _madvise is None or out.device.type != "cpu" or nbytes < _MIN_BYTES:
        return out
    ptr = out.data_ptr()
    start = -(-ptr // _PAGE) * _PAGE
    length = (ptr + nbytes - start) // _PAGE * _PAGE
    if length > 0:
        _madvise(start, length, _MADV_HUGEPAGE)  # advice only: failure changes nothing
    return out
