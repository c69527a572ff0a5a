"""Contract tests of the deep models: every cell inside the residual block, both tasks, and the
torch RNN baselines: step == sequence in float64, streaming, causality, gradients, state_dict,
dtype moves that keep complex parameters, CUDA, and clear errors for bad input."""

import pytest
import torch
from torch.nn import functional as F
from torch.nn.utils import parametrize

from recurrent_params import (
    LRU,
    S4D,
    DenseRNN,
    DiagonalRNN,
    ExpMag,
    RecurrentStack,
    ResidualBlock,
    StackState,
    TorchRNNStack,
)
from recurrent_params.deep import ChannelMixer

D, N, DEPTH, L, BATCH, D_IN, N_CLASSES, VOCAB = 4, 6, 2, 7, 2, 3, 5, 11


def _diag_expmag(d):
    cell = DiagonalRNN(d, N, d, r_min=0.5, r_max=0.99, normalization="learned")
    parametrize.register_parametrization(cell, "lam", ExpMag())
    return cell


LAYERS = {
    "lru": lambda d: LRU(d, N, r_min=0.5, r_max=0.99),
    "s4d": lambda d: S4D(d, 3),  # FFT sequence mode by default
    "diag-plain": lambda d: DiagonalRNN(d, N, d, r_min=0.5, r_max=0.99),
    "diag-expmag-learned": _diag_expmag,
    "dense": lambda d: DenseRNN(d, N, d),
}
TASKS = {
    "classify-mean": dict(d_input=D_IN, d_output=N_CLASSES),
    "classify-last": dict(d_input=D_IN, d_output=N_CLASSES, pooling="last"),
    "lm-tokens": dict(vocab_size=VOCAB, task="lm"),
    "lm-real": dict(d_input=D_IN, d_output=N_CLASSES, task="lm"),
}
BASELINES = ("lstm", "gru")


def _stack(layer, task, **kw):
    return RecurrentStack.of(LAYERS[layer], depth=DEPTH, d_model=D, **TASKS[task], **kw)


def _baseline(kind, task):
    return TorchRNNStack(kind, depth=DEPTH, d_model=D, **TASKS[task])


def _inputs(model, length=L, batch=BATCH, dtype=torch.float64, device="cpu"):
    if model.vocab_size is not None:
        return torch.randint(0, model.vocab_size, (batch, length), device=device)
    return torch.randn(batch, length, model.d_input, dtype=dtype, device=device)


def _models():
    names = [*LAYERS, *BASELINES]
    return [pytest.param(n, t, id=f"{n}-{t}") for n in names for t in TASKS]


MODELS = _models()


def _build(name, task, **kw):
    return _baseline(name, task) if name in BASELINES else _stack(name, task, **kw)


def _leaves(state):
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)):
        return [leaf for s in state for leaf in _leaves(s)]
    return [state]


