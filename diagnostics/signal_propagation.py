r"""Signal propagation at initialisation through a deep stack of recurrent layers.

For every recurrent layer $l$ of a model run on a batch of sequences, measure the second moment
of its hidden states and of their derivatives with respect to the layer's recurrent
parameters:

$$S^l_h = E_{b,t,i}\big[|h^l_{t,i}|^2\big], \qquad
S^l_\theta = \frac{1}{P}\sum_{p=1}^{P} E_{b,t}\Big[\Big\|\frac{\partial h^l_t}
{\partial\theta^l_p}\Big\|^2\Big],$$

with $P$ the number of (real) entries of the parameter tensor $\theta^l$, averages over the
batch, the time steps $t \ge$ ``burn_in`` and the state units $i$. For a diagonal layer and
one of its eigenvalue parameters each $\theta_p$ moves one state $h_p$ only, so
$S_\theta$ is the per-eigenvalue $E|\partial h_{t,p}/\partial\theta_p|^2$ of
:func:`~diagnostics.memory_sensitivity`; for a dense parameter (a GRU's recurrent weights)
it is the mean over weights of the squared norm of the state's derivative.

Both are computed by forward-mode automatic differentiation of the layer alone on the input
it received in the stack (its own parameters do not change that input: the stack is causal
in depth), with Rademacher tangents $v$: $E_v\|Jv\|^2 = \|J\|_F^2$, exact with one probe when
$J$ is diagonal.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", https://arxiv.org/abs/2405.21064 (section 5, signal propagation in
    deep recurrent networks at initialisation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call

from diagnostics.memory_sensitivity import _eigenvalue_parameters
from recurrent_params.scan import linear_scan

__all__ = ["SignalPropagationReport", "signal_propagation", "recurrent_layers"]

_TORCH_RNNS = (nn.GRU, nn.RNN, nn.LSTM)


@dataclass
class SignalPropagationReport:
    """Per-layer moments of a stack's hidden states (lists indexed by layer, bottom first).

    Attributes:
        layers: the layers' class names.
        second_moment: $E|h_t|^2$ per layer (mean over batch, time, state units).
        input_second_moment: $E|x_t|^2$ of each layer's input (mean over features).
        sensitivity: per layer, parameter label -> $\\frac1P\\sum_p E\\|\\partial h_t/
            \\partial\\theta_p\\|^2$.
        num_parameters: per layer, parameter label -> $P$.
        exact: per layer, label -> whether the value is exact (diagonal Jacobian) or a
            Hutchinson estimate over ``probes`` tangents.
        length, batch_size, burn_in, probes: the measurement's size.
    """

    layers: list[str]
    second_moment: list[float]
    input_second_moment: list[float]
    sensitivity: list[dict[str, float]] = field(default_factory=list)
    num_parameters: list[dict[str, int]] = field(default_factory=list)
    exact: list[dict[str, bool]] = field(default_factory=list)
    length: int = 0
    batch_size: int = 0
    burn_in: int = 0
    probes: int = 1

    def to_dict(self) -> dict:
        """A JSON-friendly copy (plain lists, dicts and numbers)."""
        return {
            "layers": list(self.layers),
            "second_moment": list(self.second_moment),
            "input_second_moment": list(self.input_second_moment),
            "sensitivity": [dict(s) for s in self.sensitivity],
            "num_parameters": [dict(n) for n in self.num_parameters],
            "exact": [dict(e) for e in self.exact],
            "length": self.length,
            "batch_size": self.batch_size,
            "burn_in": self.burn_in,
            "probes": self.probes,
        }

    def __repr__(self) -> str:
        rows = [f"SignalPropagationReport(batch_size={self.batch_size}, length={self.length}, "
                f"burn_in={self.burn_in}, probes={self.probes})"]
        for i, name in enumerate(self.layers):
            sens = ", ".join(f"E|dh/d{k}|^2={v:.4g}" for k, v in self.sensitivity[i].items())
            rows.append(f"  layer {i + 1} {name}: E|x|^2={self.input_second_moment[i]:.4g}, "
                        f"E|h|^2={self.second_moment[i]:.4g}, {sens}")
        return "\n".join(rows)


def _is_diagonal(layer: nn.Module) -> bool:
    lam, B = getattr(layer, "lam", None), getattr(layer, "B", None)
    return isinstance(lam, torch.Tensor) and lam.dim() == 1 and isinstance(B, torch.Tensor) \
        and B.dim() == 2


def _name(layer: nn.Module) -> str:
    """The class name, without the ``Parametrized`` prefix ``torch.nn.utils.parametrize`` adds."""
    cls = type(layer)
    return cls.__bases__[0].__name__ if cls.__name__.startswith("Parametrized") else cls.__name__


def _is_known(layer: nn.Module) -> bool:
    return isinstance(layer, _TORCH_RNNS) or _is_diagonal(layer)


def recurrent_layers(model: nn.Module) -> list[nn.Module]:
    """The recurrent layers of ``model`` that :func:`signal_propagation` measures by default.

    In registration order (bottom of a stack first): the package's diagonal cells (a 1-D
    eigenvalue tensor ``lam`` and an input matrix ``B``: :class:`~recurrent_params.LRU`,
    :class:`~recurrent_params.DiagonalRNN`) and one-layer ``nn.GRU`` / ``nn.RNN`` /
    ``nn.LSTM`` modules. A layer inside a found layer is not listed again.

    Examples:
        >>> from recurrent_params import LRU, RecurrentStack
        >>> model = RecurrentStack.of(lambda d: LRU(d, 8), depth=3, d_model=4, d_input=1,
        ...                           d_output=2)
        >>> [type(m).__name__ for m in recurrent_layers(model)]  # parametrize renames the class
        ['ParametrizedLRU', 'ParametrizedLRU', 'ParametrizedLRU']
    """
    found: list[nn.Module] = []
    inside: set[int] = set()
    for module in model.modules():
        if id(module) in inside:
            continue
        if _is_known(module):
            found.append(module)
            inside.update(id(m) for m in module.modules())
    return found


def _default_states(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """All hidden states ``(B, L, N)`` of a known layer on its input ``x`` ``(B, L, d)``."""
    if isinstance(layer, _TORCH_RNNS):
        if not layer.batch_first:
            return layer(x.transpose(0, 1))[0].transpose(0, 1)
        return layer(x)[0]
    B = layer.B  # effective input matrix (gamma(lam) folded in), (N, d)
    u = x.to(B.dtype) @ B.transpose(0, 1)  # (B, L, N)
    return linear_scan(layer.lam, u)


class _States(nn.Module):
    """``forward(x)``: the layer's state sequence, so ``functional_call`` can swap its tensors."""

    def __init__(self, layer: nn.Module, states: Callable[[nn.Module, torch.Tensor],
                                                        torch.Tensor]):
        super().__init__()
        self.layer = layer
        self._states = states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._states(self.layer, x)


