r"""The deep models of :mod:`recurrent_params.deep`: the time and depth transitions of a
:class:`~recurrent_params.RecurrentStack` (residual blocks around the package's cells) and of
a :class:`~recurrent_params.TorchRNNStack` (torch's LSTM / GRU behind the same encoder).

**States.** Block $l$ of a ``RecurrentStack`` reads the residual stream $z^{l-1}$ and carries
its layer's state $h^l$ (a real vector; ``[Re h, Im h]`` for a complex cell such as the LRU):

$$u^l_t = \mathrm{Norm}_l(z^{l-1}_t), \qquad h^l_t = \lambda^l \odot h^l_{t-1} + B^l u^l_t,
\qquad y^l_t = \mathrm{Re}(C^l h^l_t) + D^l u^l_t, \qquad
z^l_t = z^{l-1}_t + \mathrm{Mixer}_l(y^l_t),$$

with $z^0_t = \mathrm{Enc}(x_t)$ (written for the LRU, whose $B^l$ includes $\gamma$; any cell
of the package enters through its own ``step`` and public ``readout``).

**Time transition** of block $l$: $\partial h^l_{t+1} / \partial h^l_t$. For a diagonal cell
it is $\mathrm{diag}(\lambda^l)$ (as a real map, one $2\times 2$ rotation-scaling per complex
eigenvalue), whatever the input, so its radius is $\max_i |\lambda^l_i|$. Driver: the
eigenvalue magnitudes (``"magnitude"``: $|\lambda|$ times $c$, phase kept; through an
exponential parametrization this moves $\nu$ additively in log-magnitude,
$\log|\lambda| \to \log|\lambda| + \log c$, never $c\,\nu$).

**Depth transition** of block $l \ge 1$: $\partial h^l_{t+1} / \partial h^{l-1}_{t+1}$ at fixed
$h^l_t$, through the lower block's readout $y^{l-1} = \mathrm{Re}(C^{l-1} h^{l-1}) + D^{l-1}
u^{l-1}$, its mixer, the residual sum $z^{l-1} = z^{l-2} + \mathrm{Mixer}_{l-1}(y^{l-1})$,
this block's norm and its $B^l$:

$$M^{\text{depth}}_l = B^l\, J_{\mathrm{Norm}_l}(z^{l-1})\, J_{\mathrm{Mixer}_{l-1}}(y^{l-1})\,
\mathrm{Re}(C^{l-1}\,\cdot\,).$$

The residual path enters twice without being differentiated here: the skip $z^{l-2}$ is a
constant of this map (it depends on $h^{l-2}$, not on $h^{l-1}$), and it sets the point
$z^{l-1}$ at which the norm is linearised. Its own derivative is a separate edge of the
state grid, from $h^{l-2}$ straight to $h^l$ (and further down), which the path counting
of the Local Stability Condition does not see: it is measured neither here nor anywhere
else. Drivers: $B^l$ and $C^{l-1}$ (``"scale"``, each by $\sqrt c$: two tensors in series;
for a cell without $B$, such as S4D, whose state reads $u^l$ directly, the weight of
$\mathrm{Norm}_l$ takes $B$'s place: it scales $u^l$ elementwise, so the transition too).
The reference's LRU pre-training scales "the upper layer's $B$ and $C$"; with the
state-to-state transition above the upper block's $C$ is not on this path (it is on the
next one), so the lower block's $C$ is driven instead. Through the norm, $C^{l-1}$ moves the
radius by less than $\sqrt c$ (the norm divides part of its scale out); $B^l$ moves it by
exactly $\sqrt c$.

**Block 0** (the encoder transition): $\partial h^0_{t+1} / \partial z^0_{t+1}$, from the
encoder's output (a real vector or a token's embedding) through $\mathrm{Norm}_0$ and $B^0$,
driven by $B^0$ (the norm's weight for a cell without $B$); its Jacobian is $2N \times d$,
measured by the square restriction of :mod:`diagnostics.radii`. There is no decoder
transition (the reference's LRU pre-training has none): the top block's $C$, the final norm
and the head are never rescaled.

Every sequence is run step by step without gradients and without the block's output dropout
(the mixer alone; a model in train mode whose mixers have dropout is refused: call
``model.eval()``); one time step is drawn per sample, as for the other stacks.

A ``TorchRNNStack`` is its ``nn.LSTM`` / ``nn.GRU`` fed the encoder's output: its transitions
are those of the RNN (:func:`~diagnostics.transitions.torch_rnn.rnn_transitions`), the first
layer's depth transition starting from the encoder's output.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075; Orvieto et al., "Resurrecting recurrent neural networks for long
    sequences", arXiv 2303.06349 (the block).
"""

