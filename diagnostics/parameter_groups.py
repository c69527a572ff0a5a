"""Sort a model's parameters into recurrent, input/output and other groups.

The recurrent parameters of a long-memory network (the eigenvalues' ``nu`` / ``theta``, the
input normaliser ``gamma``) live on a different scale from the input and output matrices
around them and from the feed-forward parts (encoder, channel mixers, norms, head): the LRU
paper trains them with a smaller learning rate and no weight decay, and their Adam effective
learning rates are what the curse-of-memory paper reads. This module names the groups once, so
an optimiser's ``param_groups`` and a summary of effective learning rates agree on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from diagnostics.effective_lr import EffectiveLRs

__all__ = ["PARAMETER_GROUPS", "recurrent_parameter_groups", "grouped_summary"]

#: the group names, in the order reports list them.
PARAMETER_GROUPS = ("recurrent", "input_output", "other")

_IO_TENSORS = ("B", "C", "D")


def _cell_types() -> tuple[type, ...]:
    from recurrent_params import ALIF, LRU, S4D, DenseRNN, DiagonalRNN

    return (LRU, S4D, DiagonalRNN, DenseRNN, ALIF)


def _cell_group(cell: nn.Module, local: str) -> str:
    """Group of the parameter ``local`` (its name inside ``cell``) of one of the package's
    cells."""
    from recurrent_params import InputNorm

    parts = local.split(".")
    if parts[0] == "parametrizations" and len(parts) >= 3:
        tensor = parts[1]
        if parts[2].isdigit():  # a parameter held by the k-th parametrization module itself
            owner = cell.parametrizations[tensor][int(parts[2])]
            if isinstance(owner, InputNorm):  # gamma_log / gamma_direct
                return "recurrent"
    else:
        tensor = parts[0]
    return "input_output" if tensor in _IO_TENSORS else "recurrent"


def _rnn_group(local: str) -> str:
    return "recurrent" if local.startswith("weight_hh") else "input_output"


def recurrent_parameter_groups(model: nn.Module) -> dict[str, str]:
    r"""The group of every named parameter of ``model``: ``"recurrent"``, ``"input_output"``
    or ``"other"``.

    Inside each of the package's cells (:class:`~recurrent_params.LRU`,
    :class:`~recurrent_params.S4D`, :class:`~recurrent_params.DiagonalRNN`,
    :class:`~recurrent_params.DenseRNN`, :class:`~recurrent_params.ALIF`), wherever it sits in
    the model:

    * ``"recurrent"``: what sets the state transition $h_t = \lambda \odot h_{t-1} + \dots$
      and the input normaliser: ``lam`` or the originals of its parametrization (``nu``,
      ``theta`` of :class:`~recurrent_params.ExpMag` / :class:`~recurrent_params.Polar`),
      S4D's ``log_dt`` and eigenvalue parameters, DenseRNN's and ALIF's transition ``A``, any
      other parameter of the cell (neuron time constants), and the learned $\gamma$
      (``gamma_log`` / ``gamma_direct`` of an :class:`~recurrent_params.InputNorm` registered
      on ``B``);
    * ``"input_output"``: ``B``, ``C``, ``D`` (their originals under a parametrization).

    Inside an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: ``weight_hh_l*`` is ``"recurrent"``, the
    input weights and every bias ``"input_output"``. Everything else (encoder, channel mixers,
    norms, heads, embeddings) is ``"other"``.

    Args:
        model: any module.

    Returns:
        ``name -> group`` for every entry of ``model.named_parameters()``, in that order.

    Examples:
        >>> from recurrent_params import LRU
        >>> model = torch.nn.Sequential(LRU(4, 8), torch.nn.Linear(4, 2))
        >>> groups = recurrent_parameter_groups(model)
        >>> sorted({n.split(".")[-1] for n, g in groups.items() if g == "recurrent"})
        ['gamma_log', 'original0', 'original1']
        >>> [n for n, g in groups.items() if g == "recurrent"][:2]
        ['0.parametrizations.lam.original0', '0.parametrizations.lam.original1']
        >>> groups["1.weight"], groups["0.D"]
        ('other', 'input_output')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    cells = _cell_types()
    owners: dict[int, tuple[str, str]] = {}  # id(param) -> group, first owner wins
    for module in model.modules():
        if isinstance(module, cells):
            for local, p in module.named_parameters():
                owners.setdefault(id(p), ("cell", _cell_group(module, local)))
        elif isinstance(module, nn.RNNBase):
            for local, p in module.named_parameters():
                owners.setdefault(id(p), ("rnn", _rnn_group(local)))
    return {name: owners.get(id(p), ("", "other"))[1] for name, p in model.named_parameters()}


def _summary(a: np.ndarray) -> dict[str, float]:
    a = a[~np.isnan(a)]
    if a.size == 0:
        nan = float("nan")
        return dict(geo_mean=nan, min=nan, q10=nan, median=nan, q90=nan, max=nan, count=0)
    pos = a[a > 0]
    geo = float(np.exp(np.log(pos).mean())) if pos.size else 0.0
    q10, med, q90 = np.quantile(a, [0.1, 0.5, 0.9])
    return dict(geo_mean=geo, min=float(a.min()), q10=float(q10), median=float(med),
                q90=float(q90), max=float(a.max()), count=int(a.size))


def grouped_summary(rates: EffectiveLRs | dict[str, torch.Tensor],
                    groups: dict[str, str] | Iterable[tuple[str, str]]) -> dict[str, dict]:
    """Pool the per-coordinate effective learning rates of each group's tensors.

    Every coordinate of every tensor of a group counts once (a complex parameter's real and
    imaginary parts as two), so a group's median is the median over all its coordinates, not
    a median of per-tensor medians. NaN rates (a tensor the optimiser has not stepped yet)
    are left out.

    Args:
        rates: an :class:`~diagnostics.EffectiveLRs` with its tensors (``rates`` not empty:
            from :func:`~diagnostics.effective_learning_rates`, or a tracker built with
            ``keep_tensors=True`` or ``groups=``), or a ``name -> tensor`` dict.
        groups: ``name -> group``, e.g. :func:`recurrent_parameter_groups`. Names in
            ``rates`` that ``groups`` lacks go to ``"other"``.

    Returns:
        ``group -> {"geo_mean", "min", "q10", "median", "q90", "max", "count"}`` for every
        group with at least one tensor, in first-seen order.

    Raises:
        ValueError: when ``rates`` holds no tensors (a summary-only record).

    Examples:
        >>> r = {"a": torch.tensor([1.0, 4.0]), "b": torch.tensor([2.0]), "c": torch.tensor([9.0])}
        >>> out = grouped_summary(r, {"a": "recurrent", "b": "recurrent"})
        >>> out["recurrent"]["median"], out["recurrent"]["count"], out["other"]["max"]
        (2.0, 3, 9.0)
    """
    tensors = rates.rates if isinstance(rates, EffectiveLRs) else rates
    if not isinstance(tensors, dict) or not tensors:
        raise ValueError("rates: expected per-coordinate tensors (an EffectiveLRs from "
                         "effective_learning_rates, or a name -> tensor dict), got none")
    groups = dict(groups)
    pooled: dict[str, list[np.ndarray]] = {}
    for name, t in tensors.items():
        a = t.detach().abs().to(torch.float64).reshape(-1).cpu().numpy()
        pooled.setdefault(groups.get(name, "other"), []).append(a)
    return {g: _summary(np.concatenate(parts)) for g, parts in pooled.items()}
