"""Contract of ``RecurrentCell.readout`` over every cell the package exports: the output of a
state and an input is what ``step`` returns and what the sequence forward returns, in float64."""

import pytest
import torch

import recurrent_params.cells as cells
from recurrent_params import ALIF, LRU, S4D, DenseRNN, DiagonalRNN, RecurrentCell

D_IN, N = 3, 5
DT = torch.float64

FACTORIES = {
    "DenseRNN": lambda: DenseRNN(D_IN, N, 2),
    "DiagonalRNN-complex": lambda: DiagonalRNN(D_IN, N, 2, r_min=0.5, r_max=0.99),
    "DiagonalRNN-real": lambda: DiagonalRNN(D_IN, N, 2, complex=False, r_min=0.5),
    "LRU": lambda: LRU(D_IN, N, r_min=0.5, r_max=0.99),
    "S4D": lambda: S4D(D_IN, 4, mode="scan"),
    "S4D-fft": lambda: S4D(D_IN, 4),
    "ALIF": lambda: ALIF(D_IN, N, input_gain=3.0),
    "ALIF-refractory": lambda: ALIF(D_IN, N, input_gain=3.0, refractory=2),
}


def test_every_exported_cell_is_covered():
    exported = {name for name in cells.__all__
                if isinstance(getattr(cells, name), type)
                and issubclass(getattr(cells, name), RecurrentCell)
                and getattr(cells, name) is not RecurrentCell}
    covered = {type(f()).__bases__[0].__name__ if type(f()).__name__.startswith("Parametrized")
               else type(f()).__name__ for f in FACTORIES.values()}
    assert exported <= covered, f"add a factory for {sorted(exported - covered)}"


@pytest.fixture(params=sorted(FACTORIES))
def cell(request):
    torch.manual_seed(0)
    return FACTORIES[request.param]().double()


def _steps(cell, x):
    """Step through ``x (B, L, d)`` from the zero state: outputs and the states after each step."""
    s = cell.initial_state(x.shape[0])
    ys, states = [], []
    for x_t in x.unbind(1):
        y, s = cell.step(x_t, s)
        ys.append(y)
        states.append(s)
    return ys, states


def test_readout_is_what_step_returns(cell):
    x = 2 * torch.randn(4, 9, D_IN, dtype=DT)
    ys, states = _steps(cell, x)
    for t, (y, s) in enumerate(zip(ys, states)):
        torch.testing.assert_close(cell.readout(x[:, t], s), y, rtol=0, atol=0)


def test_readout_agrees_with_the_sequence_forward(cell):
    x = 2 * torch.randn(4, 9, D_IN, dtype=DT)
    y_seq, last = cell(x)
    _, states = _steps(cell, x)
    torch.testing.assert_close(states[-1], last, rtol=1e-10, atol=1e-12)
    for t, s in enumerate(states):
        torch.testing.assert_close(cell.readout(x[:, t], s), y_seq[:, t], rtol=1e-10,
                                   atol=1e-12)


def test_linear_readout_is_linear_in_state_and_input(cell):
    if isinstance(cell, ALIF):
        pytest.skip("the spikes are not linear")
    x = torch.randn(3, D_IN, dtype=DT)
    h = torch.randn(3, cell.d_state, dtype=cell.state_dtype)
    zero_x, zero_h = torch.zeros_like(x), torch.zeros_like(h)
    torch.testing.assert_close(cell.readout(x, h),
                               cell.readout(zero_x, h) + cell.readout(x, zero_h))
    torch.testing.assert_close(cell.readout(2 * x, 3 * h),
                               3 * cell.readout(zero_x, h) + 2 * cell.readout(x, zero_h))


def test_readout_errors_name_what_was_expected(cell):
    x = torch.randn(3, D_IN, dtype=DT)
    with pytest.raises(ValueError, match="needs a state"):
        cell.readout(x, None)
    with pytest.raises(ValueError, match=rf"state of shape \(3, {cell.d_state}\)"):
        cell.readout(x, torch.zeros(3, cell.d_state + 1, dtype=cell.state_dtype))
    with pytest.raises(ValueError, match="input of shape"):
        cell.readout(torch.randn(3, D_IN + 1, dtype=DT), cell.initial_state(3))
