"""Batching one long token stream for truncated backpropagation through time (BPTT).

The stream is cut into ``batch_size`` equal contiguous rows (the tail that does not fill a row is
dropped), giving a ``(batch, T)`` matrix; training then walks it left to right in windows of
``seq_len`` steps, target = input shifted by one token, carrying the recurrent state from one
window to the next (the word-level language-model recipe of Zaremba et al. on PTB, batch-first;
here the Brown corpus of `load_brown` stands in for PTB).

References:
    Zaremba, Sutskever & Vinyals, "Recurrent neural network regularization", arXiv 1409.2329.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["batchify", "bptt_batches"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous rows.

    Row $b$ holds tokens $bT, \\dots, bT + T - 1$ with $T = \\lfloor n / B \\rfloor$.

    Args:
        stream: 1-D token ids.
        batch_size: the number of rows $B$, at most ``len(stream)``.

    Returns:
        ``(batch_size, T)``, a view of ``stream``.

    Raises:
        ValueError: when ``stream`` is not 1-D or shorter than ``batch_size``.

    Examples:
        >>> batchify(torch.arange(10), 3)
        tensor([[0, 1, 2],
                [3, 4, 5],
                [6, 7, 8]])
    """
    batch_size = _positive_int("batch_size", batch_size)
    if stream.dim() != 1:
        raise ValueError(f"stream: expected a 1-D tensor of token ids, got shape "
                         f"{tuple(stream.shape)}")
    length = stream.shape[0] // batch_size
    if length == 0:
        raise ValueError(f"stream: {stream.shape[0]} tokens cannot fill {batch_size} rows")
    return stream[: batch_size * length].view(batch_size, length)


def bptt_batches(data: torch.Tensor, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Walk a batchified stream in windows: ``(inputs, targets)``, each ``(batch, <= seq_len)``.

    Window $i$ is columns $[i L, \\min(i L + L, T - 1))$ and its targets the same columns plus
    one, so every token but the last of each row is an input exactly once. The last window may
    be shorter.

    Args:
        data: ``(batch, T)`` from `batchify`, ``T >= 2``.
        seq_len: the truncation length $L$.

    Returns:
        An iterator of ``(inputs, targets)``, views of ``data`` (checked before the first one).

    Raises:
        ValueError: when ``data`` is not 2-D with at least two columns.

    Examples:
        >>> data = batchify(torch.arange(14), 2)        # rows 0..6 and 7..13
        >>> for x, y in bptt_batches(data, 4):
        ...     print(x.tolist(), y.tolist())
        [[0, 1, 2, 3], [7, 8, 9, 10]] [[1, 2, 3, 4], [8, 9, 10, 11]]
        [[4, 5], [11, 12]] [[5, 6], [12, 13]]
    """
    seq_len = _positive_int("seq_len", seq_len)
    if data.dim() != 2 or data.shape[1] < 2:
        raise ValueError(f"data: expected (batch, T) with T >= 2, got shape {tuple(data.shape)}")
    return _windows(data, seq_len)


def _windows(data: torch.Tensor, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    last = data.shape[1] - 1
    for start in range(0, last, seq_len):
        stop = min(start + seq_len, last)
        yield data[:, start:stop], data[:, start + 1: stop + 1]
