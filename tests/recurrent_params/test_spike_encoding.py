"""Threshold-crossing spike encoding: closed form on a hand example, exact binarity, the
running count recovers the quantised signal, errors; the spiking digits and classifier."""

import pytest
import torch

from recurrent_params.experiments.spike_encoding import threshold_crossing


def test_hand_example():
    x = torch.tensor([[[0.0], [0.6], [1.0], [0.2], [0.2]]])
    s = threshold_crossing(x, levels=2)  # levels 0.25, 0.75; columns up0 up1 down0 down1
    expected = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1],
                             [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(s[0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("levels", [1, 3, 8])
def test_running_count_is_the_quantised_signal(levels):
    x = torch.rand(4, 30, 2, dtype=torch.float64)
    s = threshold_crossing(x, levels)  # (4, 30, 2 * 2 * levels)
    assert s.shape == (4, 30, 4 * levels) and set(s.unique().tolist()) <= {0.0, 1.0}
    s = s.unflatten(-1, (2, 2, levels))  # (B, L, feature, up/down, level)
    count = (s[..., 0, :] - s[..., 1, :]).cumsum(1)  # (B, L, F, K)
    theta = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
    torch.testing.assert_close(count, (x.unsqueeze(-1) >= theta).to(torch.float64))


def test_errors():
    with pytest.raises(ValueError, match="levels"):
        threshold_crossing(torch.zeros(1, 2, 1), levels=0)
    with pytest.raises(ValueError, match="batch, length, features"):
        threshold_crossing(torch.zeros(2, 1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_crossing(torch.full((1, 2, 1), 1.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_crossing(torch.full((1, 2, 1), float("nan")))


def test_spiking_digits_and_classifier():
    pytest.importorskip("sklearn")
    from recurrent_params import ALIF
    from recurrent_params.experiments.digits import load_digits_sequences
    from recurrent_params.experiments.lsc_digits import SpikingClassifier, spike_digits

    split = spike_digits(load_digits_sequences(seed=0))
    assert split.x_train.shape[1:] == (64, 16) and torch.equal(
        split.y_test, load_digits_sequences(seed=0).y_test)
    net = SpikingClassifier(hidden=6, layers=3, threshold=0.5)
    assert len(net.recurrent) == 3 and all(isinstance(c, ALIF) for c in net.recurrent)
    assert net.recurrent[0].d_input == 16 and net.recurrent[0].threshold == 0.5
    logits = net(split.x_train[:5])
    assert logits.shape == (5, 10)
    logits.sum().backward()
    assert net.readout.weight.grad is not None
