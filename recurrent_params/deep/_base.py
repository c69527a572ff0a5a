"""Private base of the deep models: input encoder, final norm, pooling / task head and state."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recurrent_params.complex_safe import ComplexSafeModule
from recurrent_params.deep.block import NORMS, make_norm
from recurrent_params.deep.state import StackState

__all__ = ["TASKS", "POOLINGS", "SequenceModel"]

TASKS = ("classify", "lm")
"""Accepted ``task`` names: one output per sequence, or one per step (causal LM)."""
POOLINGS = ("mean", "last")
"""Accepted ``pooling`` names for ``task="classify"``."""


def _positive_int(name: str, owner: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{owner}: expected {name} a positive int, got {v!r}")


class SequenceModel(ComplexSafeModule):
    """Encoder -> body (subclass) -> final norm -> pooling -> linear head.

    Subclasses build ``self.body`` and implement ``_body(z, layers)``,
    ``_body_step(z_t, layers)`` and ``_body_initial(batch)``; ``layers`` is the body's state
    (``None`` for its default).
    """

    def __init__(
        self,
        *,
        d_model: int,
        d_input: int | None,
        vocab_size: int | None,
        d_output: int | None,
        task: str,
        pooling: str | None,
        norm: str,
    ):
        super().__init__()
        name = type(self).__name__
        _positive_int("d_model", name, d_model)
        if task not in TASKS:
            raise ValueError(f"{name}: task must be one of {TASKS}, got {task!r}")
        if (d_input is None) == (vocab_size is None):
            raise ValueError(
                f"{name}: give exactly one of d_input (real-valued inputs) and vocab_size "
                f"(token ids), got d_input={d_input!r}, vocab_size={vocab_size!r}"
            )
        if task == "lm":
            if pooling is not None:
                raise ValueError(
                    f"{name}: task='lm' gives one output per step and takes no pooling, got "
                    f"pooling={pooling!r}"
                )
            if d_output is None and vocab_size is not None:
                d_output = vocab_size  # next-token logits
        else:
            pooling = "mean" if pooling is None else pooling
            if pooling not in POOLINGS:
                raise ValueError(f"{name}: pooling must be one of {POOLINGS}, got {pooling!r}")
        if d_output is None:
            raise ValueError(f"{name}: expected d_output (number of classes or outputs)")
        _positive_int("d_output", name, d_output)
        if norm not in NORMS:
            raise ValueError(f"{name}: norm must be one of {NORMS}, got {norm!r}")
        self.d_model, self.d_input, self.vocab_size = d_model, d_input, vocab_size
        self.d_output, self.task, self.pooling = d_output, task, pooling
        if vocab_size is not None:
            _positive_int("vocab_size", name, vocab_size)
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model)
        else:
            _positive_int("d_input", name, d_input)
            self.encoder = nn.Linear(d_input, d_model)
        self.norm = make_norm(norm, d_model)
        self.head = nn.Linear(d_model, d_output)

    # --- the body (subclasses) -------------------------------------------------------------
    def _body(self, z: torch.Tensor, layers: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError  # pragma: no cover

    def _body_step(self, z_t: torch.Tensor, layers: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError  # pragma: no cover

    def _body_initial(self, batch_size: int) -> Any:
        raise NotImplementedError  # pragma: no cover

    # --- checks ----------------------------------------------------------------------------
    def _encode(self, x: torch.Tensor, sequence: bool) -> torch.Tensor:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(x).__name__}")
        if self.vocab_size is not None:
            expected = "(batch, length)" if sequence else "(batch,)"
            if x.dim() != (2 if sequence else 1):
                raise ValueError(
                    f"{name}: expected token ids of shape {expected}, got {tuple(x.shape)}"
                )
            if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
                raise TypeError(f"{name}: expected integer token ids, got {x.dtype}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size):
                raise ValueError(
                    f"{name}: expected token ids in [0, {self.vocab_size}), got "
                    f"min {int(x.min())}, max {int(x.max())}"
                )
        else:
            expected = f"(batch, length, {self.d_input})" if sequence else \
                f"(batch, {self.d_input})"
            if x.dim() != (3 if sequence else 2) or x.shape[-1] != self.d_input:
                raise ValueError(
                    f"{name}: expected inputs of shape {expected}, got {tuple(x.shape)}"
                )
            dtype = self.encoder.weight.dtype
            if x.dtype != dtype:
                raise TypeError(f"{name}: expected input dtype {dtype}, got {x.dtype}")
        if sequence and x.shape[1] == 0:
            raise ValueError(f"{name}: expected a sequence of length >= 1, got 0")
        return self.encoder(x)

    def _check_state(self, state: StackState | None) -> StackState | None:
        if state is None:
            return None
        if not isinstance(state, StackState):
            raise TypeError(
                f"{type(self).__name__}: expected state a StackState (from forward, step or "
                f"initial_state), got {type(state).__name__}"
            )
        return state

    # --- public API ------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> StackState:
        """The state before the first step: every layer's initial state, no steps seen."""
        _positive_int("batch_size", type(self).__name__, batch_size)
        total = None
        if self.task == "classify" and self.pooling == "mean":
            w = self.head.weight
            total = torch.zeros(batch_size, self.d_model, dtype=w.dtype, device=w.device)
        return StackState(self._body_initial(batch_size), total, 0)

    def _pool(self, f: torch.Tensor, state: StackState | None, sequence: bool):
        """Head on the normalised features ``f`` ``(B, L, d)`` or ``(B, d)``."""
        steps = (0 if state is None else state.steps) + (f.shape[1] if sequence else 1)
        if self.task == "lm":
            return self.head(f), None, steps  # (B, L, out) or (B, out)
        last = f[:, -1] if sequence else f  # (B, d)
        if self.pooling == "last":
            return self.head(last), None, steps
        total = f.sum(1) if sequence else f  # (B, d)
        if state is not None and state.total is not None:
            total = total + state.total
        return self.head(total / steps), total, steps

    def forward(
        self, x: torch.Tensor, state: StackState | None = None
    ) -> tuple[torch.Tensor, StackState]:
        """Run whole sequences.

        Args:
            x: ``(batch, length, d_input)`` real inputs, or ``(batch, length)`` integer token
                ids when the model was built with ``vocab_size``.
            state: a :class:`~recurrent_params.StackState` to continue from; ``None`` starts
                from every layer's default (zero) state.

        Returns:
            ``(out, state)``: ``out`` is ``(batch, d_output)`` for ``task="classify"`` (the
            pooled features through the head; mean pooling includes the steps of a passed
            state) and ``(batch, length, d_output)`` per-step outputs (next-token logits) for
            ``task="lm"``; ``state`` is the :class:`~recurrent_params.StackState` after the
            last step.
        """
        state = self._check_state(state)
        z = self._encode(x, sequence=True)  # (B, L, d)
        z, layers = self._body(z, None if state is None else state.layers)
        out, total, steps = self._pool(self.norm(z), state, sequence=True)
        return out, StackState(layers, total, steps)

    def step(
        self, x_t: torch.Tensor, state: StackState | None = None
    ) -> tuple[torch.Tensor, StackState]:
        """Advance one step (generation, streaming classification).

        Args:
            x_t: ``(batch, d_input)`` real inputs or ``(batch,)`` token ids.
            state: the :class:`~recurrent_params.StackState` so far; ``None`` at the start.

        Returns:
            ``(out_t, state)``: ``out_t`` ``(batch, d_output)`` is what ``forward`` would
            return for the sequence up to this step (``task="lm"``: the logits at this step).
        """
        state = self._check_state(state)
        z_t = self._encode(x_t, sequence=False)  # (B, d)
        z_t, layers = self._body_step(z_t, None if state is None else state.layers)
        out, total, steps = self._pool(self.norm(z_t), state, sequence=False)
        return out, StackState(layers, total, steps)

    def extra_repr(self) -> str:
        src = f"vocab_size={self.vocab_size}" if self.vocab_size is not None else \
            f"d_input={self.d_input}"
        pool = f", pooling={self.pooling!r}" if self.task == "classify" else ""
        return f"{src}, d_model={self.d_model}, d_output={self.d_output}, task={self.task!r}{pool}"
