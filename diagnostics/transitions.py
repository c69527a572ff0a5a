"""Transition Jacobians of supported models: what they are, where they are taken, what drives them.

A *transition* maps one state of a network to the next one (REFERENCE: arXiv 2308.12075):
between consecutive layers of a feed-forward network, and, for a stacked recurrent network,
from ``s^l_{t-1}`` to ``s^l_t`` ("time") and from ``s^{l-1}_t`` to ``s^l_t`` ("depth"; for the
first layer, from the input ``x_t``). This module builds, for a model and a batch of inputs, the
list of :class:`Transition` objects: a batched function ``fn: (B, n) -> (B, m)`` whose per-sample
Jacobian is the transition derivative, the points ``(B, n)`` where it is linearised and the
tensors (:class:`Driver`) that scale it. ``diagnostics.radii`` turns them into radii and
``optim.LSCPretrainer`` rescales the drivers.

This is the public protocol for models the package does not know: define
``lsc_transitions(inputs) -> list[Transition]`` (and ``lsc_input_shape``) on the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from recurrent_params import ALIF, assign_

__all__ = ["Driver", "Transition", "model_transitions", "lsc_transitions", "gaussian_inputs",
           "first_tensor", "DEFAULT_SEQ_LEN"]

#: Sequence length of the Gaussian inputs drawn for a recurrent model when none is given.
DEFAULT_SEQ_LEN = 20


@dataclass(eq=False)
class Driver:
    r"""A tensor that scales a transition, and how to rescale it.

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
        if self.mode not in ("scale", "magnitude", "shift"):
            raise ValueError(
                f"Driver mode must be 'scale', 'magnitude' or 'shift', got {self.mode!r}")
        if not isinstance(getattr(self.module, self.name, None), torch.Tensor):
            raise ValueError(f"{type(self.module).__name__} has no tensor named {self.name!r}")

    @property
    def value(self) -> torch.Tensor:
        """The tensor's current (effective) value."""
        return getattr(self.module, self.name)

    @torch.no_grad()
    def rescale_(self, factor: float, max_magnitude: float = 1.0 - 1e-4) -> None:
        """Apply the factor $c$ = ``factor ** exponent`` according to ``mode``, in place."""
        factor = float(factor) ** self.exponent
        value = self.value.detach()
        if self.mode == "shift":
            new = value.clone()
            idx = slice(None) if self.index is None else self.index
            new[idx] += torch.log(torch.tensor(factor, dtype=torch.float64)).item()
            assign_(self.module, self.name, new)
            return
        new = value * factor
        if self.mode == "magnitude":
            mag = new.abs()
            cap = torch.clamp(mag, max=max_magnitude)
            new = torch.where(mag > max_magnitude, new * (cap / mag.clamp_min(1e-30)), new)
        assign_(self.module, self.name, new)

    @torch.no_grad()
    def shuffle_(self, generator: torch.Generator) -> torch.Tensor | None:
        """Randomly permute the entries of a 2-D ``"scale"`` tensor (a kernel), in place.

        Returns:
            The permutation of the flattened entries, or ``None`` when nothing was shuffled
            (biases, eigenvalues and gate shifts are never shuffled).
        """
        value = self.value.detach()
        if self.mode != "scale" or value.ndim != 2:
            return None
        perm = torch.randperm(value.numel(), generator=generator).to(value.device)
        assign_(self.module, self.name, value.reshape(-1)[perm].reshape(value.shape))
        return perm

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


PROTOCOL_HELP = (
    "supported models: nn.Sequential of nn.Linear layers and activations; nn.RNN/nn.GRU/nn.LSTM "
    "(unidirectional, no proj_size); nn.Sequential/nn.ModuleList stacks of nn.RNNCell/"
    "nn.GRUCell/nn.LSTMCell or recurrent_params cells (ALIF included), optionally with "
    "per-step modules in between. Any other model must define `lsc_transitions(inputs) -> "
    "list[diagnostics.Transition]` (and `lsc_input_shape`, the per-sample input shape, to use "
    "Gaussian inputs)"
)


# --------------------------------------------------------------------------------------------
# Recurrent layers: a common step interface over real state vectors.


def _is_package_cell(module: nn.Module) -> bool:
    return all(hasattr(module, a) for a in ("step", "initial_state", "d_input", "d_state"))


