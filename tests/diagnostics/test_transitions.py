"""The transition tracer after the split: cells are recognised by ``isinstance`` and read out
through their public ``readout``; the old alias warns; the gate-bias shift lives in optim."""

import pytest
import torch
from torch import nn
from torch.func import jacrev

import diagnostics
from diagnostics import Transition, model_transitions
from optim.lsc import with_gate_bias_shift
from recurrent_params import S4D, DiagonalRNN

DT = torch.float64


def test_depth_transition_through_an_s4d_layer_is_the_composition_of_public_maps():
    # layer1.depth maps the S4D state s^0_t to s^1_t through S4D.readout (y = 2 Re(C h) + D x)
    torch.manual_seed(0)
    stack = nn.Sequential(S4D(3, 2, mode="scan"), DiagonalRNN(3, 4, 3)).double()
    x = torch.randn(5, 6, 3, dtype=DT)
    t = next(t for t in model_transitions(stack, x, torch.Generator().manual_seed(1))
             if t.name == "layer1.depth")
    lower, upper = stack
    n = lower.d_state
    for b in range(5):
        u, prev, x_below = t.point[b:b + 1], t.context[0][b:b + 1], t.context[1][b:b + 1]

        def composed(u, prev=prev, x_below=x_below):
            h = torch.complex(u[:, :n], u[:, n:])  # the S4D state from [Re, Im]
            y = lower.readout(x_below, h)
            hp = torch.complex(prev[:, :4], prev[:, 4:])
            new = upper.step(y, hp)[1]
            return torch.cat([new.real, new.imag], -1)

        torch.testing.assert_close(jacrev(t.fn)(u, prev, x_below), jacrev(composed)(u))


def test_a_duck_typed_cell_is_not_a_package_cell():
    class Duck(nn.Module):  # has the old duck-typing attributes but is no RecurrentCell
        d_input, d_state = 2, 2

        def step(self, x, s):
            return x, s

        def initial_state(self, batch):
            return torch.zeros(batch, 2)

    with pytest.raises(TypeError, match="unsupported model"):
        model_transitions(nn.Sequential(Duck()), torch.randn(2, 3, 2))


def test_lsc_transitions_alias_is_deprecated_and_not_public():
    assert "lsc_transitions" not in diagnostics.__all__
    net = nn.Sequential(nn.Linear(3, 3))
    x = torch.randn(2, 3)
    with pytest.warns(DeprecationWarning, match="model_transitions"):
        old = diagnostics.lsc_transitions(net, x)
    assert [t.name for t in old] == [t.name for t in model_transitions(net, x)]


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_gate_bias_shift_adds_the_gate_slice_of_each_layer_and_drops_the_floor(cls):
    torch.manual_seed(0)
    rnn = cls(3, 5, num_layers=2, batch_first=True)
    plain = model_transitions(rnn, torch.randn(4, 6, 3))
    shifted = with_gate_bias_shift(plain)
    for p, s in zip(plain, shifted):
        assert isinstance(s, Transition)
        if p.kind == "depth":
            assert s is p
            continue
        assert p.floor is not None and s.floor is None and s.floor_why == ""
        layer = p.name[len("layer"):].split(".")[0]
        shift = s.drivers[-1]
        assert (shift.mode, shift.name, shift.index) == ("shift", f"bias_hh_l{layer}",
                                                         slice(5, 10))
        assert list(s.drivers[:-1]) == list(p.drivers)
    no_bias = cls(3, 5, bias=False, batch_first=True)
    unchanged = model_transitions(no_bias, torch.randn(2, 4, 3))
    assert with_gate_bias_shift(unchanged) == unchanged
