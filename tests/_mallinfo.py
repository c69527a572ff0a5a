"""glibc's heap statistics (``mallinfo2``) for the tests of ``keep_freed_memory``."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


class Mallinfo2(ctypes.Structure):
    """``struct mallinfo2`` (glibc >= 2.33): ``hblkhd`` bytes in mmapped blocks, ``arena`` the
    heap's size, ``uordblks`` / ``fordblks`` its bytes in use / free."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def mallinfo2():
    """glibc's ``mallinfo2`` as a callable returning :class:`Mallinfo2`; ``None`` off Linux or
    where the C library lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    fn = getattr(libc, "mallinfo2", None)
    if fn is None:
        return None
    fn.restype = Mallinfo2
    return fn
