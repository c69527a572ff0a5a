"""The protocol types: a :class:`Transition` (a batched map whose per-sample Jacobian is a
transition derivative) and the :class:`Driver` tensors that scale it.

A model the package does not know joins the protocol by defining
``lsc_transitions(inputs) -> list[Transition]`` (and ``lsc_input_shape``, the per-sample input
shape, to be given Gaussian inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Driver", "Transition", "DRIVER_MODES", "PROTOCOL_HELP"]

DRIVER_MODES = ("scale", "magnitude", "shift")
"""How a driver is rescaled (see :class:`Driver`)."""

PROTOCOL_HELP = (
    "supported models: nn.Sequential of nn.Linear layers and activations; nn.RNN/nn.GRU/nn.LSTM "
    "(unidirectional, no proj_size); nn.Sequential/nn.ModuleList stacks of nn.RNNCell/"
    "nn.GRUCell/nn.LSTMCell or recurrent_params cells (ALIF included), optionally with "
    "per-step modules in between; recurrent_params.RecurrentStack (residual blocks around the "
    "package's cells) and TorchRNNStack. Any other model must define `lsc_transitions(inputs) -> "
    "list[diagnostics.Transition]` (and `lsc_input_shape`, the per-sample input shape, to use "
    "Gaussian inputs)"
)


@dataclass(eq=False)
class Driver:
    r"""A tensor that scales a transition, and how a pre-trainer may rescale it.

    The rescaling itself is the pre-trainer's (:func:`optim.lsc.rescale_`); this type only
    names the tensor and the rule.

    Attributes:
        module: the module that owns the tensor.
        name: the tensor's attribute name (it may be parametrized; it is read and written
            through ``getattr`` and :func:`recurrent_params.assign_`).
        mode: ``"scale"`` multiplies the tensor by the factor $c$; ``"magnitude"`` multiplies
            the eigenvalues ``lam`` by $c$ (their phase is kept) and caps ``|lam|`` at
            ``max_magnitude``: for an exponentially parametrized ``lam = exp(-exp(nu))`` this
            moves ``nu`` to ``log(-log(c |lam|))``, never ``c * nu``; ``"shift"`` adds
            $\log c$ to the entries ``index`` (a gate's bias: $\sigma(b + \log c) \approx
            c\,\sigma(b)$ for a gate that is not saturated open).
        exponent: the driver receives $c^{\text{exponent}}$ (``1/n`` for each of ``n``
            tensors applied in series, 1 for tensors that scale different blocks of the
            Jacobian).
        index: the entries a ``"shift"`` driver moves (``None``: all).
    """

    module: nn.Module
    name: str
    mode: str = "scale"
    exponent: float = 1.0
    index: slice | None = None

    def __post_init__(self):
        if self.mode not in DRIVER_MODES:
            raise ValueError(
                f"Driver mode must be 'scale', 'magnitude' or 'shift', got {self.mode!r}")
        if not isinstance(getattr(self.module, self.name, None), torch.Tensor):
            raise ValueError(f"{type(self.module).__name__} has no tensor named {self.name!r}")

    @property
    def value(self) -> torch.Tensor:
        """The tensor's current (effective) value."""
        return getattr(self.module, self.name)

    def __repr__(self) -> str:
        extra = "" if self.exponent == 1.0 else f", exponent={self.exponent:g}"
        if self.index is not None:
            extra += f", index={self.index.start}:{self.index.stop}"
        return f"Driver({type(self.module).__name__}.{self.name}, mode={self.mode!r}{extra})"


@dataclass(eq=False)
class Transition:
    r"""One transition derivative of a model, ready to be measured.

    Attributes:
        name: a readable key, e.g. ``"layer1.time"``, ``"layer0.depth"``, ``"linear3"``.
        fn: batched map ``fn(s, *context) -> (B, m)`` with ``s`` of shape ``(B, n)``, whose
            rows are independent (row ``b`` of the output depends on row ``b`` of ``s`` and of
            each context tensor only); the transition derivative of sample ``b`` is
            ``d fn(s, *context)_b / d s_b``. It must read the model's tensors when called (so
            that gradients reach them) and accept any number of rows (the radius code
            replicates rows to batch Jacobian-vector products).
        point: ``(B, n)`` states where the Jacobians are taken (real; a complex state is given
            as ``[Re, Im]``).
        context: the other inputs of ``fn`` (e.g. ``x_t`` for a time transition), each
            batched along dimension 0 like ``point``.
        drivers: the tensors that scale this transition.
        kind: ``"time"`` or ``"depth"`` (an FFN layer, an encoder or a decoder is ``"depth"``).
        horizon: for a time transition, the number of time steps of the inputs (used by the
            ``"unbalanced"`` target).
        target: a fixed target radius for this transition (e.g. 1 for a decoder), used
            unless the user gives a per-transition dict; ``None`` follows the global target.
        floor: optional ``floor(point, *context) -> (B,)``: per sample, the radius the
            transition tends to when its drivers go to zero (an LSTM time transition:
            $\max_i f_i$, the largest forget gate at $W_{hh} = 0$). A target below it cannot
            be reached with the drivers except by degenerate weights.
        floor_why: the reason for the floor, in words.
        gates: optional ``gates(point, *context) -> (B, G)``: the gate pre-activations
            (sigmoid and tanh inputs) at the point, for saturation reports.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    point: torch.Tensor
    context: tuple[torch.Tensor, ...] = ()
    drivers: Sequence[Driver] = field(default_factory=tuple)
    kind: str = "depth"
    horizon: int | None = None
    target: float | None = None
    floor: Callable[..., torch.Tensor] | None = None
    floor_why: str = ""
    gates: Callable[..., torch.Tensor] | None = None

    def __post_init__(self):
        if self.kind not in ("time", "depth"):
            raise ValueError(f"Transition kind must be 'time' or 'depth', got {self.kind!r}")
        if self.point.ndim != 2:
            raise ValueError(
                f"Transition {self.name!r}: point must be (batch, n), got shape "
                f"{tuple(self.point.shape)}"
            )
        if self.point.is_complex():
            raise TypeError(
                f"Transition {self.name!r}: give a complex state as its real view [Re, Im]"
            )
        self.context = tuple(self.context)
        for c in self.context:
            if not isinstance(c, torch.Tensor) or c.shape[:1] != self.point.shape[:1]:
                raise ValueError(f"Transition {self.name!r}: every context entry must be a "
                                 f"tensor with {self.point.shape[0]} rows")

    def __repr__(self) -> str:
        return (f"Transition({self.name!r}, kind={self.kind!r}, point={tuple(self.point.shape)}, "
                f"drivers={list(self.drivers)})")