from __future__ import annotations

import torch
from torch import nn

from diagnostics.transitions._layer import check_finite
from diagnostics.transitions.cells import CellLayer, cell_layer
from diagnostics.transitions.protocol import Driver, Transition
from diagnostics.transitions.torch_rnn import rnn_transitions
from recurrent_params import RecurrentCell, RecurrentStack, TorchRNNStack

__all__ = ["deep_transitions", "recurrent_stack_transitions", "torch_stack_transitions"]


def _encode(model: RecurrentStack | TorchRNNStack, x: torch.Tensor) -> torch.Tensor:
    """The encoder's output ``(B, T, d_model)`` for the model's own inputs."""
    name = type(model).__name__
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected inputs a tensor, got {type(x).__name__}")
    if model.vocab_size is not None:
        if x.ndim != 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{name}: expected integer token ids of shape (batch, length), got "
                             f"{x.dtype} of shape {tuple(x.shape)}")
    elif x.ndim != 3 or x.shape[-1] != model.d_input:
        raise ValueError(f"{name}: expected inputs of shape (batch, length, {model.d_input}), "
                         f"got {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: expected a sequence of length >= 1, got 0")
    with torch.no_grad():
        return model.encoder(x)  # (B, T, d)


def _cell_of(block: nn.Module, index: int) -> CellLayer:
    layer = block.layer
    if not isinstance(layer, RecurrentCell):
        raise TypeError(
            f"RecurrentStack: block {index} holds a {type(layer).__name__}; the transitions of a "
            "stack are defined for the package's cells (LRU, S4D, DiagonalRNN, DenseRNN) inside "
            "the blocks. Give the model an `lsc_transitions(inputs)` method for other layers")
    return cell_layer(layer)


def _input_side(block: nn.Module, layer: CellLayer) -> list[tuple[nn.Module, str]]:
    """The tensor that scales what enters the block's state: the cell's ``B``, or, for a cell
    without one (S4D), the weight of the block's norm (``u = Norm(z)`` enters linearly)."""
    if isinstance(getattr(layer.cell, "B", None), torch.Tensor):
        return [(layer.cell, "B")]
    if isinstance(getattr(block.norm, "weight", None), torch.Tensor):
        return [(block.norm, "weight")]
    return []


def _depth_drivers(block: nn.Module, upper: CellLayer, lower: CellLayer) -> tuple[Driver, ...]:
    """The upper input side and ``C`` of the lower cell, each by ``sqrt(c)`` when both exist."""
    found = _input_side(block, upper)
    if isinstance(getattr(lower.cell, "C", None), torch.Tensor):
        found.append((lower.cell, "C"))
    return tuple(Driver(m, n, exponent=1 / len(found)) for m, n in found)


