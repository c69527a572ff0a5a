"""The pre-trainer's batches, and the seeds of its random streams.

A batch comes from the user's ``inputs`` (one tensor, a list of batches, or any iterable such
as a ``DataLoader``, cycled; an ``(x, y)`` item gives ``x``) or, without inputs, from standard
Gaussian inputs of the model's input shape (:func:`diagnostics.transitions.gaussian_inputs`).
Every batch is moved to the model's device and floating dtype.

Seeds: a run seeded ``seed`` derives the seed of its final measurement number ``salt`` after
``step`` steps and the Gaussian stream of data-parallel rank ``r`` with
:func:`recurrent_params.seeding.mix_seed` (``step``, ``salt`` and ``rank`` strides).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from diagnostics.transitions import DEFAULT_SEQ_LEN, gaussian_inputs
from recurrent_params.seeding import mix_seed

__all__ = ["BatchSource", "final_seed", "rank_seed"]


def final_seed(seed: int, step: int, salt: int = 0) -> int:
    """Seed of the final measurement number ``salt`` of a run stopped after ``step`` steps:
    apart from the run's own generator, so that pausing changes nothing."""
    return mix_seed(seed, step=step + 1, salt=salt)


def rank_seed(seed: int, rank: int) -> int:
    """Seed of the Gaussian inputs of data-parallel rank ``rank`` (a shard of its own)."""
    return mix_seed(seed, rank=rank + 1)


class BatchSource:
    """The batches of a pre-training run, with the position to resume from.

    Args:
        model: the model (its input shape and layout, for Gaussian inputs).
        inputs: ``None`` (Gaussian), a tensor, a list/tuple of batches, or an iterable.
        batch_size: Gaussian batch size.
        seq_len: Gaussian sequence length.
        input_shape: per-sample shape of the Gaussian inputs (``None``: inferred).
        like: a tensor of the model (device and dtype of the batches), or ``None``.
    """

    def __init__(self, model: nn.Module, inputs: Any, batch_size: int,
                 seq_len: int = DEFAULT_SEQ_LEN, input_shape: tuple[int, ...] | None = None,
                 like: torch.Tensor | None = None):
        self.model, self.inputs = model, inputs
        self.batch_size, self.seq_len, self.input_shape = batch_size, seq_len, input_shape
        self.like = like
        self.index = 0  # batches drawn so far (not counting final measurements)
        self.last: torch.Tensor | None = None
        self._iter = None

    @property
    def gaussian(self) -> bool:
        """No user inputs: batches are Gaussian draws."""
        return self.inputs is None

    def next(self, generator: torch.Generator | None, final: bool = False) -> torch.Tensor:
        """The next batch (``final``: the last user batch again, or a Gaussian draw that does
        not advance the position); ``generator`` draws the Gaussian inputs."""
        src = self.inputs
        if final and src is not None and self.last is not None:
            return self.last
        if src is None:
            x = gaussian_inputs(self.model, self.batch_size, self.seq_len, generator,
                                like=self.like, shape=self.input_shape)
        elif isinstance(src, torch.Tensor):
            x = src
        elif isinstance(src, list | tuple) and src and isinstance(src[0], torch.Tensor | list
                                                                  | tuple):
            x = src[self.index % len(src)]
        else:
            x = self._next_item(src)
        if not final:
            self.index += 1
        if isinstance(x, list | tuple):
            x = x[0]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"a batch must be a tensor or an (x, ...) tuple, got "
                            f"{type(x).__name__}")
        if self.like is not None:
            x = x.to(device=self.like.device,
                     dtype=self.like.dtype if x.is_floating_point() else None)
        if not final:
            self.last = x
        return x

    def _next_item(self, src: Iterable):
        if self._iter is None:
            self._iter = iter(src)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(src)
            try:
                return next(self._iter)
            except StopIteration:
                raise ValueError("the inputs iterable yields no batch") from None

    def resume(self, index: int) -> None:
        """Continue from position ``index`` (a plain iterable is skipped ahead to it; a
        ``DataLoader`` reshuffles on its own RNG)."""
        self.index = index
        self._iter = None
        if isinstance(self.inputs, Iterable) and not isinstance(
                self.inputs, torch.Tensor | list | tuple):
            self._iter = itertools.islice(iter(self.inputs), index, None)
