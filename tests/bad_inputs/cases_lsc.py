"""Bad inputs to the LSC pre-trainer (``optim.LSCPretrainer``, ``optim.lsc.LSCOptions``).

Every row is fast: tiny models, ``max_steps <= 3``, small batches.
"""

from __future__ import annotations

import torch
from torch import nn

from optim import LSCPretrainer
from optim.lsc import LSCOptions
from recurrent_params import LRU
from tests.bad_inputs.case import Case

NAN, INF = float("nan"), float("inf")
FAST = dict(progress=False, max_steps=3, batch_size=8, seq_len=5)


def _ffn(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8)).to(dtype)


def _run(model, inputs=None, **kw):
    return LSCPretrainer(model, inputs, **{**FAST, **kw}).run()


def _frozen_ffn_run(grad_step: bool):
    """The issue's reproduction: the frozen kernel must come back bit-identical."""
    m = _ffn()
    m[0].weight.requires_grad_(False)
    w = m[0].weight.detach().clone()
    result = _run(m, grad_step=grad_step, shuffle_every=1)
    return result, bool(torch.equal(w, m[0].weight))


def _check_frozen(out):
    result, kept = out
    assert kept, "the frozen weight moved"
    assert result.frozen == ["0.weight"] and result.status["linear0"]["driven"] is False


def _frozen_lstm_run():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    lstm.weight_hh_l0.requires_grad_(False)
    w = lstm.weight_hh_l0.detach().clone()
    result = _run(lstm, shuffle_every=1)
    return result, bool(torch.equal(w, lstm.weight_hh_l0))


def _check_frozen_lstm(out):
    result, kept = out
    assert kept and result.frozen == ["weight_hh_l0"]
    assert result.status["layer0.time"]["driven"] is False


def _kernels_frozen_run():
    """Every kernel frozen, the biases free: no driver can move."""
    m = _ffn()
    m[0].weight.requires_grad_(False)
    m[2].weight.requires_grad_(False)
    return _run(m)


def _nan_weight():
    m = _ffn()
    with torch.no_grad():
        m[2].weight[1, 1] = NAN
    return _run(m)


def _nan_batch():
    x = torch.randn(8, 8)
    x[0, 0] = NAN
    return _run(_ffn(), x)


def _check_half(result):
    assert result.steps == 3 and set(result.radii_after) == {"linear0", "linear2"}


def _pre() -> LSCPretrainer:
    return LSCPretrainer(_ffn(), **FAST)


_BAD_OPTIONS = {  # option: (value, error, what the message names)
    "tolerance": (-1.0, ValueError, r"LSCOptions\.tolerance must be a positive finite"),
    "tolerance-nan": (NAN, ValueError, r"LSCOptions\.tolerance must be a positive finite"),
    "target": (INF, ValueError, r"LSCOptions\.target must be a positive finite radius"),
    "target-negative": (-1.0, ValueError, r"LSCOptions\.target must be a positive finite"),
    "target-dict": ({"linear0": INF}, ValueError, r"LSCOptions\.target\['linear0'\]"),
    "target-word": ("half", ValueError, r"LSCOptions\.target must be .*'unbalanced'"),
    "max_steps": (-1, ValueError, r"LSCOptions\.max_steps must be an int >= 0"),
    "max_steps-float": (1.5, TypeError, r"LSCOptions\.max_steps must be an int >= 0"),
    "batch_size": (0, ValueError, r"LSCOptions\.batch_size must be an int >= 1"),
    "seq_len": (0, ValueError, r"LSCOptions\.seq_len must be an int >= 1"),
    "patience": (0, ValueError, r"LSCOptions\.patience must be an int >= 1"),
    "shuffle": (1.5, ValueError, r"LSCOptions\.shuffle must be a probability in \[0, 1\]"),
    "shuffle_every": (0, ValueError, r"LSCOptions\.shuffle_every must be an int >= 1"),
    "clip": ((1.1, 1.2), ValueError, r"LSCOptions\.clip must satisfy 0 < lo <= 1 <= hi"),
    "lr": (-1.0, ValueError, r"LSCOptions\.lr must be a finite number >= 0"),
    "weight_decay": (INF, ValueError, r"LSCOptions\.weight_decay must be a finite"),
    "lookahead": ((6, 2.0), ValueError, r"LSCOptions\.lookahead alpha must be a probability"),
    "lookahead-k": ((0, 0.5), ValueError, r"LSCOptions\.lookahead k must be an int >= 1"),
    "method": ("eig", ValueError, r"LSCOptions\.method must be one of \['auto'"),
    "krylov_dim": (0, ValueError, r"LSCOptions\.krylov_dim must be an int >= 1"),
    "max_restarts": (0, ValueError, r"LSCOptions\.max_restarts must be an int >= 1"),
    "max_exact": (-1, ValueError, r"LSCOptions\.max_exact must be an int >= 0"),
    "max_magnitude": (1.5, ValueError, r"LSCOptions\.max_magnitude must be a number in \(0, 1\]"),
    "saturation_threshold": (-4.0, ValueError, r"LSCOptions\.saturation_threshold must be"),
    "seed": (-1, ValueError, r"LSCOptions\.seed must be an int >= 0"),
    "seed-huge": (2**70, ValueError, r"LSCOptions\.seed must be an int in \[0, 2\*\*63\)"),
    "grad_step": ("no", TypeError, r"LSCOptions\.grad_step must be True or False"),
    "input_shape": ((8, 0), ValueError, r"LSCOptions\.input_shape must be an int >= 1"),
}