def _is_recurrent(module: nn.Module) -> bool:
    return isinstance(module, nn.RNNCellBase) or _is_package_cell(module)


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return nn.functional.linear(x, w, b)


def _torch_cell_step(mode: str, x, s, w_ih, w_hh, b_ih, b_hh):
    """One step of torch's RNN/GRU/LSTM equations on a real state ``s`` (``[h, c]`` for LSTM)."""
    if mode == "LSTM":
        h, c = s.chunk(2, dim=-1)
        gates = _linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh)  # (B, 4N)
        i, f, g, o = gates.chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, torch.cat([h_new, c_new], dim=-1)
    if mode == "GRU":
        gi = _linear(x, w_ih, b_ih).chunk(3, dim=-1)
        gh = _linear(s, w_hh, b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(gi[0] + gh[0])
        z = torch.sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + r * gh[2])
        h_new = (1 - z) * n + z * s
        return h_new, h_new
    pre = _linear(x, w_ih, b_ih) + _linear(s, w_hh, b_hh)
    h_new = torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)
    return h_new, h_new


def _torch_cell_gates(mode: str, x, s, w_ih, w_hh, b_ih, b_hh):
    """Gate pre-activations ``(B, G)`` of torch's LSTM/GRU equations (None for plain RNNs)."""
    if mode == "LSTM":
        h = s.chunk(2, dim=-1)[0]
        return _linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh)  # (B, 4N)
    if mode == "GRU":
        gi = _linear(x, w_ih, b_ih).chunk(3, dim=-1)
        gh = _linear(s, w_hh, b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(gi[0] + gh[0])
        return torch.cat([gi[0] + gh[0], gi[1] + gh[1], gi[2] + r * gh[2]], dim=-1)
    return None


def _torch_cell_floor(mode: str, x, w_ih, b_ih, b_hh, n: int):
    """Per-sample time radius at ``W_hh = 0``: the largest forget (LSTM) or update (GRU) gate.

    With ``W_hh = 0`` the LSTM time Jacobian is ``[[0, E F], [0, F]]`` (``F = diag(f)``), whose
    eigenvalues are 0 and the ``f_i``; the GRU one is ``diag(z)``.
    """
    gate = slice(n, 2 * n)
    pre = _linear(x, w_ih, b_ih)[:, gate]
    if b_hh is not None:
        pre = pre + b_hh[gate]
    return torch.sigmoid(pre).amax(-1)  # (B,)


class _Layer:
    """A recurrent layer seen as ``step(x, s) -> (y, s_new)`` on real state vectors."""

    state_size: int
    time_drivers: tuple[Driver, ...]
    depth_drivers: tuple[Driver, ...]
    #: the entries of the state that the layer outputs (None: the output needs the input)
    output_slice: slice | None = None
    floor_why: str = ""

    def gates(self, x, s):
        return None

    def floor(self, x, s):
        """Per sample ``(B,)``: the time radius as the time drivers go to 0 (None: no floor)."""
        return None

    def initial(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.state_size)

    def output_of_state(self, s: torch.Tensor) -> torch.Tensor | None:
        """The layer's output as a function of its state alone, or None if it needs x."""
        return None


class _TorchLayer(_Layer):
    """Layer ``l`` of an ``nn.RNN``/``GRU``/``LSTM``, or a torch RNN/GRU/LSTM cell."""

    def __init__(self, module: nn.Module, mode: str, suffix: str = "",
                 gate_bias_shift: bool = False):
        self.module, self.mode, self.suffix = module, mode, suffix
        n = module.hidden_size
        self.hidden = n
        self.state_size = 2 * n if mode == "LSTM" else n
        self.output_slice = slice(0, n)
        gate = slice(n, 2 * n)  # forget gate (LSTM: i, f, g, o) / update gate (GRU: r, z, n)
        bias = getattr(module, "bias_hh" + suffix, None)
        # Opt-in only: the gate (f for LSTM, z for GRU) is a diagonal block of the time
        # Jacobian that the recurrent kernel does not scale; shifting its bias moves it too,
        # at the cost of a cell that forgets everything (bias -6 measured at target 0.5).
        shift = (Driver(module, "bias_hh" + suffix, "shift", index=gate),) if (
            gate_bias_shift and mode in ("LSTM", "GRU") and isinstance(bias, torch.Tensor)
        ) else ()
        self.time_drivers = (Driver(module, "weight_hh" + suffix), *shift)
        self.depth_drivers = (Driver(module, "weight_ih" + suffix),)
        self.has_floor = mode in ("LSTM", "GRU") and not shift
        self.floor_why = {"LSTM": "the forget gates f form the diagonal block dc_t/dc_{t-1} = "
                                  "diag(f), which no kernel scales: the time radius tends to "
                                  "max f as the recurrent kernel goes to 0",
                          "GRU": "the update gates z form the diagonal term z * h_{t-1}, which "
                                 "no kernel scales: the time radius tends to max z as the "
                                 "recurrent kernel goes to 0"}.get(mode, "")

    def gates(self, x, s):
        return _torch_cell_gates(self.mode, x, s, self._get("weight_ih"), self._get("weight_hh"),
                                 self._get("bias_ih"), self._get("bias_hh"))

    def floor(self, x, s):
        if not self.has_floor:
            return None
        return _torch_cell_floor(self.mode, x, self._get("weight_ih"), self._get("bias_ih"),
                                 self._get("bias_hh"), self.hidden)

    def _get(self, name):
        return getattr(self.module, name + self.suffix, None)

    def step(self, x, s):
        return _torch_cell_step(self.mode, x, s, self._get("weight_ih"), self._get("weight_hh"),
                                self._get("bias_ih"), self._get("bias_hh"))

    def output_of_state(self, s):
        return s[..., : self.hidden]


def _cell_mode(cell: nn.RNNCellBase) -> str:
    if isinstance(cell, nn.LSTMCell):
        return "LSTM"
    if isinstance(cell, nn.GRUCell):
        return "GRU"
    return "RNN_RELU" if getattr(cell, "nonlinearity", "tanh") == "relu" else "RNN_TANH"


class _PackageLayer(_Layer):
    """A cell of this package: ``step(x_t, state) -> (y_t, new_state)``; complex as [Re, Im]."""

    def __init__(self, cell: nn.Module):
        self.cell = cell
        self.complex = bool(getattr(cell, "is_complex", False))
        n = int(cell.d_state)
        self.state_size = 2 * n if self.complex else n
        if isinstance(getattr(cell, "lam", None), torch.Tensor):
            self.time_drivers = (Driver(cell, "lam", "magnitude"),)
        elif isinstance(getattr(cell, "A", None), torch.Tensor):
            self.time_drivers = (Driver(cell, "A"),)
        else:
            raise TypeError(f"{type(cell).__name__}: a cell needs a `lam` or `A` tensor to be "
                            "rescaled in time")
        self.depth_drivers = (Driver(cell, "B"),) if isinstance(
            getattr(cell, "B", None), torch.Tensor) else ()

    def _to_state(self, s):
        if not self.complex:
            return s
        re, im = s.chunk(2, dim=-1)
        return torch.complex(re, im)

    def _from_state(self, h):
        if not self.complex:
            return h
        return torch.cat([h.real, h.imag], dim=-1)

    def initial(self, batch, like):
        return self._from_state(self.cell.initial_state(batch)).to(like.dtype)

    def step(self, x, s):
        y, h = self.cell.step(x, self._to_state(s))
        return y, self._from_state(h)


class _ALIFLayer(_PackageLayer):
    r"""An :class:`recurrent_params.ALIF` layer: state ``[v, a]`` (``[v, a, r]`` with a
    refractory period), output the spikes of the state through the surrogate derivative.

    Drivers: the recurrent kernel ``A`` (time) and the input kernel ``B`` (depth). The time
    Jacobian at a state with spike derivatives $p_i = \psi(u_i)[r_i = 0]$ is
    $\begin{pmatrix} \mathrm{diag}(\alpha - p) + D A P/\vartheta &
    (P - D A P/\vartheta)\,\mathrm{diag}(\beta) \\
    \mathrm{diag}((1-\rho)p)/\vartheta & \mathrm{diag}(\rho - \beta(1-\rho)p/\vartheta)
    \end{pmatrix}$ with $P = \mathrm{diag}(p)$, $D = \mathrm{diag}(1-\alpha)$; at $A = 0$ it
    splits into one $2\times 2$ block per neuron,
    $m_i = \begin{pmatrix}\alpha_i - p_i & \beta_i p_i \\
    (1-\rho_i) p_i/\vartheta & \rho_i - \beta_i(1-\rho_i)p_i/\vartheta\end{pmatrix}$, so the
    time radius tends to the floor $\max_i \rho(m_i)$, which is at least
    $\max(\alpha_i, \rho_i)$ over the neurons outside the surrogate's support ($p_i = 0$:
    eigenvalues $\alpha_i$ and $\rho_i$, for any kernels). The refractory counter has zero
    rows and columns (it is not differentiated), so it adds only zero eigenvalues.
    """

    floor_why = ("the membrane decay alpha and the adaptation decay rho sit on the diagonal of "
                 "d[v, a]_t / d[v, a]_{t-1} and no kernel scales them: as the recurrent kernel "
                 "A goes to 0 the time radius tends to the largest spectral radius of the "
                 "per-neuron 2x2 blocks [[alpha - p, beta p], [(1 - rho) p / theta, rho - beta "
                 "(1 - rho) p / theta]] (p: surrogate derivative), i.e. max(alpha, rho) for the "
                 "neurons away from threshold")

    def output_of_state(self, s):
        return self.cell.spikes(s)

    def floor(self, x, s):
        cell = self.cell
        p = cell.surrogate.derivative(cell.scaled_distance(s))  # (B, N)
        r = cell.split_state(s)[2]
        if r is not None:
            p = p * (r == 0).to(p.dtype)
        alpha, rho, beta, theta = cell.alpha, cell.rho, cell.beta, cell.threshold
        m = torch.stack([torch.stack([alpha - p, beta * p], -1),
                         torch.stack([(1 - rho) * p / theta, rho - beta * (1 - rho) * p / theta],
                                     -1)], -2)  # (B, N, 2, 2)
        return torch.linalg.eigvals(m).abs().amax(-1).amax(-1)  # (B,)


def _apply_all(modules: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for m in modules:
        x = m(x)
    return x


def _check_finite(t: torch.Tensor, what: str) -> None:
    """Raise before LAPACK sees a NaN (MKL's eigvals can crash the process on one)."""
    if not bool(torch.isfinite(t.detach()).all()):
        raise FloatingPointError(f"{what} contains NaN or inf; check the model's weights, "
                                 "states and inputs")


def _stack_transitions(layers: Sequence[_Layer], mixers: Sequence[Sequence[nn.Module]],
                       trailing: Sequence[nn.Module], x: torch.Tensor,
                       generator: torch.Generator | None,
                       initial: Sequence[torch.Tensor] | None = None,
                       horizon: int | None = None) -> list[Transition]:
    """Transitions of a stack ``x_t -> mixers[0] -> layer0 -> mixers[1] -> ... -> trailing``.

    Every sequence is run step by step without gradients; for each sample one time step ``t_b``
    is drawn uniformly in ``[0, T)`` and the Jacobians are taken there. ``initial`` gives the
    per-layer states before the first step (zeros / the cell's own initial state otherwise);
    ``horizon`` the sequence length reported to the ``"unbalanced"`` target.
    """
    if x.ndim != 3:
        raise ValueError(f"a recurrent stack needs inputs (batch, length, features), got shape "
                         f"{tuple(x.shape)}")
    batch, length = x.shape[0], x.shape[1]
    t_idx = torch.randint(0, length, (batch,), generator=generator).to(x.device)  # (B,)
    rows = torch.arange(batch, device=x.device)
    states, ins, below = [], [], []  # per layer: (B, T+1, n) states, (B, T, d) inputs
    with torch.no_grad():
        seq = x  # (B, T, d)
        for l, (layer, mix) in enumerate(zip(layers, mixers)):
            s = layer.initial(batch, seq) if initial is None else initial[l]
            inputs = torch.stack([_apply_all(mix, seq[:, t]) for t in range(length)], 1)
            hist, outs = [s], []
            for t in range(length):
                y, s = layer.step(inputs[:, t], s)
                hist.append(s)
                outs.append(y)
            states.append(torch.stack(hist, 1))  # (B, T+1, n)
            _check_finite(states[-1], f"the state of layer {l}")
            ins.append(inputs)
            below.append(seq)
            seq = torch.stack(outs, 1)  # (B, T, d_out)
    transitions: list[Transition] = []
    for l, (layer, mix) in enumerate(zip(layers, mixers)):
        prev = states[l][rows, t_idx]  # s^l_{t-1}: (B, n)
        x_t = ins[l][rows, t_idx]  # (B, d)

        def time_fn(s, x_t, layer=layer):
            return layer.step(x_t, s)[1]

        def gates_fn(s, x_t, layer=layer):
            return layer.gates(x_t, s)

        def floor_fn(s, x_t, layer=layer):
            return layer.floor(x_t, s)

        has_gates = layer.gates(x_t[:1], prev[:1]) is not None
        has_floor = layer.floor(x_t[:1], prev[:1]) is not None
        transitions.append(Transition(
            f"layer{l}.time", time_fn, prev, (x_t,), layer.time_drivers, "time",
            horizon=horizon or length, floor=floor_fn if has_floor else None,
            floor_why=layer.floor_why if has_floor else "",
            gates=gates_fn if has_gates else None))
        if l == 0:
            point, context = below[0][rows, t_idx], (prev,)  # x_t: (B, d_in)

            def depth_fn(u, prev, layer=layer, mix=mix):
                return layer.step(_apply_all(mix, u), prev)[1]
        elif layers[l - 1].output_slice is not None:
            # the lower layer outputs a slice of its state (h of [h, c]): the Jacobian with
            # respect to the full state has zero columns for the rest, so its radius is that
            # of this square block (eigenvalues: those of the block and zeros)
            point = states[l - 1][rows, t_idx + 1][:, layers[l - 1].output_slice]
            context = (prev,)

            def depth_fn(u, prev, layer=layer, mix=mix):
                return layer.step(_apply_all(mix, u), prev)[1]
        else:
            lower = layers[l - 1]
            point = states[l - 1][rows, t_idx + 1]  # s^{l-1}_t: (B, n_below)
            # the lower layer's output as a function of its new state (and of its input
            # through a package cell's readout y = Re(C h) + D x)
            context = (prev, ins[l - 1][rows, t_idx])

            def depth_fn(u, prev, x_below, layer=layer, lower=lower, mix=mix):
                return layer.step(_apply_all(mix, _output(lower, u, x_below)), prev)[1]
        transitions.append(Transition(f"layer{l}.depth", depth_fn, point, context,
                                      layer.depth_drivers, "depth"))
    if trailing and any(isinstance(m, nn.Linear) for m in trailing):
        top = layers[-1]
        point = states[-1][rows, t_idx + 1]

        def decoder_fn(u, x_top, top=top):
            return _apply_all(trailing, _output(top, u, x_top))

        linears = [m for m in trailing if isinstance(m, nn.Linear)]
        drivers = tuple(Driver(m, "weight", exponent=1 / len(linears)) for m in linears)
        transitions.append(Transition("decoder", decoder_fn, point, (ins[-1][rows, t_idx],),
                                      drivers, "depth", target=1.0))
    return transitions


def _output(layer: _Layer, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    y = layer.output_of_state(s)
    return _readout(layer, s, x) if y is None else y


def _readout(layer: _Layer, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Output of a package cell as a function of its (new) state ``s`` and input ``x``.

    Uses the cell's ``readout(x, state)`` when it has one, else ``y = Re(C h) + D x`` (or
    ``D * x`` for a vector ``D``), the readout of every cell of this package.
    """
    cell = layer.cell
    h = layer._to_state(s)
    if hasattr(cell, "readout"):
        return cell.readout(x, h)
    if hasattr(cell, "n_modes"):  # S4D: y = 2 Re(sum_n C_hn h_hn) + D x, per channel h
        hh = h.reshape(h.shape[0], cell.d_model, cell.n_modes)
        C = cell.C
        return 2 * (hh.real * C.real - hh.imag * C.imag).sum(-1) + cell.D * x
    C = cell.C
    y = h @ C.transpose(-1, -2)
    y = y.real if y.is_complex() else y
    D = getattr(cell, "D", None)
    if D is not None:
        y = y + (x * D if D.ndim == 1 else x @ D.transpose(-1, -2))
    return y


def _rnn_transitions(rnn: nn.RNNBase, x, generator, gate_bias_shift: bool = False):
    if rnn.bidirectional:
        raise ValueError("bidirectional RNNs have no single time direction; give the model an "
                         "`lsc_transitions` method or pre-train each direction separately")
    if getattr(rnn, "proj_size", 0):
        raise ValueError("nn.LSTM with proj_size > 0 is not supported; define `lsc_transitions`")
    if x.ndim != 3:
        raise ValueError(f"{type(rnn).__name__} expects inputs of 3 dimensions "
                         f"(unbatched inputs are not supported), got shape {tuple(x.shape)}")
    if not rnn.batch_first:
        x = x.transpose(0, 1)  # (B, T, d)
    if x.shape[-1] != rnn.input_size:
        raise ValueError(f"{type(rnn).__name__} has input_size {rnn.input_size}, inputs have "
                         f"{x.shape[-1]} features")
    layers = [_TorchLayer(rnn, rnn.mode, f"_l{l}", gate_bias_shift)
              for l in range(rnn.num_layers)]
    # One time step t for the whole batch (as the reference does): the prefix x[:, :t] runs
    # through torch's fused kernel, then one step is taken by hand at t.
    length = x.shape[1]
    t = int(torch.randint(0, length, (1,), generator=generator))
    batch = x.shape[0]
    with torch.no_grad():
        if t == 0:
            initial = [x.new_zeros(batch, layer.state_size) for layer in layers]
        else:
            prefix = x[:, :t] if rnn.batch_first else x[:, :t].transpose(0, 1)
            _, h_n = rnn(prefix)
            if rnn.mode == "LSTM":
                h_n, c_n = h_n
                initial = [torch.cat([h_n[l], c_n[l]], -1) for l in range(rnn.num_layers)]
            else:
                initial = [h_n[l] for l in range(rnn.num_layers)]
    return _stack_transitions(layers, [()] * len(layers), (), x[:, t:t + 1], generator,
                              initial=initial, horizon=length)


def _split_stack(modules: Sequence[nn.Module], gate_bias_shift: bool = False):
    layers, mixers, current = [], [], []
    for m in modules:
        if isinstance(m, nn.RNNCellBase):
            layers.append(_TorchLayer(m, _cell_mode(m), gate_bias_shift=gate_bias_shift))
        elif _is_package_cell(m):
            layers.append(_ALIFLayer(m) if isinstance(m, ALIF) else _PackageLayer(m))
        elif isinstance(m, nn.RNNBase):
            raise TypeError("a stack may hold cells (nn.RNNCell/GRUCell/LSTMCell or package "
                            f"cells) and per-step modules, not {type(m).__name__}; "
                            + PROTOCOL_HELP)
        else:
            current.append(m)
            continue
        mixers.append(tuple(current))
        current = []
    return layers, mixers, tuple(current)


def _ffn_transitions(seq: Sequence[nn.Module], x: torch.Tensor) -> list[Transition]:
    mods = list(seq)
    lin = [i for i, m in enumerate(mods) if isinstance(m, nn.Linear)]
    with torch.no_grad():
        a = _apply_all(mods[: lin[0]], x)  # e.g. a leading nn.Flatten
    a = a.reshape(-1, a.shape[-1])  # (B, d)
    transitions = []
    for j, i in enumerate(lin):
        block = tuple(mods[i: lin[j + 1] if j + 1 < len(lin) else len(mods)])
        if a.shape[-1] != mods[i].in_features:
            raise ValueError(f"Linear layer {i} expects {mods[i].in_features} features, "
                             f"received {a.shape[-1]}")

        def fn(u, block=block):
            return _apply_all(block, u)

        transitions.append(Transition(f"linear{i}", fn, a, (), (Driver(mods[i], "weight"),),
                                      "depth"))
        with torch.no_grad():
            a = fn(a)
        _check_finite(a, f"the output of Linear layer {i}")
    return transitions


def _as_list(model: nn.Module) -> list[nn.Module] | None:
    if isinstance(model, nn.Sequential | nn.ModuleList):
        return list(model)
    return None


def model_transitions(model: nn.Module, inputs: torch.Tensor,
                      generator: torch.Generator | None = None, *,
                      gate_bias_shift: bool = False) -> list[Transition]:
    r"""The transitions of ``model`` linearised at the states reached on ``inputs``.

    Drivers are kernels only (REFERENCE, arXiv 2308.12075 code): recurrent kernels drive
    the time transitions, input kernels the depth ones (the encoder for layer 0), the
    decoder's linear layers the decoder (whose own target is 1).

    Args:
        model: a supported model (see the module docstring) or one that defines
            ``lsc_transitions(inputs)``.
        inputs: a batch in the model's own layout (``batch_first=False`` RNNs take
            ``(T, B, d)``; everything else ``(B, ..., d)``).
        generator: draws the time step (one for the batch for ``nn.RNN/GRU/LSTM``, one per
            sample for cell stacks).
        gate_bias_shift: opt in to the forget/update-gate bias as a further time driver of
            torch LSTM/GRU layers (shifted by $\log c$). It lets an LSTM reach a time radius
            below its forget-gate floor, by making the cell forget at every step.

    Raises:
        TypeError: for an unsupported model, naming what to provide.
    """
    if hasattr(model, "lsc_transitions"):
        out = list(model.lsc_transitions(inputs))
        if not out or not all(isinstance(t, Transition) for t in out):
            raise TypeError(f"{type(model).__name__}.lsc_transitions must return a non-empty "
                            "list of diagnostics.Transition")
        return out
    if isinstance(inputs, torch.Tensor) and not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or inf")
    if isinstance(model, nn.RNNBase):
        return _rnn_transitions(model, inputs, generator, gate_bias_shift)
    if _is_recurrent(model):
        return _stack_transitions(*_split_stack([model], gate_bias_shift), inputs, generator)
    mods = _as_list(model)
    if mods:
        if any(_is_recurrent(m) for m in mods):
            return _stack_transitions(*_split_stack(mods, gate_bias_shift), inputs, generator)
        if any(isinstance(m, nn.Linear) for m in mods) and not any(
                isinstance(m, nn.RNNBase) for m in mods):
            return _ffn_transitions(mods, inputs)
    raise TypeError(f"unsupported model {type(model).__name__}: " + PROTOCOL_HELP)


#: The name users implement on their own models; :func:`model_transitions` calls it.
lsc_transitions = model_transitions


def input_shape(model: nn.Module, seq_len: int = DEFAULT_SEQ_LEN) -> tuple[int, ...]:
    """Per-sample input shape of a supported model (time first for a recurrent model)."""
    if hasattr(model, "lsc_input_shape"):
        return tuple(model.lsc_input_shape)
    if isinstance(model, nn.RNNBase):
        return (seq_len, model.input_size)
    if isinstance(model, nn.RNNCellBase):
        return (seq_len, model.input_size)
    if _is_package_cell(model):
        return (seq_len, int(model.d_input))
    mods = _as_list(model)
    if mods:
        recurrent = any(_is_recurrent(m) for m in mods)
        for m in mods:
            if isinstance(m, nn.Linear):
                d = m.in_features
            elif isinstance(m, nn.RNNCellBase):
                d = m.input_size
            elif _is_package_cell(m):
                d = int(m.d_input)
            else:
                continue
            return (seq_len, d) if recurrent else (d,)
    raise TypeError(f"cannot infer the input shape of {type(model).__name__}: pass inputs, or "
                    "give the model an `lsc_input_shape` attribute; " + PROTOCOL_HELP)


def gaussian_inputs(model: nn.Module, batch_size: int, seq_len: int = DEFAULT_SEQ_LEN,
                    generator: torch.Generator | None = None,
                    like: torch.Tensor | None = None,
                    shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Standard Gaussian inputs of the model's input shape, in the model's layout.

    ``shape`` overrides the inferred per-sample shape (time first for recurrent models).
    Drawn on the CPU with ``generator`` (reproducible), then moved to ``like``'s device/dtype.
    """
    shape = tuple(shape) if shape is not None else input_shape(model, seq_len)
    x = torch.randn((batch_size, *shape), generator=generator)
    if like is not None:
        x = x.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
    if isinstance(model, nn.RNNBase) and not model.batch_first:
        x = x.transpose(0, 1)  # (T, B, d)
    return x


def first_tensor(model: nn.Module) -> torch.Tensor | None:
    """A real floating tensor of the model (for its device and dtype)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p
        if p.is_complex():
            return torch.view_as_real(p)
    return None


def is_recurrent_model(transitions: Sequence[Transition]) -> bool:
    return any(t.kind == "time" for t in transitions)