def _assert_states_close(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for sa, sb in zip(la, lb):
        if isinstance(sa, torch.Tensor):
            torch.testing.assert_close(sa, sb)
        else:
            assert sa == sb


@pytest.mark.parametrize(("name", "task"), MODELS)
def test_step_equals_sequence_float64(name, task):
    model = _build(name, task).to(torch.float64).eval()
    x = _inputs(model)
    out, state = model(x)
    step_state, outs = None, []
    for t in range(L):
        o, step_state = model.step(x[:, t], step_state)
        outs.append(o)
    if model.task == "lm":
        torch.testing.assert_close(torch.stack(outs, 1), out)  # generation == full forward
    else:
        torch.testing.assert_close(outs[-1], out)
        for t in (0, L // 2):  # the step output is the forward of the sequence so far
            torch.testing.assert_close(outs[t], model(x[:, : t + 1])[0])
    assert step_state.steps == state.steps == L
    _assert_states_close(step_state, state)


@pytest.mark.parametrize(("name", "task"), MODELS)
def test_streaming_continues_the_sequence(name, task):
    model = _build(name, task).to(torch.float64).eval()
    x = _inputs(model)
    out, state = model(x)
    first, mid = model(x[:, :3])
    second, end = model(x[:, 3:], mid)
    if model.task == "lm":
        torch.testing.assert_close(torch.cat([first, second], 1), out)
    else:
        torch.testing.assert_close(second, out)  # mean pooling counts the earlier steps
    _assert_states_close(end, state)
    # initial_state is the default start
    torch.testing.assert_close(model(x, model.initial_state(BATCH))[0], out)


@pytest.mark.parametrize("name", [*LAYERS, *BASELINES])
def test_causal_per_step_outputs(name):
    model = _build(name, "lm-real").to(torch.float64).eval()
    x = _inputs(model).requires_grad_(True)
    out, _ = model(x)  # (B, L, C)
    t0 = 3
    (grad,) = torch.autograd.grad(out[:, t0].sum(), x)  # (B, L, d_in)
    assert grad[:, t0 + 1 :].abs().max() < 1e-12  # FFT rounding only
    assert grad[:, : t0 + 1].abs().amax(dim=(0, 2)).min() > 1e-8  # every past step counts


@pytest.mark.parametrize("name", [*LAYERS, *BASELINES])
def test_causal_tokens_by_perturbation(name):
    model = _build(name, "lm-tokens").to(torch.float64).eval()
    x = _inputs(model)
    y = x.clone()
    y[:, 4:] = (y[:, 4:] + 1) % VOCAB
    a, b = model(x)[0], model(y)[0]
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=1e-12)
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-6


@pytest.mark.parametrize(("name", "task"), MODELS)
def test_gradients_reach_every_parameter(name, task):
    model = _build(name, task)
    if model.vocab_size is not None:  # every embedding row is used
        x = torch.arange(VOCAB).remainder(VOCAB).repeat(BATCH, 1)
    else:
        x = _inputs(model, dtype=torch.float32)
    out, _ = model(x)
    (out**2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize(("name", "task"), MODELS)
def test_state_dict_round_trip(name, task):
    model = _build(name, task).eval()
    torch.manual_seed(123)
    fresh = _build(name, task).eval()
    x = _inputs(model, dtype=torch.float32)
    assert not torch.equal(model(x)[0], fresh(x)[0])
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(model(x)[0], fresh(x)[0])


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("convert", ["to", "double"])
def test_float64_keeps_complex_parameters(name, convert):
    model = _stack(name, "classify-mean").eval()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    lams = [b.layer.lam.detach().clone() for b in model.blocks if hasattr(b.layer, "lam")]
    x = _inputs(model, dtype=torch.float32)
    out32 = model(x)[0]
    model = model.to(torch.float64) if convert == "to" else model.double()
    for k, v in model.named_parameters():
        want = torch.complex128 if before[k].is_complex() else torch.float64
        assert v.dtype == want, k
        torch.testing.assert_close(v.detach(), before[k].to(want))  # imaginary parts kept
    for b, lam in zip([b for b in model.blocks if hasattr(b.layer, "lam")], lams):
        assert b.layer.lam.dtype == torch.complex128
        torch.testing.assert_close(b.layer.lam.detach(), lam.to(torch.complex128))
    out64 = model(x.double())[0]
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-4)


def test_plain_diagonal_cell_really_has_a_complex_parameter():
    # the float64 test above would be vacuous without one
    model = _stack("diag-plain", "classify-mean")
    assert any(p.is_complex() for p in model.parameters())


@pytest.mark.parametrize("name", [*LAYERS, *BASELINES])
def test_on_device(name, device):
    torch.manual_seed(0)
    model = _build(name, "lm-tokens").to(device).eval()
    x = _inputs(model, device=device)
    out, state = model(x)
    s, outs = None, []
    for t in range(L):
        o, s = model.step(x[:, t], s)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs, 1), out, rtol=1e-4, atol=1e-4)
    out.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert out.device.type == torch.device(device).type


# --- the block's math ------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["layer", "rms"])
@pytest.mark.parametrize("mixer", ["glu", "mlp"])
def test_block_matches_its_equations(norm, mixer):
    layer = LAYERS["lru"](D).double()
    block = ResidualBlock(layer, D, norm=norm, mixer=mixer).double()
    x = torch.randn(BATCH, L, D, dtype=torch.float64)
    if norm == "layer":
        nx = (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True)
                                              + block.norm.eps).sqrt()
        nx = nx * block.norm.weight + block.norm.bias
    else:
        eps = torch.finfo(torch.float64).eps if block.norm.eps is None else block.norm.eps
        nx = x / (x.square().mean(-1, keepdim=True) + eps).sqrt() * block.norm.weight
    u, h = layer(nx)
    m = block.mixer
    if mixer == "glu":
        g = F.gelu(u)
        v = (g @ m.value.weight.T + m.value.bias) * torch.sigmoid(g @ m.gate.weight.T + m.gate.bias)
    else:
        v = F.gelu(u @ m.up.weight.T + m.up.bias) @ m.down.weight.T + m.down.bias
    y, state = block(x)
    torch.testing.assert_close(y, x + v)
    torch.testing.assert_close(state, h)


def test_mean_pooling_is_the_mean_of_the_normalised_features():
    model = _stack("lru", "classify-mean").double()
    x = _inputs(model)
    z = model.encoder(x)
    for block in model.blocks:
        z, _ = block(z)
    want = model.head(model.norm(z).mean(1))
    torch.testing.assert_close(model(x)[0], want)


def test_dropout_only_in_training():
    model = _stack("lru", "lm-tokens", dropout=0.5)
    x = _inputs(model)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_any_layer_list_and_depth():
    layers = [LRU(D, N), DenseRNN(D, N, D), S4D(D, 2)]  # mixed cells are fine
    model = RecurrentStack(layers, d_model=D, d_input=1, d_output=2)
    assert model.depth == 3 and [b.layer for b in model.blocks] == layers
    assert model(torch.randn(2, 5, 1))[0].shape == (2, 2)