def _default_parameters(layer: nn.Module) -> dict[str, tuple[str, complex, bool]]:
    """label -> (parameter path in the layer, tangent direction, Jacobian is diagonal)."""
    if isinstance(layer, _TORCH_RNNS):
        return {"weight_hh": ("weight_hh_l0", 1.0, False)}
    found = _eigenvalue_parameters(layer, "lam")
    if set(found) == {"lam.re", "lam.im"}:  # holomorphic: both directions have one modulus
        return {"lam": (found["lam.re"][0], 1.0, True)}
    return {label: (path, direction, True) for label, (path, direction) in found.items()}


def _last_state(output) -> torch.Tensor | None:
    """The last state a layer returned: cells ``(y, h_T)``; torch RNNs ``(y, h_n)``."""
    if not isinstance(output, tuple) or len(output) != 2:
        return None
    state = output[1]
    if isinstance(state, tuple):  # LSTM (h_n, c_n)
        state = state[0]
    if not isinstance(state, torch.Tensor):
        return None
    return state[-1] if state.dim() == 3 else state  # torch: (num_layers, B, H)


def _check_args(inputs, burn_in, probes, layers_given) -> None:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"signal_propagation: inputs must be a tensor (batch, length, ...), "
                         f"got {got}")
    length = inputs.shape[1]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 0 <= burn_in < length:
        raise ValueError(f"signal_propagation: burn_in must be an int in [0, {length - 1}] "
                         f"(below the length {length}), got {burn_in!r}")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"signal_propagation: probes must be a positive int, got {probes!r}")
    if layers_given is not None and (isinstance(layers_given, nn.Module)
                                     or not all(isinstance(m, nn.Module) for m in layers_given)):
        raise TypeError("signal_propagation: layers must be a sequence of modules (the "
                        "recurrent layers inside model)")


