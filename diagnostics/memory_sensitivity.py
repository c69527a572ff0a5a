r"""Measured second moment and parameter sensitivity of a diagonal cell's hidden state.

For each eigenvalue $\lambda_i$ of a diagonal recurrent cell, run it on long stationary inputs
and measure $E[|h_{T,i}|^2]$ and, by forward-mode automatic differentiation,
$E[|\partial h_{T,i} / \partial p_i|^2]$ for every real parameter $p$ behind $\lambda$
(``nu``/``theta`` originals of a parametrization, or the real and imaginary parts of a plain
``lam``). Because the recurrence is diagonal, one Jacobian-vector product with an all-ones
tangent gives every eigenvalue's derivative at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, jvp
from torch.nn.utils import parametrize

from diagnostics.correlated_inputs import correlated_inputs
from diagnostics.memory_theory import second_moment, sensitivity

__all__ = ["MemorySensitivityReport", "memory_sensitivity"]


@dataclass
class MemorySensitivityReport:
    """Per-eigenvalue moments of a diagonal cell's state (all tensors of shape ``(d_state,)``).

    Attributes:
        lam: the eigenvalues.
        second_moment: measured $E[|h|^2]$.
        input_variance: measured $E[|u|^2]$ of the per-state input $u = \\gamma B x$.
        sensitivity: parameter name -> measured $E[|\\partial h / \\partial p|^2]$.
        second_moment_theory: closed form ``input_variance * E[h^2](lam, rho)`` where it exists.
        sensitivity_lam_theory: closed form ``input_variance * E[|dh/dlam|^2](lam, rho)``
            (derivative through the recurrence only), where it exists.
        rho: input autocorrelation; length, batch_size: simulation size.
    """

    lam: torch.Tensor
    second_moment: torch.Tensor
    input_variance: torch.Tensor
    sensitivity: dict[str, torch.Tensor] = field(default_factory=dict)
    second_moment_theory: torch.Tensor | None = None
    sensitivity_lam_theory: torch.Tensor | None = None
    rho: float = 0.0
    length: int = 0
    batch_size: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly copy (lists of floats; complex eigenvalues as [re, im] pairs)."""

        def plain(t):
            if t is None:
                return None
            t = t.detach().cpu()
            return torch.view_as_real(t).tolist() if t.is_complex() else t.tolist()

        return {
            "lam": plain(self.lam),
            "second_moment": plain(self.second_moment),
            "input_variance": plain(self.input_variance),
            "sensitivity": {k: plain(v) for k, v in self.sensitivity.items()},
            "second_moment_theory": plain(self.second_moment_theory),
            "sensitivity_lam_theory": plain(self.sensitivity_lam_theory),
            "rho": self.rho,
            "length": self.length,
            "batch_size": self.batch_size,
        }

    def __repr__(self) -> str:
        names = list(self.sensitivity)
        header = ["|lam|", "E|h|^2", "theory"] + [f"E|dh/d{n}|^2" for n in names]
        rows = [" ".join(f"{h:>14}" for h in header)]
        for i in range(self.lam.numel()):
            theory = (
                float(self.second_moment_theory[i]) if self.second_moment_theory is not None
                else float("nan")
            )
            cells = [float(self.lam[i].abs()), float(self.second_moment[i]), theory]
            cells += [float(self.sensitivity[n][i]) for n in names]
            rows.append(" ".join(f"{c:>14.6g}" for c in cells))
        return f"MemorySensitivityReport(rho={self.rho}, length={self.length}, " \
            f"batch_size={self.batch_size})\n" + "\n".join(rows)


def _eigenvalue_parameters(cell: nn.Module, eig_name: str) -> dict[str, tuple[str, complex]]:
    """Readable name -> (parameter path, tangent direction) for the real parameters behind lam."""
    if parametrize.is_parametrized(cell, eig_name):
        plist = cell.parametrizations[eig_name]
        names = [n for n, _ in plist.named_parameters(recurse=False)] or ["original"]
        # Each package parametrization names its own originals (nu, theta, w_theta, ...).
        describe = getattr(plist[0], "original_names", None)
        labels = describe(len(names)) if describe is not None else tuple(names)
        return {label: (f"parametrizations.{eig_name}.{n}", 1.0)
                for label, n in zip(labels, names)}
    lam = getattr(cell, eig_name)
    if lam.is_complex():
        return {"lam.re": (eig_name, 1.0), "lam.im": (eig_name, 1j)}
    return {"lam": (eig_name, 1.0)}