def _option_rows() -> list[Case]:
    rows = []
    for key, (value, error, match) in _BAD_OPTIONS.items():
        name = key.split("-")[0]
        rows.append(Case(f"lsc-option-{key}",
                         lambda name=name, value=value: LSCPretrainer(_ffn(), **{name: value}),
                         error, match))
    rows.append(Case("lsc-options-dataclass-tolerance", lambda: LSCOptions(tolerance=-1.0),
                     ValueError, r"LSCOptions\.tolerance"))
    return rows


CASES: list = [
    # frozen tensors: never moved, reported (issue 21, silently wrong 2)
    Case("lsc-frozen-ffn-kernel-kept", lambda: _frozen_ffn_run(True), None,
         check=_check_frozen),
    Case("lsc-frozen-ffn-kernel-kept-no-grad-step", lambda: _frozen_ffn_run(False), None,
         check=_check_frozen),
    Case("lsc-frozen-lstm-weight_hh-kept", _frozen_lstm_run, None, check=_check_frozen_lstm),
    Case("lsc-all-frozen", lambda: LSCPretrainer(_ffn().requires_grad_(False), **FAST),
         ValueError, r"every parameter of Sequential is frozen \(requires_grad=False\)"),
    Case("lsc-all-frozen-no-grad-step",
         lambda: LSCPretrainer(_ffn().requires_grad_(False), grad_step=False, **FAST),
         ValueError, r"every parameter of Sequential is frozen"),
    Case("lsc-all-drivers-frozen", _kernels_frozen_run, ValueError,
         r"every driver of every transition is frozen \(requires_grad=False\): "
         r"\['0\.weight', '2\.weight'\]"),
    Case("lsc-frozen-cell-stack",
         lambda: _run(nn.Sequential(LRU(2, 4)).requires_grad_(False)), ValueError,
         r"every parameter of Sequential is frozen"),
    # models with nothing to move
    Case("lsc-empty-model", lambda: LSCPretrainer(nn.Sequential(), **FAST), ValueError,
         r"Sequential has no parameters"),
    Case("lsc-meta-model", lambda: LSCPretrainer(_ffn().to("meta"), **FAST), ValueError,
         r"meta device \(no data\)"),
    # options (issue 21, silently wrong 8: tolerance=-1.0 was accepted)
    *_option_rows(),
    Case("lsc-unknown-option", lambda: LSCPretrainer(_ffn(), tolerence=0.1), TypeError,
         r"unexpected keyword argument\(s\) \['tolerence'\]"),
    # batches
    Case("lsc-inputs-empty-list", lambda: LSCPretrainer(_ffn(), [], **FAST), ValueError,
         r"inputs is an empty list: give at least one batch"),
    Case("lsc-inputs-empty-iterable", lambda: _run(_ffn(), iter(())), ValueError,
         r"the inputs iterable yields no batch"),
    Case("lsc-batch-no-sample", lambda: _run(_ffn(), torch.zeros(0, 8)), ValueError,
         r"input batch 0 \(shape \(0, 8\).*has no sample"),
    Case("lsc-batch-no-time-step", lambda: _run(nn.LSTM(3, 4, batch_first=True),
                                                torch.zeros(2, 0, 3)),
         ValueError, r"input batch 0 \(shape \(2, 0, 3\).*is empty; the model takes "
                     r"\(B, T, 3\)"),
    Case("lsc-batch-wrong-features", lambda: _run(_ffn(), torch.randn(4, 5)), ValueError,
         r"input batch 0 \(shape \(4, 5\).*does not fit the model: it takes batches \(B, 8\)"),
    Case("lsc-batch-wrong-ndim-lstm", lambda: _run(nn.LSTM(3, 4), torch.randn(4, 3)),
         ValueError, r"takes batches \(T, B, 3\) \(batch_first=False\)"),
    Case("lsc-batch-wrong-features-cells",
         lambda: _run(nn.Sequential(LRU(2, 4)), torch.randn(2, 5, 3)), ValueError,
         r"does not fit the model: it takes batches \(B, T, 2\)"),
    Case("lsc-batch-second-of-list", lambda: _run(_ffn(), [torch.randn(4, 8),
                                                           torch.randn(4, 7)]),
         ValueError, r"input batch 1 \(shape \(4, 7\)"),
    Case("lsc-batch-integer", lambda: _run(_ffn(), torch.ones(4, 8, dtype=torch.long)),
         TypeError, r"takes real floating-point batches \(B, 8\), got torch.int64"),
    Case("lsc-batch-complex", lambda: _run(_ffn(), torch.ones(4, 8, dtype=torch.cfloat)),
         TypeError, r"got torch.complex64 \(give a complex signal as real features\)"),
    Case("lsc-batch-meta", lambda: _run(_ffn(), torch.ones(4, 8, device="meta")),
         ValueError, r"is on the meta device: it holds no data"),
    Case("lsc-batch-not-a-tensor", lambda: _run(_ffn(), [[1.0, 2.0]]), TypeError,
         r"a batch must be a tensor or an \(x, \.\.\.\) tuple, got float"),
    # NaN: refused before LAPACK, naming the culprit (documented in LSCPretrainer)
    Case("lsc-nan-batch", _nan_batch, FloatingPointError, r"an input batch contains NaN or inf"),
    Case("lsc-nan-weight", _nan_weight, FloatingPointError,
         r"parameter '2\.weight' of the model contains NaN or inf"),
    # half precision: the radii in float32 (documented), no LAPACK dtype error
    Case("lsc-bfloat16-ffn", lambda: _run(_ffn(torch.bfloat16)), None, check=_check_half),
    Case("lsc-float16-ffn", lambda: _run(_ffn(torch.float16)), None, check=_check_half),
    # checkpoints
    Case("lsc-load-state-dict-foreign", lambda: _pre().load_state_dict({"x": 1}), ValueError,
         r"not an LSCPretrainer checkpoint: it misses the keys \['model', 'best_state'"),
    Case("lsc-load-state-dict-not-a-dict", lambda: _pre().load_state_dict([("model", 1)]),
         TypeError, r"expects the dict of LSCPretrainer\.state_dict\(\), got list"),
    Case("lsc-load-state-dict-optimizer-without-grad-step",
         lambda: LSCPretrainer(_ffn(), grad_step=False, **FAST).load_state_dict(
             _pre().state_dict()),
         ValueError, r"the checkpoint has optimiser state but grad_step=False"),
    Case("lsc-optimizer-without-grad-step",
         lambda: LSCPretrainer(_ffn(), grad_step=False,
                               optimizer=torch.optim.SGD(_ffn().parameters(), lr=0.1)),
         ValueError, r"an optimizer was given but grad_step=False"),
]
