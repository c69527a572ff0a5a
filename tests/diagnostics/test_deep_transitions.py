"""Transitions of the deep models: time and depth radii of a RecurrentStack of residual blocks
against a float64 brute-force Jacobian built from the blocks' public ``step`` / ``readout``,
the TorchRNNStack through its RNN, and the recurrent parameters of one block."""

import pytest
import torch
from torch import nn
from torch.func import jacrev

from diagnostics import block_recurrent_parameters, model_transitions, transition_radii
from diagnostics.transitions import input_shape
from diagnostics.transitions.torch_rnn import rnn_transitions
from recurrent_params import (
    LRU,
    S4D,
    DiagonalRNN,
    ExpMag,
    RecurrentStack,
    ResidualBlock,
    TorchRNNStack,
)

DT = torch.float64


def _real(h):
    return torch.cat([h.real, h.imag], -1)


def _complex(s):
    n = s.shape[-1] // 2
    return torch.complex(s[..., :n], s[..., n:])


def _brute_force_radii(model, x, seed):
    """Per transition, the batch mean of max |eig| of the jacrev Jacobian at the time step the
    tracer draws (one per sample from ``seed``), states from the blocks' public ``step``."""
    batch, length = x.shape[:2]
    t_idx = torch.randint(0, length, (batch,), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        z = model.encoder(x)  # (B, T, d)
        streams, before, after = [], [], []
        for block in model.blocks:
            h = block.initial_state(batch)
            hb, ha, out = [], [], []
            for t in range(length):
                hb.append(h)
                y, h = block.step(z[:, t], h)
                ha.append(h)
                out.append(y)
            streams.append(z)
            before.append(torch.stack(hb, 1))
            after.append(torch.stack(ha, 1))
            z = torch.stack(out, 1)
    radii = {}
    for l, block in enumerate(model.blocks):
        times, depths = [], []
        for b in range(batch):
            t = int(t_idx[b])
            z_in = streams[l][b:b + 1, t]
            prev = before[l][b:b + 1, t]

            def time_map(s, z_in=z_in, block=block):
                return _real(block.layer.step(block.norm(z_in), _complex(s))[1])

            jt = jacrev(time_map)(_real(prev))[0, :, 0]  # (2N, 2N)
            times.append(torch.linalg.eigvals(jt).abs().max())
            if l == 0:
                def depth_map(z_t, prev=prev, block=block):
                    return _real(block.layer.step(block.norm(z_t), prev)[1])

                jd = jacrev(depth_map)(z_in)[0, :, 0]  # (2N, d)
                k = min(jd.shape)
                jd = jd[:k, :k]  # the square restriction
            else:
                lower = model.blocks[l - 1]
                z_below = streams[l - 1][b:b + 1, t]

                def depth_map(s, z_below=z_below, prev=prev, block=block, lower=lower):
                    y = lower.layer.readout(lower.norm(z_below), _complex(s))
                    z_l = z_below + lower.mixer(y)  # the lower block's output at this step
                    return _real(block.layer.step(block.norm(z_l), prev)[1])

                jd = jacrev(depth_map)(_real(after[l - 1][b:b + 1, t]))[0, :, 0]
            depths.append(torch.linalg.eigvals(jd).abs().max())
        radii[f"layer{l}.time"] = float(torch.stack(times).mean().detach())
        radii[f"layer{l}.depth"] = float(torch.stack(depths).mean().detach())
    return radii


def _lru_stack(depth, **kwargs):
    torch.manual_seed(0)
    return RecurrentStack.of(lambda d: LRU(d, 3, r_min=0.5, r_max=0.95), depth=depth,
                             d_model=4, d_input=2, d_output=3, **kwargs).double()


@pytest.mark.parametrize("depth,kwargs", [(2, {}), (3, {"mixer": "mlp", "norm": "rms"})])
def test_radii_equal_brute_force_jacobian_eigenvalues(depth, kwargs):
    model = _lru_stack(depth, **kwargs)
    x = torch.randn(6, 4, 2, dtype=DT)
    got = transition_radii(model, x, generator=torch.Generator().manual_seed(3))
    want = _brute_force_radii(model, x, seed=3)
    assert list(got) == list(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-10, abs=1e-12), name
    for l, block in enumerate(model.blocks):  # the LRU's time transition is diag(lam)
        assert got[f"layer{l}.time"] == pytest.approx(float(block.layer.lam.detach().abs().max()),
                                                      rel=1e-12)


def test_matrix_free_radii_agree_with_exact_ones():
    model = _lru_stack(2)
    x = torch.randn(5, 4, 2, dtype=DT)
    exact = transition_radii(model, x, method="exact", generator=torch.Generator().manual_seed(0))
    free = transition_radii(model, x, method="matrix_free", max_restarts=8,
                            generator=torch.Generator().manual_seed(0))
    for name in exact:
        assert free[name] == pytest.approx(exact[name], rel=1e-6), name


def test_drivers_are_lam_in_time_and_B_above_C_below_in_depth():
    model = _lru_stack(3)
    ts = {t.name: t for t in model_transitions(model, torch.randn(2, 3, 2, dtype=DT))}
    cells = [b.layer for b in model.blocks]
    assert [(d.module, d.name, d.mode) for d in ts["layer1.time"].drivers] == [
        (cells[1], "lam", "magnitude")]
    assert [(d.module, d.name, d.exponent) for d in ts["layer0.depth"].drivers] == [
        (cells[0], "B", 1.0)]
    assert [(d.module, d.name, d.exponent) for d in ts["layer2.depth"].drivers] == [
        (cells[2], "B", 0.5), (cells[1], "C", 0.5)]


def test_depth_radius_scales_with_the_upper_B_exactly():
    model = _lru_stack(2)
    x = torch.randn(4, 3, 2, dtype=DT)
    before = transition_radii(model, x, generator=torch.Generator().manual_seed(0))
    from recurrent_params import assign_

    cell = model.blocks[1].layer
    assign_(cell, "B", 3.0 * cell.B.detach())
    after = transition_radii(model, x, generator=torch.Generator().manual_seed(0))
    assert after["layer1.depth"] == pytest.approx(3 * before["layer1.depth"], rel=1e-10)
    assert after["layer1.time"] == pytest.approx(before["layer1.time"], rel=1e-12)


def test_any_cell_inside_the_blocks_and_token_ids():
    def make(d):
        cell = DiagonalRNN(d, 3, d, normalization="learned")
        from torch.nn.utils import parametrize

        parametrize.register_parametrization(cell, "lam", ExpMag())
        return cell

    torch.manual_seed(0)
    lm = RecurrentStack.of(make, depth=2, d_model=4, vocab_size=11, task="lm").double()
    radii = transition_radii(lm, torch.randint(0, 11, (3, 5)))
    assert sorted(radii) == ["layer0.depth", "layer0.time", "layer1.depth", "layer1.time"]
    with pytest.raises(TypeError, match="token ids"):
        input_shape(lm)
    with pytest.raises(ValueError, match="token ids"):
        model_transitions(lm, torch.randn(3, 5, 4))


def test_a_layer_that_is_not_a_package_cell_is_refused():
    class Echo(nn.Module):
        d_input = d_output = 4

        def forward(self, x, state=None):
            return x, state

        def step(self, x, state=None):
            return x, state

    model = RecurrentStack([Echo()], d_model=4, d_input=2, d_output=1)
    with pytest.raises(TypeError, match="package's cells"):
        model_transitions(model, torch.randn(2, 3, 2))
    assert isinstance(model.blocks[0], ResidualBlock)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_rnn_stack_is_its_rnn_on_the_encoder_output(kind):
    torch.manual_seed(0)
    model = TorchRNNStack(kind, depth=2, d_model=4, d_input=3, d_output=2).double()
    x = torch.randn(5, 6, 3, dtype=DT)
    got = transition_radii(model, x, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ts = rnn_transitions(model.rnn, model.encoder(x), torch.Generator().manual_seed(1))
    want = transition_radii(ts)
    assert got == want and list(got) == ["layer0.time", "layer0.depth", "layer1.time",
                                         "layer1.depth"]
    assert input_shape(model, 7) == (7, 3)


def test_block_recurrent_parameters_of_each_cell_kind():
    model = _lru_stack(2)
    names = list(block_recurrent_parameters(model, -1))
    assert names == ["blocks.1.layer.parametrizations.lam.original0",
                     "blocks.1.layer.parametrizations.lam.original1",
                     "blocks.1.layer.parametrizations.B.1.gamma_log"]
    params = dict(model.named_parameters())
    assert all(block_recurrent_parameters(model, 0)[n] is params[n]
               for n in block_recurrent_parameters(model, 0))
    plain = RecurrentStack([DiagonalRNN(4, 3, 4)], d_model=4, d_input=1, d_output=1)
    assert list(block_recurrent_parameters(plain, 0)) == ["blocks.0.layer.lam"]
    with pytest.raises(IndexError, match="block"):
        block_recurrent_parameters(model, 2)
    with pytest.raises(TypeError, match="RecurrentStack"):
        block_recurrent_parameters(nn.Linear(2, 2), 0)


def test_active_dropout_is_refused_and_eval_mode_measures():
    torch.manual_seed(0)
    model = RecurrentStack.of(lambda d: LRU(d, 3), depth=2, d_model=4, d_input=2, d_output=1,
                              dropout=0.3).double()
    x = torch.randn(3, 4, 2, dtype=DT)
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        transition_radii(model, x)
    model.eval()
    assert transition_radii(model, x, generator=torch.Generator().manual_seed(0)) == \
        transition_radii(model, x, generator=torch.Generator().manual_seed(0))


def test_a_cell_without_B_is_driven_through_the_norm_weight():
    # S4D's state reads u = Norm(z) directly: the norm's weight scales the depth transition
    torch.manual_seed(0)
    model = RecurrentStack.of(lambda d: S4D(d, 2, mode="scan"), depth=2, d_model=3,
                              d_input=2, d_output=1).double()
    x = torch.randn(4, 3, 2, dtype=DT)
    ts = {t.name: t for t in model_transitions(model, x)}
    assert [(d.module, d.name) for d in ts["layer0.depth"].drivers] == [
        (model.blocks[0].norm, "weight")]
    assert [(d.module, d.name, d.exponent) for d in ts["layer1.depth"].drivers] == [
        (model.blocks[1].norm, "weight", 0.5), (model.blocks[0].layer, "C", 0.5)]
    before = transition_radii(model, x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.blocks[1].norm.weight.mul_(3.0)
    after = transition_radii(model, x, generator=torch.Generator().manual_seed(0))
    assert after["layer1.depth"] == pytest.approx(3 * before["layer1.depth"], rel=1e-10)
    assert after["layer0.depth"] == pytest.approx(before["layer0.depth"], rel=1e-12)
    want = _brute_force_radii(model, x, seed=0)
    for name in want:
        assert after[name] == pytest.approx(want[name], rel=1e-10, abs=1e-12), name
