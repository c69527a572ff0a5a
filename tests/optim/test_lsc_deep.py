"""LSCPretrainer on the deep models: LRU residual stacks of depth 3 and 6 (the LSC paper's)
reach the target radius 1/2 in time and depth, eigenvalue magnitudes move additively in log
magnitude, the model stays a model (step == sequence), frozen tensors stay put, and the
TorchRNNStack baseline goes through torch's LSTM path (its floor reported)."""

import pytest
import torch

from diagnostics import transition_radii
from optim import LSCPretrainer
from optim.lsc.pretrainer import RNN_TOLERANCE, SPREAD_TOLERANCES
from recurrent_params import LRU, RecurrentStack, TorchRNNStack

REACH = SPREAD_TOLERANCES * RNN_TOLERANCE  # what LSCResult.status counts as reached


def _stack(depth, d_model=8, dtype=torch.float32):
    torch.manual_seed(0)
    return RecurrentStack.of(lambda d: LRU(d, 8), depth=depth, d_model=d_model, d_input=2,
                             d_output=3).to(dtype)


def _step_by_step(model, x):
    state, out = None, None
    for t in range(x.shape[1]):
        out, state = model.step(x[:, t], state)
    return out


@pytest.mark.parametrize("depth,options", [
    (3, {}),  # shuffling as the pre-trainer's default (probability 1/3 per step)
    (6, {"shuffle": 0.0}),  # without shuffling: shuffled B and C make depth radii noisy
])
def test_lru_stack_reaches_one_half_in_time_and_depth(depth, options):
    model = _stack(depth)
    result = LSCPretrainer(model, seq_len=8, batch_size=32, max_steps=300, progress=False,
                           **options).run()
    assert result.converged, result.reason
    names = [f"layer{l}.{k}" for l in range(depth) for k in ("time", "depth")]
    assert list(result.radii_after) == names
    assert all(result.status[k]["reached"] for k in names), result.status
    assert max(result.radii_before[f"layer{l}.time"] for l in range(depth)) > 0.9
    # measured again, independently, on a fresh Gaussian batch
    radii = transition_radii(model, batch_size=64, seq_len=8,
                             generator=torch.Generator().manual_seed(123))
    for name, r in radii.items():
        assert r == pytest.approx(0.5, abs=REACH), name
    for l, block in enumerate(model.blocks):  # the time radius is max |lam| exactly
        assert radii[f"layer{l}.time"] == pytest.approx(float(block.layer.lam.detach().abs().max()),
                                                        rel=1e-5)
    # still one model: step by step equals the sequence
    x = torch.randn(3, 12, 2)
    with torch.no_grad():
        torch.testing.assert_close(_step_by_step(model, x), model(x)[0], rtol=1e-4, atol=1e-5)


def test_eigenvalues_move_additively_in_log_magnitude_with_their_phase_kept():
    # without a gradient step (the reference's LRU setting), only the magnitude driver moves
    # lam: every |lam| of a block is multiplied by the same factor, nu never by a factor
    model = _stack(3, dtype=torch.float64)
    lam0 = [b.layer.lam.detach().clone() for b in model.blocks]
    nu0 = [b.layer.parametrizations.lam.original0.detach().clone() for b in model.blocks]
    LSCPretrainer(model, seq_len=6, batch_size=16, max_steps=40, grad_step=False,
                  clip=(0.95, 1.05), progress=False).run()
    for block, before, nu in zip(model.blocks, lam0, nu0):
        lam = block.layer.lam.detach()
        shift = lam.abs().log() - before.abs().log()
        assert float(shift.mean()) < -0.05  # moved towards 1/2
        torch.testing.assert_close(shift, shift.mean().expand_as(shift), rtol=0, atol=1e-10)
        torch.testing.assert_close(torch.angle(lam / before), torch.zeros_like(shift),
                                   rtol=0, atol=1e-10)
        ratio = block.layer.parametrizations.lam.original0.detach() / nu
        assert float(ratio.max() - ratio.min()) > 1e-3  # not a common factor on nu


def test_frozen_tensors_of_a_stack_are_left_alone():
    model = _stack(3)
    frozen = {n: p for n, p in model.named_parameters() if not n.startswith("blocks.")
              or ".mixer." in n or ".norm." in n}
    for p in frozen.values():
        p.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in frozen.items()}
    LSCPretrainer(model, seq_len=8, batch_size=16, max_steps=20, progress=False).run()
    for n, p in frozen.items():
        assert torch.equal(p, before[n]), n


def test_torch_rnn_stack_goes_through_the_lstm_path_and_reports_its_floor():
    torch.manual_seed(0)
    model = TorchRNNStack("lstm", depth=2, d_model=8, d_input=2, d_output=3)
    with pytest.warns(RuntimeWarning, match="cannot reach"):
        result = LSCPretrainer(model, seq_len=8, batch_size=32, max_steps=40,
                               progress=False).run()
    assert list(result.radii_after) == ["layer0.time", "layer0.depth", "layer1.time",
                                        "layer1.depth"]
    assert result.status["layer0.time"]["why"].startswith("floored")
    for name in ("layer0.depth", "layer1.depth"):
        assert result.status[name]["reached"], result.status[name]


def test_language_model_stack_pretrains_on_token_batches():
    torch.manual_seed(0)
    lm = RecurrentStack.of(lambda d: LRU(d, 16), depth=3, d_model=16, vocab_size=50, task="lm")
    result = LSCPretrainer(lm, inputs=torch.randint(0, 50, (32, 12)), progress=False).run()
    assert result.converged, result.reason
    assert all(st["reached"] for st in result.status.values()), result.status
    with pytest.raises(TypeError, match="token ids"):  # no Gaussian stand-in for tokens
        LSCPretrainer(lm, progress=False).run()


def test_a_frozen_block_keeps_its_eigenvalues_and_the_rest_still_converges():
    model = _stack(3)
    cell = model.blocks[1].layer
    for p in cell.parametrizations.lam.parameters():  # nu and theta of block 1
        p.requires_grad_(False)
    lam = cell.lam.detach().clone()
    result = LSCPretrainer(model, seq_len=8, batch_size=32, max_steps=300,
                           progress=False).run()
    assert torch.equal(cell.lam.detach(), lam)
    assert result.frozen == ["blocks.1.layer.lam"]
    assert result.radii_after["layer1.time"] == pytest.approx(float(lam.abs().max()), rel=1e-5)
    for name in ("layer0.time", "layer2.time", "layer1.depth", "layer2.depth"):
        assert result.status[name]["reached"], (name, result.status[name])