# --- bad input -------------------------------------------------------------------------------


def test_bad_construction():
    make = LAYERS["lru"]
    with pytest.raises(ValueError, match="depth"):
        RecurrentStack.of(make, depth=0, d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="at least one layer"):
        RecurrentStack([], d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="norm must be one of"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1, d_output=2, norm="batch")
    with pytest.raises(ValueError, match="mixer must be one of"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1, d_output=2, mixer="moe")
    with pytest.raises(ValueError, match="pooling must be one of"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1, d_output=2, pooling="max")
    with pytest.raises(ValueError, match="takes no pooling"):
        RecurrentStack.of(make, depth=1, d_model=D, vocab_size=5, task="lm", pooling="mean")
    with pytest.raises(ValueError, match="task must be one of"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1, d_output=2, task="seq2seq")
    with pytest.raises(ValueError, match="exactly one of d_input"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1, vocab_size=5, d_output=2)
    with pytest.raises(ValueError, match="d_output"):
        RecurrentStack.of(make, depth=1, d_model=D, d_input=1)
    with pytest.raises(ValueError, match="d_input == d_model"):
        RecurrentStack([LRU(D + 1, N)], d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="d_output == d_model"):
        ResidualBlock(DiagonalRNN(D, N, 1), D)
    with pytest.raises(TypeError, match="forward.*step"):
        ResidualBlock(torch.nn.Linear(D, D), D)
    with pytest.raises(TypeError, match="sequence of recurrent layers"):
        RecurrentStack(LRU(D, N), d_model=D, d_input=1, d_output=2)
    with pytest.raises(TypeError, match="make_layer"):
        RecurrentStack.of(None, depth=1, d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        TorchRNNStack("rnn", depth=1, d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="depth"):
        TorchRNNStack("lstm", depth=0, d_model=D, d_input=1, d_output=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        ChannelMixer(D, "attention")


@pytest.mark.parametrize("name", ["lru", "lstm"])
def test_bad_inputs(name):
    real = _build(name, "classify-mean")
    with pytest.raises(ValueError, match=rf"\(batch, length, {D_IN}\)"):
        real(torch.randn(2, 5, D_IN + 1))
    with pytest.raises(ValueError, match=rf"\(batch, {D_IN}\)"):
        real.step(torch.randn(2, 5, D_IN))
    with pytest.raises(TypeError, match="dtype"):
        real(torch.randn(2, 5, D_IN, dtype=torch.float64))
    with pytest.raises(ValueError, match="length >= 1"):
        real(torch.randn(2, 0, D_IN))
    with pytest.raises(TypeError, match="StackState"):
        real(torch.randn(2, 5, D_IN), [None, None])
    tokens = _build(name, "lm-tokens")
    with pytest.raises(ValueError, match=rf"token ids in \[0, {VOCAB}\)"):
        tokens(torch.tensor([[0, VOCAB]]))
    with pytest.raises(ValueError, match="token ids in"):
        tokens.step(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer token ids"):
        tokens(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        tokens(torch.zeros(1, 3, 1, dtype=torch.long))


def test_bad_state_depth():
    model = _stack("lru", "lm-tokens")
    _, state = model(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="one entry per block"):
        model(torch.zeros(1, 3, dtype=torch.long), StackState(state.layers[:1], None, 3))


def test_block_rejects_complex_layer_output():
    class ComplexOut(torch.nn.Module):
        d_input = d_output = D

        def forward(self, x, state=None):
            return x.to(torch.complex64), state

        def step(self, x_t, state=None):
            return x_t.to(torch.complex64), state

    block = ResidualBlock(ComplexOut(), D)
    with pytest.raises(TypeError, match="complex output"):
        block(torch.randn(1, 2, D))
    with pytest.raises(ValueError, match=rf"\(batch, length, {D}\)"):
        block(torch.randn(1, 2, D + 1))


def test_float64_keeps_a_custom_layers_complex_parameter():
    # the block and the stack are ComplexSafeModules: a user's plain nn.Module layer that holds
    # a complex parameter keeps its imaginary part through .to(torch.float64) too
    class Rotate(torch.nn.Module):
        d_input = d_output = D

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((D,), 0.5 + 0.25j))

        def forward(self, x, state=None):
            return (x * self.w).real, state

        def step(self, x_t, state=None):
            return (x_t * self.w).real, state

    model = RecurrentStack([Rotate()], d_model=D, d_input=1, d_output=2).to(torch.float64)
    w = model.blocks[0].layer.w
    assert w.dtype == torch.complex128
    torch.testing.assert_close(w.detach(), torch.full((D,), 0.5 + 0.25j, dtype=torch.complex128))
