r"""torch's own recurrent layers: ``nn.RNN``/``GRU``/``LSTM`` and their cells, stepped by hand.

The step re-implements torch's documented equations on a real state vector (``[h, c]`` for an
LSTM, ``h`` otherwise) so that one time step can be differentiated with respect to the state:

* LSTM: $(i, f, g, o) = W_{ih} x + b_{ih} + W_{hh} h + b_{hh}$,
  $c' = \sigma(f) c + \sigma(i) \tanh(g)$, $h' = \sigma(o) \tanh(c')$;
* GRU: $r = \sigma(\cdot)$, $z = \sigma(\cdot)$, $n = \tanh(W_{in} x + b_{in} + r (W_{hn} h +
  b_{hn}))$, $h' = (1 - z) n + z h$;
* RNN: $h' = \tanh$ or $\mathrm{relu}$ of $W_{ih} x + b_{ih} + W_{hh} h + b_{hh}$.

Drivers are the kernels only (REFERENCE section 3, the authors' code): ``weight_hh`` drives the
time transition, ``weight_ih`` the depth one.
"""

from __future__ import annotations

import torch
from torch import nn

from diagnostics.transitions._layer import Layer
from diagnostics.transitions.protocol import Driver, Transition
from diagnostics.transitions.stack import stack_transitions

__all__ = ["TorchLayer", "cell_mode", "rnn_transitions"]

_FLOOR_WHY = {
    "LSTM": "the forget gates f form the diagonal block dc_t/dc_{t-1} = diag(f), which no "
            "kernel scales: the time radius tends to max f as the recurrent kernel goes to 0",
    "GRU": "the update gates z form the diagonal term z * h_{t-1}, which no kernel scales: the "
           "time radius tends to max z as the recurrent kernel goes to 0",
}


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return nn.functional.linear(x, w, b)


def _step(mode: str, x, s, w_ih, w_hh, b_ih, b_hh):
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


def _gates(mode: str, x, s, w_ih, w_hh, b_ih, b_hh):
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


def _floor(x, w_ih, b_ih, b_hh, n: int):
    """Per-sample time radius at ``W_hh = 0``: the largest forget (LSTM) or update (GRU) gate.

    With ``W_hh = 0`` the LSTM time Jacobian is ``[[0, E F], [0, F]]`` (``F = diag(f)``), whose
    eigenvalues are 0 and the ``f_i``; the GRU one is ``diag(z)``.
    """
    gate = slice(n, 2 * n)  # forget gate (LSTM: i, f, g, o) / update gate (GRU: r, z, n)
    pre = _linear(x, w_ih, b_ih)[:, gate]
    if b_hh is not None:
        pre = pre + b_hh[gate]
    return torch.sigmoid(pre).amax(-1)  # (B,)


def cell_mode(cell: nn.RNNCellBase) -> str:
    """The ``nn.RNNBase.mode`` string of a torch cell: ``"LSTM"``, ``"GRU"``, ``"RNN_*"``."""
    if isinstance(cell, nn.LSTMCell):
        return "LSTM"
    if isinstance(cell, nn.GRUCell):
        return "GRU"
    return "RNN_RELU" if getattr(cell, "nonlinearity", "tanh") == "relu" else "RNN_TANH"


class TorchLayer(Layer):
    """Layer ``l`` of an ``nn.RNN``/``GRU``/``LSTM`` (``suffix="_l{l}"``), or a torch cell."""

    def __init__(self, module: nn.Module, mode: str, suffix: str = ""):
        self.module, self.mode, self.suffix = module, mode, suffix
        n = module.hidden_size
        self.hidden = n
        self.state_size = 2 * n if mode == "LSTM" else n
        self.output_slice = slice(0, n)
        self.time_drivers = (Driver(module, "weight_hh" + suffix),)
        self.depth_drivers = (Driver(module, "weight_ih" + suffix),)
        self.has_floor = mode in ("LSTM", "GRU")
        self.floor_why = _FLOOR_WHY.get(mode, "")

    def _get(self, name):
        return getattr(self.module, name + self.suffix, None)

    def _weights(self):
        return (self._get("weight_ih"), self._get("weight_hh"), self._get("bias_ih"),
                self._get("bias_hh"))

    def step(self, x, s):
        return _step(self.mode, x, s, *self._weights())

    def output(self, s, x):
        return s[..., : self.hidden]

    def gates(self, x, s):
        return _gates(self.mode, x, s, *self._weights())

    def floor(self, x, s):
        if not self.has_floor:
            return None
        return _floor(x, self._get("weight_ih"), self._get("bias_ih"), self._get("bias_hh"),
                      self.hidden)


def rnn_transitions(rnn: nn.RNNBase, x: torch.Tensor,
                    generator: torch.Generator | None) -> list[Transition]:
    """Transitions of an ``nn.RNN``/``GRU``/``LSTM`` at one time step drawn for the batch."""
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
    layers = [TorchLayer(rnn, rnn.mode, f"_l{l}") for l in range(rnn.num_layers)]
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
    return stack_transitions(layers, [()] * len(layers), (), x[:, t:t + 1], generator,
                             initial=initial, horizon=length)
