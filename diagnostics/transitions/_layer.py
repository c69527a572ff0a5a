"""Private: the step interface every recurrent layer is seen through, and two small helpers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from diagnostics.transitions.protocol import Driver

__all__ = ["Layer", "apply_all", "check_finite"]


class Layer:
    """A recurrent layer seen as ``step(x, s) -> (y, s_new)`` on real state vectors."""

    state_size: int
    time_drivers: tuple[Driver, ...]
    depth_drivers: tuple[Driver, ...]
    #: the entries of the state that the layer outputs (None: the output needs the input)
    output_slice: slice | None = None
    floor_why: str = ""

    def step(self, x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def output(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The layer's output at its (new) state ``s`` and the same step's input ``x``."""
        raise NotImplementedError

    def gates(self, x, s):
        return None

    def floor(self, x, s):
        """Per sample ``(B,)``: the time radius as the time drivers go to 0 (None: no floor)."""
        return None

    def initial(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.state_size)

    def roll(self, inputs: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step through ``inputs`` (B, T, d) from state ``s``: states (B, T+1, n), outputs."""
        hist, outs = [s], []
        for t in range(inputs.shape[1]):
            y, s = self.step(inputs[:, t], s)
            hist.append(s)
            outs.append(y)
        return torch.stack(hist, 1), torch.stack(outs, 1)


def apply_all(modules: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for m in modules:
        x = m(x)
    return x


def check_finite(t: torch.Tensor, what: str) -> None:
    """Raise before LAPACK sees a NaN (MKL's eigvals can crash the process on one)."""
    if not bool(torch.isfinite(t.detach()).all()):
        raise FloatingPointError(f"{what} contains NaN or inf; check the model's weights, "
                                 "states and inputs")