def recurrent_stack_transitions(model: RecurrentStack, x: torch.Tensor,
                                generator: torch.Generator | None = None) -> list[Transition]:
    r"""Time and depth transitions of every block of a :class:`~recurrent_params.RecurrentStack`
    (see the module docstring for their definition and drivers).

    Args:
        model: a stack whose blocks hold the package's cells.
        x: its inputs, ``(batch, length, d_input)`` or ``(batch, length)`` token ids.
        generator: draws one time step per sample.

    Returns:
        ``[block0.time, block0.depth, block1.time, block1.depth, ...]``, named
        ``"layer{l}.time"`` / ``"layer{l}.depth"`` as for the other stacks.
    """
    if model.training and any(isinstance(m, nn.Dropout) and m.p > 0
                              for block in model.blocks for m in block.mixer.modules()):
        raise ValueError("RecurrentStack: the mixers' dropout is active (train mode) and would "
                         "give every Jacobian row its own mask; call model.eval() before "
                         "measuring its transitions (LSCPretrainer does)")
    z = _encode(model, x)  # (B, T, d)
    batch, length = z.shape[0], z.shape[1]
    layers = [_cell_of(block, l) for l, block in enumerate(model.blocks)]
    t_idx = torch.randint(0, length, (batch,), generator=generator).to(z.device)  # (B,)
    rows = torch.arange(batch, device=z.device)
    streams, normed, states = [], [], []  # per block: z^{l-1}, Norm(z^{l-1}) (B, T, d); h
    with torch.no_grad():
        for l, (block, layer) in enumerate(zip(model.blocks, layers)):
            u = block.norm(z)  # (B, T, d)
            hist, outs = layer.roll(u, layer.initial(batch, z))  # (B, T+1, n), (B, T, d)
            states.append(hist)
            check_finite(hist, f"the state of block {l}")
            streams.append(z)
            normed.append(u)
            z = z + block.mixer(outs)  # (B, T, d)
    out: list[Transition] = []
    for l, (block, layer) in enumerate(zip(model.blocks, layers)):
        prev = states[l][rows, t_idx]  # h^l_t: (B, n)

        def time_fn(s, u_t, layer=layer):
            return layer.step(u_t, s)[1]

        out.append(Transition(f"layer{l}.time", time_fn, prev, (normed[l][rows, t_idx],),
                              layer.time_drivers, "time", horizon=length))
        if l == 0:
            def depth_fn(z_t, prev, block=block, layer=layer):
                return layer.step(block.norm(z_t), prev)[1]

            point, context = streams[0][rows, t_idx], (prev,)
            drivers = tuple(Driver(m, n) for m, n in _input_side(block, layer))
        else:
            lower, lower_block = layers[l - 1], model.blocks[l - 1]

            def depth_fn(s, prev, z_below, u_below, block=block, layer=layer, lower=lower,
                         lower_block=lower_block):
                y = lower.output(s, u_below)  # Re(C h) + D u of the lower block
                z_l = z_below + lower_block.mixer(y)  # the residual sum
                return layer.step(block.norm(z_l), prev)[1]

            point = states[l - 1][rows, t_idx + 1]  # h^{l-1}_{t+1}
            context = (prev, streams[l - 1][rows, t_idx], normed[l - 1][rows, t_idx])
            drivers = _depth_drivers(block, layer, lower)
        out.append(Transition(f"layer{l}.depth", depth_fn, point, context, drivers, "depth"))
    return out


def torch_stack_transitions(model: TorchRNNStack, x: torch.Tensor,
                            generator: torch.Generator | None = None) -> list[Transition]:
    """Transitions of a :class:`~recurrent_params.TorchRNNStack`: those of its ``nn.LSTM`` /
    ``nn.GRU`` on the encoder's output (one time step drawn for the batch)."""
    return rnn_transitions(model.rnn, _encode(model, x), generator)


def deep_transitions(model: RecurrentStack | TorchRNNStack, x: torch.Tensor,
                     generator: torch.Generator | None = None) -> list[Transition]:
    """The transitions of a deep model of :mod:`recurrent_params.deep` (the dispatch's entry)."""
    if isinstance(model, RecurrentStack):
        return recurrent_stack_transitions(model, x, generator)
    if isinstance(model, TorchRNNStack):
        return torch_stack_transitions(model, x, generator)
    raise TypeError(f"expected a RecurrentStack or TorchRNNStack, got {type(model).__name__}")
