"""The pre-trainer's batches, and the seeds of its random streams.

A batch comes from the user's ``inputs`` (one tensor, a list of batches, or any iterable such
as a ``DataLoader``, cycled; an ``(x, y)`` item gives ``x``) or, without inputs, from standard
Gaussian inputs of the model's input shape (:func:`diagnostics.transitions.gaussian_inputs`).
Every batch is moved to the model's device and floating dtype.

A user batch is checked before it reaches the model: an empty batch (no sample or no time
step), a list of no batches, a batch on the ``meta`` device (no data), and, for the models the
package traces itself (an FFN or a stack whose first layer is an ``nn.Linear`` or a cell,
``nn.RNN``/``GRU``/``LSTM``), a non-real-floating dtype or a feature size other than the
model's are refused with the shape the model expects; a model with ``lsc_input_shape`` is
checked against it (number of dimensions and feature size).

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

from diagnostics.transitions import DEFAULT_SEQ_LEN, gaussian_inputs, input_shape
from recurrent_params import RecurrentCell
from recurrent_params.seeding import mix_seed

__all__ = ["BatchSource", "expected_layout", "final_seed", "rank_seed"]


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
        if isinstance(inputs, list | tuple) and not inputs:
            raise ValueError(f"inputs is an empty {type(inputs).__name__}: give at least one "
                             "batch, or inputs=None for Gaussian inputs")
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
        if src is not None and not final:
            self._check(x, self.index - 1)
        if self.like is not None:
            x = x.to(device=self.like.device,
                     dtype=self.like.dtype if x.is_floating_point() else None)
        if not final:
            self.last = x
        return x

    def _check(self, x: torch.Tensor, index: int) -> None:
        """Refuse a user batch the model cannot be measured on, naming the expected shape."""
        what = f"input batch {index} (shape {tuple(x.shape)}, {x.dtype})"
        if x.is_meta:
            raise ValueError(f"{what} is on the meta device: it holds no data")
        expected = expected_layout(self.model, self.seq_len)
        batch_dim = 1 if isinstance(self.model, nn.RNNBase) and not self.model.batch_first else 0
        if x.numel() == 0 and x.ndim > batch_dim and x.shape[batch_dim] == 0:
            raise ValueError(f"{what} has no sample: a batch needs at least one")
        if x.numel() == 0:
            raise ValueError(f"{what} is empty" + (
                "" if expected is None else f"; the model takes {expected[0]}"))
        if expected is None:
            return
        layout, shape, exact_ndim, floating = expected
        if floating and (not x.is_floating_point() or x.is_complex()):
            hint = ("give a complex signal as real features" if x.is_complex()
                    else "convert with .float()")
            raise TypeError(f"{what}: the model takes real floating-point batches {layout}, "
                            f"got {x.dtype} ({hint})")
        ndim_ok = x.ndim == 1 + len(shape) if exact_ndim else x.ndim >= 1 + len(shape)
        if not ndim_ok or x.shape[-1] != shape[-1]:
            raise ValueError(f"{what} does not fit the model: it takes batches {layout}")

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


def expected_layout(model: nn.Module, seq_len: int = DEFAULT_SEQ_LEN
                    ) -> tuple[str, tuple[int, ...], bool, bool] | None:
    """What a user batch of ``model`` must look like, or ``None`` when it cannot be told.

    Returns:
        ``(layout, shape, exact_ndim, floating)``: the layout in words (e.g.
        ``"(B, T, 3) (batch_first=True)"``), the per-sample shape whose last size (the
        features) must match, whether the number of dimensions must be exactly
        ``1 + len(shape)`` (a feed-forward network also takes extra leading dimensions), and
        whether the batch must be real floating point (models that declare
        ``lsc_input_shape`` may take integer tokens).
    """
    if hasattr(model, "lsc_input_shape"):
        shape = tuple(model.lsc_input_shape)
        return f"(B, *lsc_input_shape) = (B, {', '.join(map(str, shape))})", shape, True, False
    first = model
    if isinstance(model, nn.Sequential | nn.ModuleList):
        if len(model) == 0:
            return None
        first = model[0]
    if isinstance(model, nn.RNNBase):
        d = model.input_size
        layout = ("(B, T, {d}) (batch_first=True)" if model.batch_first
                  else "(T, B, {d}) (batch_first=False)").format(d=d)
        return layout, (seq_len, d), True, True
    if isinstance(first, nn.RNNCellBase | RecurrentCell):
        shape = input_shape(model, seq_len)
        return f"(B, T, {shape[-1]})", shape, True, True
    if isinstance(first, nn.Linear) and isinstance(model, nn.Sequential | nn.ModuleList):
        return f"(B, {first.in_features})", (first.in_features,), False, True
    return None