def signal_propagation(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[nn.Module] | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
    states: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    burn_in: int = 0,
    probes: int = 2,
    generator: torch.Generator | None = None,
) -> SignalPropagationReport:
    r"""Measure $E|h_t|^2$ and $E\|\partial h_t/\partial\theta\|^2$ per recurrent layer.

    ``model(inputs)`` runs once without gradients while forward pre-hooks record each
    layer's input sequence; then each layer alone is differentiated in forward mode on that
    input (see the module docstring for the definitions). Parameters of the other layers are
    untouched, so the result is exactly the derivative inside the stack. Use it on a model at
    initialisation (the curse-of-memory paper's Section 5) or at any point of training.

    Hidden states of the known layers (see :func:`recurrent_layers`):

    * diagonal cells: $h_t = \lambda \odot h_{t-1} + B x_t$ with ``cell.B`` the effective
      input matrix (the input normalisation $\gamma(\lambda)$ included), recomputed on
      :func:`~recurrent_params.linear_scan` (a ``"fft"``-mode cell gives the same states);
      derivatives with respect to the originals of ``lam``'s parametrization (``nu``,
      ``theta_log`` for the LRU) or, for a plain complex ``lam``, $|\partial h/\partial
      \lambda|^2$ under the label ``lam`` (the derivative along the real direction; the
      imaginary one has the same modulus, the recurrence is holomorphic in $\lambda$);
    * one-layer ``nn.GRU`` / ``nn.RNN`` / ``nn.LSTM``: the output sequence (the hidden state
      $h_t$); derivative with respect to ``weight_hh_l0`` (all gates' recurrent weights).

    Every layer must be called in sequence mode, once per ``model(inputs)``, and the states
    recomputed here must end where the layer's own last state does (checked; a mismatch
    raises rather than report another quantity).

    Args:
        model: the network; ``model(inputs)`` must run every layer.
        inputs: a batch of sequences, ``(batch, length, ...)`` as ``model`` takes them.
        layers: the recurrent layers to measure, bottom first; default
            ``recurrent_layers(model)``.
        parameters: label -> name of a parameter of each layer (e.g.
            ``{"bias_hh": "bias_hh_l0"}``) to differentiate instead of the defaults above;
            these are treated as dense (estimated with ``probes`` tangents).
        states: ``states(layer, x) -> (batch, length, N)``, the hidden states of any other
            kind of layer on its input ``x`` (its tensors must be read from ``layer``, so the
            tangents reach them).
        burn_in: time steps left out of the averages (the start, before the states are
            stationary); 0 averages over the whole sequence, as a loss does.
        probes: Rademacher tangents per non-diagonal parameter (Hutchinson estimate of
            $\|J\|_F^2$, relative standard error about $\sqrt{2/\text{probes}}$ per batch
            element and step, averaged over them); diagonal Jacobians use one tangent, exact.
        generator: random generator for the tangents.

    Returns:
        A :class:`SignalPropagationReport`.

    Raises:
        ValueError: no recurrent layer found, a layer not called (or called twice) by
            ``model(inputs)``, a layer of unknown kind without ``states``, a missing
            parameter, bad ``burn_in`` / ``probes``, or recomputed states that do not match
            the layer's own.
        TypeError: ``layers`` is not a sequence of modules.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (section 5).

    Examples:
        >>> import torch
        >>> from recurrent_params import DiagonalRNN, assign_
        >>> cell = DiagonalRNN(1, 1, 1).double()
        >>> assign_(cell, "lam", torch.tensor([0.5 + 0j], dtype=torch.complex128))
        >>> assign_(cell, "B", torch.tensor([[1.0 + 0j]], dtype=torch.complex128))
        >>> x = torch.ones(1, 200, 1, dtype=torch.float64)  # h_t -> 1 / (1 - 0.5) = 2
        >>> report = signal_propagation(cell, x, burn_in=100)
        >>> round(report.second_moment[0], 6)  # h^2 = 4
        4.0
        >>> round(report.sensitivity[0]["lam"], 6)  # (dh/dlam)^2 = (1 / (1 - 0.5)^2)^2
        16.0
    """
    _check_args(inputs, burn_in, probes, layers)
    layers = list(recurrent_layers(model) if layers is None else layers)
    if not layers:
        raise ValueError(f"signal_propagation: no recurrent layer found in "
                         f"{type(model).__name__}; pass layers=[...] (and states=...)")
    for i, layer in enumerate(layers):
        if states is None and not _is_known(layer):
            raise ValueError(f"signal_propagation: layer {i + 1} ({_name(layer)}) is "
                             "not a diagonal cell or a torch RNN; pass states=fn(layer, x)")
        if isinstance(layer, _TORCH_RNNS) and layer.num_layers != 1:
            raise ValueError(f"signal_propagation: layer {i + 1} is a {layer.num_layers}-layer "
                             f"{type(layer).__name__}; build one module per layer to see each")

    seen: dict[int, list] = {i: [] for i in range(len(layers))}
    handles = []
    for i, layer in enumerate(layers):
        def pre(module, args, i=i):
            seen[i].append([args[0].detach(), None])

        def post(module, args, output, i=i):
            seen[i][-1][1] = _last_state(output)

        handles.append(layer.register_forward_pre_hook(pre))
        handles.append(layer.register_forward_hook(post))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()

    state_fn = states or _default_states
    report = SignalPropagationReport(layers=[], second_moment=[], input_second_moment=[],
                                     length=inputs.shape[1], batch_size=inputs.shape[0],
                                     burn_in=burn_in, probes=probes)
    for i, layer in enumerate(layers):
        if len(seen[i]) != 1:
            raise ValueError(f"signal_propagation: layer {i + 1} ({_name(layer)}) was "
                             f"called {len(seen[i])} times by model(inputs); expected once")
        x, last = seen[i][0]
        if x.dim() != 3:
            raise ValueError(f"signal_propagation: layer {i + 1} got an input of shape "
                             f"{tuple(x.shape)}; expected (batch, length, features)")
        x_probe = x.transpose(0, 1) if isinstance(layer, _TORCH_RNNS) and not layer.batch_first \
            else x
        runner = _States(layer, state_fn)
        with torch.no_grad():
            h = runner(x_probe)  # (B, L, N)
        if last is not None and last.shape == h[:, -1].shape:
            tol = 1e-4 if h.real.dtype == torch.float32 else 1e-9
            if not torch.allclose(h[:, -1], last.to(h.dtype), rtol=tol * 10, atol=tol):
                raise ValueError(
                    f"signal_propagation: the states recomputed for layer {i + 1} "
                    f"({_name(layer)}) do not end at its own last state; pass "
                    "states=fn(layer, x) for this kind of layer")
        report.layers.append(_name(layer))
        report.input_second_moment.append(float((x[:, burn_in:].abs() ** 2).mean()))
        report.second_moment.append(float((h[:, burn_in:].abs() ** 2).mean()))

        wanted = _default_parameters(layer) if parameters is None else {
            label: (name, 1.0, False) for label, name in parameters.items()}
        params = {f"layer.{n}": p.detach() for n, p in layer.named_parameters()}
        buffers = {f"layer.{n}": b for n, b in layer.named_buffers()}
        sens, counts, exact = {}, {}, {}
        for label, (path, direction, diagonal) in wanted.items():
            key = f"layer.{path}"
            if key not in params:
                raise ValueError(f"signal_propagation: layer {i + 1} ({_name(layer)}) "
                                 f"has no parameter {path!r}")
            p = params[key]
            n_probe = 1 if diagonal else probes
            total = 0.0
            for _ in range(n_probe):
                sign = torch.randint(0, 2, p.shape, generator=generator).to(p.device)
                tangent = (2 * sign - 1).to(p.dtype) * direction
                with fwAD.dual_level():
                    dual = {**params, key: fwAD.make_dual(p, tangent)}
                    out = functional_call(runner, {**dual, **buffers}, (x_probe,))
                    dh = fwAD.unpack_dual(out).tangent
                if dh is None:  # the states do not depend on this parameter
                    dh = torch.zeros_like(out)
                total += float((dh[:, burn_in:].abs() ** 2).sum(-1).mean())
            counts[label] = p.numel()
            sens[label] = total / n_probe / p.numel()
            exact[label] = diagonal
        report.sensitivity.append(sens)
        report.num_parameters.append(counts)
        report.exact.append(exact)
    return report
