"""keep_freed_memory: large blocks come from the heap and stay there (glibc only)."""

import ctypes
import ctypes.util
import sys

import pytest
import torch

from recurrent_params.allocator import keep_freed_memory


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    fn = getattr(libc, "mallinfo2", None)
    if fn is None:
        return None
    fn.restype = _Mallinfo2
    return fn


@pytest.fixture
def mallinfo():
    fn = _mallinfo2()
    if fn is None or not keep_freed_memory(False):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    yield fn
    keep_freed_memory(False)


def test_default_glibc_maps_large_blocks(mallinfo):
    before = mallinfo().hblkhd
    t = torch.empty(64 * 2**20, dtype=torch.uint8)  # 64 MiB: above any mmap threshold
    assert mallinfo().hblkhd >= before + 64 * 2**20
    del t


def test_kept_memory_serves_large_blocks_from_the_heap_and_keeps_them(mallinfo):
    assert keep_freed_memory(True)
    mapped = mallinfo().hblkhd
    t = torch.empty(64 * 2**20, dtype=torch.uint8)
    t.fill_(1)
    assert mallinfo().hblkhd == mapped  # not a fresh mmap
    arena = mallinfo().arena
    del t
    info = mallinfo()
    assert info.arena == arena  # freed, but not trimmed back to the system
    assert info.fordblks >= 64 * 2**20  # held by the process as free heap, ready for reuse
    # (whether the next request reuses that very chunk depends on what else the process
    # allocated meanwhile: glibc's business, not asserted here)
