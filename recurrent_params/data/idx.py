"""Reading IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number ``0x00 0x00 T D`` (``T`` the element type, ``D`` the
number of dimensions), then ``D`` big-endian uint32 sizes, then the elements in row-major
(C) order, big-endian. MNIST's images are ``0x00000803`` (uint8, 3 dimensions: count, 28,
28) and its labels ``0x00000801`` (uint8, 1 dimension). Files may be gzip-compressed
(``*-ubyte.gz``, detected from the gzip magic bytes, not the name).

References:
    LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (the IDX format).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from recurrent_params.data.errors import DataIntegrityError

__all__ = ["read_idx", "write_idx"]

# IDX element type code -> big-endian numpy dtype
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(2)
    try:
        if head == _GZIP_MAGIC:
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip stream
        raise DataIntegrityError(f"{path}: cannot decompress ({exc})") from exc


def read_idx(path: str | Path) -> torch.Tensor:
    """Read one IDX file (plain or gzip-compressed) into a tensor of the shape its header gives.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        A tensor of the header's shape, in the file's element type (``torch.uint8`` for MNIST),
        in the file's (row-major) order.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        DataIntegrityError: when the magic number is not an IDX one, or the payload is shorter or
            longer than the header's sizes say.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-ubyte")
        >>> write_idx(path, torch.arange(6, dtype=torch.uint8).reshape(2, 3))
        >>> read_idx(path)
        tensor([[0, 1, 2],
                [3, 4, 5]], dtype=torch.uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataIntegrityError(
            f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, expected "
            "00 00 <type> <ndim> with type one of 08 09 0b 0c 0d 0e)")
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataIntegrityError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        raise DataIntegrityError(
            f"{path}: header says shape {tuple(shape)} ({expected} bytes in all), the file has "
            f"{len(data)} bytes")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | Path, tensor: torch.Tensor, *, compress: bool = False) -> None:
    """Write a tensor as an IDX file (the inverse of `read_idx`; for tests and subsets).

    Args:
        path: the file to write.
        tensor: uint8, int8, int16, int32, float32 or float64 values, any number of dimensions.
        compress: gzip the file (as the ``*-ubyte.gz`` downloads are).

    Raises:
        TypeError: when ``tensor`` has a dtype IDX cannot hold.
    """
    array = tensor.detach().cpu().numpy()
    code = _CODES.get(array.dtype)
    if code is None:
        raise TypeError(f"tensor: IDX holds uint8, int8, int16, int32, float32 or float64, "
                        f"got {tensor.dtype}")
    payload = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
               + array.astype(_TYPES[code], copy=False).tobytes())
    if compress:
        payload = gzip.compress(payload)
    Path(path).write_bytes(payload)