class _StepLoop(nn.Module):
    """Runs ``cell.step`` over time so that forward-mode AD sees the plain recurrence."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        for x_t in x.unbind(1):  # (B, d_in) each
            _, state = self.cell.step(x_t, state)
        return state


def memory_sensitivity(
    cell: nn.Module,
    inputs: torch.Tensor | None = None,
    *,
    length: int | None = None,
    batch_size: int = 4096,
    rho: float = 0.0,
    eig_name: str = "lam",
    generator: torch.Generator | None = None,
) -> MemorySensitivityReport:
    r"""Measure $E|h|^2$ and $E|\partial h/\partial p|^2$ per eigenvalue of a diagonal cell.

    The cell must follow the package's cell interface: ``step(x_t, state) -> (y_t, state)``,
    ``initial_state(batch)``, ``d_input`` and a diagonal eigenvalue tensor ``lam`` of shape
    ``(d_state,)`` (plain or parametrized). The statistics are those of the final state
    $h_T$ over the batch, which is stationary once $T \gg 1/(1 - |\lambda|^2)$.

    Args:
        cell: a diagonal recurrent cell.
        inputs: optional inputs ``(batch, length, d_input)``; generated as unit-variance AR(1)
            inputs with autocorrelation ``rho`` when omitted.
        length: sequence length when generating; default $\lceil 12/(1-\max|\lambda|^2)\rceil$
            clipped to [100, 100000] (truncation error below $10^{-3}$ relative).
        batch_size: number of generated sequences (Monte-Carlo error $\approx\sqrt{2/n}$).
        rho: autocorrelation of generated inputs (and of the closed forms).
        eig_name: name of the eigenvalue tensor.
        generator: random generator for the generated inputs.

    Returns:
        A :class:`MemorySensitivityReport`, with closed forms of
        :mod:`diagnostics.memory_theory` beside the measurements (for real eigenvalues, or
        complex ones with i.i.d. inputs).

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (sections 2-3).
    """
    lam = getattr(cell, eig_name, None)
    if not isinstance(lam, torch.Tensor) or lam.dim() != 1:
        raise ValueError(f"memory_sensitivity needs a 1-D eigenvalue tensor cell.{eig_name}")
    for attr in ("step", "initial_state", "d_input"):
        if not hasattr(cell, attr):
            raise ValueError(f"memory_sensitivity needs a cell with `{attr}` (the cell interface)")
    lam = lam.detach()
    real_dtype = lam.real.dtype
    if inputs is None:
        if length is None:
            gap = float(1 - lam.abs().max() ** 2)
            length = 100 if gap <= 0 else int(min(max(math.ceil(12 / gap), 100), 100_000))
        inputs = correlated_inputs(batch_size, length, cell.d_input, rho, generator=generator,
                                   dtype=real_dtype, device=lam.device)
    if inputs.dim() != 3 or inputs.shape[-1] != cell.d_input:
        raise ValueError(
            f"inputs must have shape (batch, length, {cell.d_input}), got {tuple(inputs.shape)}"
        )
    batch, length = inputs.shape[0], inputs.shape[1]
    state0 = cell.initial_state(batch)

    with torch.no_grad():
        _, u = cell.step(inputs[:, 0], state0)  # one step from rest: the per-state input
        input_variance = (u.abs() ** 2).mean(0)

    loop = _StepLoop(cell)
    params = {f"cell.{n}": p.detach() for n, p in cell.named_parameters()}
    buffers = {f"cell.{n}": b for n, b in cell.named_buffers()}

    def final_state(p):
        return functional_call(loop, {**p, **buffers}, (inputs, state0))

    with torch.no_grad():
        h = final_state(params)
    measured: dict[str, torch.Tensor] = {}
    for label, (path, direction) in _eigenvalue_parameters(cell, eig_name).items():
        key = f"cell.{path}"
        if params[key].shape != lam.shape:
            raise ValueError(
                f"parameter {path} has shape {tuple(params[key].shape)}; a per-eigenvalue "
                f"sensitivity needs shape {tuple(lam.shape)}"
            )
        tangents = {k: torch.zeros_like(v) for k, v in params.items()}
        tangents[key] = torch.full_like(params[key], direction)
        _, dh = jvp(final_state, (params,), (tangents,))
        measured[label] = (dh.abs() ** 2).mean(0)

    sm_theory = sens_theory = None
    if not lam.is_complex() or rho == 0:
        sm_theory = input_variance * second_moment(lam, rho)
        sens_theory = input_variance * sensitivity(lam, rho)
    return MemorySensitivityReport(
        lam=lam, second_moment=(h.abs() ** 2).mean(0), input_variance=input_variance,
        sensitivity=measured, second_moment_theory=sm_theory,
        sensitivity_lam_theory=sens_theory, rho=rho, length=length, batch_size=batch,
    )
