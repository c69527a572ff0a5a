r"""The package's own cells (:class:`recurrent_params.RecurrentCell`) as layers of a stack.

A cell's state is handed to the Jacobian code as a real vector (``[Re h, Im h]`` for a complex
cell); its output is the cell's public :meth:`~recurrent_params.RecurrentCell.readout`, so no
cell's formula is repeated here. The spiking :class:`recurrent_params.ALIF` adds the floor of
its time radius (the decays it cannot scale).
"""

from __future__ import annotations

import torch

from diagnostics.transitions._layer import Layer
from diagnostics.transitions.protocol import Driver
from recurrent_params import ALIF, RecurrentCell

__all__ = ["CellLayer", "ALIFLayer", "cell_layer"]


class CellLayer(Layer):
    """A :class:`~recurrent_params.RecurrentCell`: ``step(x_t, state) -> (y_t, new_state)``.

    Drivers: the eigenvalues ``lam`` (by magnitude) or the recurrent matrix ``A`` in time, the
    input matrix ``B`` in depth.
    """

    def __init__(self, cell: RecurrentCell):
        self.cell = cell
        self.complex = bool(cell.is_complex)
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

    def to_cell_state(self, s: torch.Tensor) -> torch.Tensor:
        """The cell's state from its real vector (``[Re, Im]`` -> complex)."""
        if not self.complex:
            return s
        re, im = s.chunk(2, dim=-1)
        return torch.complex(re, im)

    def from_cell_state(self, h: torch.Tensor) -> torch.Tensor:
        """The real vector of a cell state (complex -> ``[Re, Im]``)."""
        if not self.complex:
            return h
        return torch.cat([h.real, h.imag], dim=-1)

    def initial(self, batch, like):
        return self.from_cell_state(self.cell.initial_state(batch)).to(like.dtype)

    def step(self, x, s):
        y, h = self.cell.step(x, self.to_cell_state(s))
        return y, self.from_cell_state(h)

    def output(self, s, x):
        return self.cell.readout(x, self.to_cell_state(s))


class ALIFLayer(CellLayer):
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


def cell_layer(cell: RecurrentCell) -> CellLayer:
    """The layer adapter of a package cell (the ALIF one for :class:`recurrent_params.ALIF`)."""
    return ALIFLayer(cell) if isinstance(cell, ALIF) else CellLayer(cell)
