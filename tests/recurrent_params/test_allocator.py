"""keep_freed_memory: large blocks come from the heap and stay there (glibc only).

Each check runs in a fresh interpreter. Whether glibc serves a large request with ``mmap``
depends on the process's heap history, not only on the settings: a free heap chunk that is
large enough (left by earlier tests, or by glibc's own dynamic mmap threshold, which rises to
32 MiB as mapped blocks are freed) serves it without a mapping. Inside the test suite's long
process that history is whatever ran before; in a fresh process it is known.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]  # the repository: ``tests._mallinfo`` imports there

_PROBE = r"""
import json, sys
import torch
from recurrent_params.allocator import keep_freed_memory
from tests._mallinfo import mallinfo2

info = mallinfo2()
if info is None:
    print(json.dumps(None)); sys.exit(0)
kept = keep_freed_memory(sys.argv[1] == "keep")
before = info()
t = torch.empty(64 * 2**20, dtype=torch.uint8)
t.fill_(1)
during = info()
del t
after = info()
print(json.dumps({"kept": kept, "mapped": [before.hblkhd, during.hblkhd, after.hblkhd],
                  "arena": [before.arena, during.arena, after.arena],
                  "in_use": [before.uordblks, during.uordblks, after.uordblks],
                  "free_after": after.fordblks}))
"""

BLOCK = 64 * 2**20  # above glibc's largest dynamic mmap threshold (32 MiB on 64-bit)


def _probe(mode: str) -> dict:
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=120, cwd=_ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result is None or not result["kept"]:
        pytest.skip("needs glibc >= 2.33 (mallinfo2, mallopt)")
    return result


def test_default_glibc_maps_large_blocks_and_unmaps_them():
    r = _probe("default")
    before, during, after = r["mapped"]
    assert during >= before + BLOCK  # a fresh mmap ...
    assert after <= during - BLOCK  # ... handed back on free


def test_kept_memory_serves_large_blocks_from_the_heap_and_keeps_them():
    r = _probe("keep")
    before, during, after = r["mapped"]
    assert during == before  # not a fresh mmap
    in_use_before, in_use_during, _ = r["in_use"]
    assert in_use_during >= in_use_before + BLOCK  # served from the heap
    _, arena_during, arena_after = r["arena"]
    assert arena_after == arena_during  # freed, but not trimmed back to the system
    assert r["free_after"] >= BLOCK  # held by the process as free heap, ready for reuse
