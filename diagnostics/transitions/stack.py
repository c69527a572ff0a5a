"""The stack tracer: the time, depth and decoder transitions of a stack of recurrent layers.

A stack reads ``x_t -> mixers[0] -> layer0 -> mixers[1] -> layer1 -> ... -> trailing``
(mixers: per-step modules between the layers, e.g. dropout or a linear map; trailing: the
modules after the top layer, e.g. a decoder). Every sequence is run step by step without
gradients; the Jacobians are taken at one time step per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from diagnostics.transitions._layer import Layer, apply_all, check_finite
from diagnostics.transitions.protocol import Driver, Transition

__all__ = ["stack_transitions"]


def stack_transitions(layers: Sequence[Layer], mixers: Sequence[Sequence[nn.Module]],
                      trailing: Sequence[nn.Module], x: torch.Tensor,
                      generator: torch.Generator | None,
                      initial: Sequence[torch.Tensor] | None = None,
                      horizon: int | None = None) -> list[Transition]:
    """Transitions of a stack ``x_t -> mixers[0] -> layer0 -> mixers[1] -> ... -> trailing``.

    For each sample one time step ``t_b`` is drawn uniformly in ``[0, T)`` and the Jacobians
    are taken there. ``initial`` gives the per-layer states before the first step (zeros / the
    cell's own initial state otherwise); ``horizon`` the sequence length reported to the
    ``"unbalanced"`` target.
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
            inputs = torch.stack([apply_all(mix, seq[:, t]) for t in range(length)], 1)
            hist, seq_out = layer.roll(inputs, s)  # (B, T+1, n), (B, T, d_out)
            states.append(hist)
            check_finite(hist, f"the state of layer {l}")
            ins.append(inputs)
            below.append(seq)
            seq = seq_out
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
        lower = layers[l - 1] if l else None
        if lower is None:  # the encoder: from the stack's input x_t
            point, context = below[0][rows, t_idx], (prev,)  # (B, d_in)
        elif lower.output_slice is not None:
            # the lower layer outputs a slice of its state (h of [h, c]): the Jacobian with
            # respect to the full state has zero columns for the rest, so its radius is that
            # of this square block (eigenvalues: those of the block and zeros)
            point = states[l - 1][rows, t_idx + 1][:, lower.output_slice]
            context = (prev,)
        else:
            # from the lower layer's new state s^{l-1}_t, through its readout (which may read
            # its input too: y = Re(C h) + D x)
            point = states[l - 1][rows, t_idx + 1]  # (B, n_below)
            context = (prev, ins[l - 1][rows, t_idx])

        def depth_fn(u, prev, *x_below, layer=layer, lower=lower, mix=mix):
            y = lower.output(u, *x_below) if x_below else u  # the layer's input before mixing
            return layer.step(apply_all(mix, y), prev)[1]

        transitions.append(Transition(f"layer{l}.depth", depth_fn, point, context,
                                      layer.depth_drivers, "depth"))
    if trailing and any(isinstance(m, nn.Linear) for m in trailing):
        top = layers[-1]
        point = states[-1][rows, t_idx + 1]

        def decoder_fn(u, x_top, top=top):
            return apply_all(trailing, top.output(u, x_top))

        linears = [m for m in trailing if isinstance(m, nn.Linear)]
        drivers = tuple(Driver(m, "weight", exponent=1 / len(linears)) for m in linears)
        transitions.append(Transition("decoder", decoder_fn, point, (ins[-1][rows, t_idx],),
                                      drivers, "depth", target=1.0))
    return transitions
