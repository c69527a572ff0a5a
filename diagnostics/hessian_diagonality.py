"""How diagonal is a Hessian: diagonal mass, eigenvector participation, preconditioned spectrum."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from diagnostics.estimators import FunctionOperator, eigsh, hutchinson
from diagnostics.hessian_operator import HessianOperator
from diagnostics.parameter_blocks import ParameterBlock

__all__ = ["DiagonalityReport", "hessian_diagonality", "participation_number"]


def participation_number(vectors: torch.Tensor) -> torch.Tensor:
    r"""Participation number $\mathrm{PR}(v) = \|v\|_2^4 / \sum_i v_i^4$ of each column.

    It counts the coordinates a vector is spread over: 1 for a coordinate vector, $P$ for a
    vector whose $P$ entries all have the same magnitude.

    Args:
        vectors: ``(P,)`` or ``(P, k)``.

    Returns:
        A scalar or ``(k,)`` tensor.

    Examples:
        >>> import torch
        >>> participation_number(torch.tensor([1.0, 1.0, 1.0, 1.0]))
        tensor(4.)
        >>> participation_number(torch.tensor([[3.0], [0.0]]))
        tensor([1.])
    """
    sq = vectors * vectors
    return sq.sum(0) ** 2 / (sq * sq).sum(0)


@dataclass
class DiagonalityReport:
    r"""Structure of a Hessian $H$ at one point (see :func:`hessian_diagonality`).

    Attributes:
        method: ``"exact"`` (dense Hessian) or ``"matrix-free"`` (Hutchinson + Lanczos).
        num_params: $P$.
        diagonal_mass: $r = \|\mathrm{diag}\,H\|_2 / \|H\|_F$ (1 for a diagonal matrix).
        diagonal_mass_stderr: jackknife standard error of $r$ (0 when exact).
        frobenius_norm: $\|H\|_F$.
        top_eigenvalues: the ``k`` largest eigenvalues, largest first.
        participation_numbers: $\mathrm{PR}$ of the matching eigenvectors.
        preconditioned_lambda_max: $\lambda_{\max}(D^{-1/2} H D^{-1/2})$ with
            $D = |\mathrm{diag}\,H|$ (1 for a diagonal $H$; its excess over 1 is what a
            diagonal, Adam-like preconditioner leaves on the table). Coordinates with a zero
            diagonal are left out.
        block_masses: per parameter tensor $b$, $\|H_{bb}\|_F^2 / \|H\|_F^2$ (the share of
            the Hessian in that tensor's diagonal block; the rest couples different tensors).
        eigenvector_block_mass: per top eigenvector, the share $\sum_{i \in b} v_i^2$ of
            each parameter tensor.
        num_hvps: Hessian-vector products spent.
        notes: anything worth knowing about how the numbers were obtained.
        convergence: matrix-free only: the Lanczos report (``info`` of
            :class:`~diagnostics.Eigenpairs`) of the top eigenpairs (``"top_eigenpairs"``) and
            of the preconditioned $\lambda_{\max}$ (``"preconditioned"``); empty when exact.
    """

    method: str
    num_params: int
    diagonal_mass: float
    diagonal_mass_stderr: float
    frobenius_norm: float
    top_eigenvalues: list[float]
    participation_numbers: list[float]
    preconditioned_lambda_max: float
    block_masses: dict[str, float]
    eigenvector_block_mass: list[dict[str, float]]
    num_hvps: int
    notes: list[str] = field(default_factory=list)
    convergence: dict[str, dict] = field(default_factory=dict)

    def __repr__(self) -> str:
        err = f" ± {self.diagonal_mass_stderr:.3f}" if self.diagonal_mass_stderr else ""
        eig = ", ".join(f"{v:.3g}" for v in self.top_eigenvalues)
        pr = ", ".join(f"{v:.2f}" for v in self.participation_numbers)
        blocks = ", ".join(f"{k}: {v:.3f}" for k, v in self.block_masses.items())
        return (
            f"DiagonalityReport(method={self.method!r}, P={self.num_params},\n"
            f"  diagonal_mass={self.diagonal_mass:.4f}{err}, "
            f"frobenius_norm={self.frobenius_norm:.4g},\n"
            f"  top_eigenvalues=[{eig}],\n  participation_numbers=[{pr}],\n"
            f"  preconditioned_lambda_max={self.preconditioned_lambda_max:.4g},\n"
            f"  block_masses={{{blocks}}}, num_hvps={self.num_hvps})"
        )

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        return asdict(self)


def _block_shares(op: HessianOperator, vectors: torch.Tensor) -> list[dict[str, float]]:
    sq = vectors * vectors  # (P, k)
    total = sq.sum(0)
    return [
        {b.name: float(sq[b.start : b.stop, j].sum() / total[j]) for b in op.blocks}
        for j in range(vectors.shape[1])
    ]


def hessian_diagonality(
    model: nn.Module | HessianOperator,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    batch: Sequence[Any] | None = None,
    *,
    k: int = 3,
    method: str = "auto",
    max_exact_params: int = 4096,
    num_probes: int = 100,
    block_probes: int | None = None,
    seed: int = 0,
    progress: bool = True,
    **operator_kwargs: Any,
) -> DiagonalityReport:
    r"""Measure how close the Hessian of a loss is to diagonal.

    Reported (see :class:`DiagonalityReport`): the diagonal mass
    $r = \|\mathrm{diag}\,H\|_2/\|H\|_F$, the participation numbers
    $\mathrm{PR}(v) = 1/\sum_i v_i^4$ of the top-``k`` unit eigenvectors,
    $\lambda_{\max}(D^{-1/2} H D^{-1/2})$ with $D = |\mathrm{diag}\,H|$, and the share of
    $\|H\|_F^2$ in each parameter tensor's diagonal block.

    ``method="exact"`` builds $H$ densely by chunked Hessian-vector products ($P$ of them) and
    uses a symmetric eigendecomposition: everything is exact. ``method="matrix-free"`` uses
    ``num_probes`` Rademacher probes for $\mathrm{diag}\,H$ and $\|H\|_F^2$ (the diagonal
    mass through the debiased $\|\mathrm{diag}\,H\|^2$ estimate
    $(m\|\hat d\|^2 - \hat F)/(m-1)$, with a jackknife error bar), block Lanczos for the
    eigenpairs and for the preconditioned $\lambda_{\max}$ (which then uses the estimated
    diagonal), and ``block_probes`` probes supported on each tensor for the block masses.
    ``"auto"`` is exact when $P \le$ ``max_exact_params``. The matrix-free numbers come from
    :func:`~diagnostics.hutchinson` and :func:`~diagnostics.eigsh`, applied to the operator,
    to its diagonally preconditioned form and to its diagonal blocks (each a
    :class:`~diagnostics.FunctionOperator`); their Lanczos reports are in
    :attr:`DiagonalityReport.convergence`.

    **A subset of the parameters** (``param_names=``, passed to :class:`HessianOperator`):
    $H$ is then the Hessian with respect to those tensors alone, the others held fixed (they
    enter detached, so no graph is recorded through them), and every number above is that
    of this diagonal block of the full Hessian, computed with products of its size: the
    matrix-free path never forms a matrix, and ``"auto"`` picks the exact one when the subset
    has at most ``max_exact_params`` coordinates. ``param_names`` takes a list of names from
    ``model.named_parameters()`` or a dict keyed by them, e.g. the recurrent parameters of one
    residual block of a deep stack, :func:`~diagnostics.block_recurrent_parameters` ($\nu$,
    $\theta$ and $\gamma$ of an LRU block):
    ``hessian_diagonality(stack, loss_fn, batch, param_names=block_recurrent_parameters(stack,
    1), method="matrix-free")``.

    **NaN is an error**, and so is a zero Hessian: NaN or Inf in the loss, the parameters or
    the batch, and a loss that does not depend on the parameters (or is linear in them), raise
    a ``ValueError`` saying which, since no diagonality is defined. A Hessian whose diagonal is
    zero reports ``preconditioned_lambda_max`` as NaN, with a note.

    Args:
        model: an ``nn.Module`` (then give ``loss_fn`` and ``batch``) or a ready
            :class:`HessianOperator`.
        loss_fn: ``loss_fn(model(*inputs), targets)``.
        batch: ``(inputs, targets)``.
        k: number of top eigenpairs.
        method: ``"auto"``, ``"exact"`` or ``"matrix-free"``.
        max_exact_params: size limit of ``"auto"`` for the exact method.
        num_probes: Hutchinson probes (matrix-free).
        block_probes: probes per parameter tensor for the block masses (matrix-free);
            default ``num_probes``; 0 skips the block masses, otherwise at least 3.
        seed: seed of probes and Lanczos start.
        progress: show progress bars.
        **operator_kwargs: passed to :class:`HessianOperator` (``param_names``: the subset
            above; ``chunk_size``,
            ``backend``, and for a batch sharded over a process group ``process_group``,
            ``reduction``, ``shard_size``). With a group (the default one when
            :mod:`torch.distributed` is initialised), the report is that of the concatenated
            batch and the same on every rank; every rank must call this function.

    Returns:
        A :class:`DiagonalityReport`.

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", arXiv 2405.21064 (Hessian at the optimum, Section 4.3).

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(3, 1, bias=False).double()
        >>> x = torch.eye(3, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0])
        >>> y = torch.zeros(3, 1, dtype=torch.float64)
        >>> loss = lambda out, target: 0.5 * ((out - target) ** 2).sum()
        >>> report = hessian_diagonality(model, loss, (x, y), k=1, progress=False)
        >>> report.diagonal_mass, report.top_eigenvalues, report.participation_numbers
        (1.0, [9.0], [1.0])
    """
    if isinstance(model, HessianOperator):
        if operator_kwargs:
            raise ValueError(f"operator options {sorted(operator_kwargs)} apply only when a "
                             "model is given, not a HessianOperator")
        op = model
    else:
        if loss_fn is None or batch is None:
            raise ValueError("give loss_fn and batch with a model (or pass a HessianOperator)")
        op = HessianOperator(model, loss_fn, batch, progress=progress, **operator_kwargs)
    if method not in ("auto", "exact", "matrix-free"):
        raise ValueError(f"method must be 'auto', 'exact' or 'matrix-free', got {method!r}")
    n = op.num_params
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if block_probes is not None and block_probes != 0 and block_probes < 3:
        raise ValueError(f"block_probes must be 0 (skip the block masses) or >= 3, got "
                         f"{block_probes}")
    if method == "auto":
        method = "exact" if n <= max_exact_params else "matrix-free"
    start_hvps = op.num_hvps
    notes: list[str] = []

    convergence: dict[str, dict] = {}
    if method == "exact":
        h = op.dense(progress=progress).to(torch.float64)  # (P, P)
        diag = h.diagonal()
        fro_sq = float((h * h).sum())
        _check_hessian(fro_sq)
        mass = float(diag.norm() / fro_sq**0.5)
        mass_se = 0.0
        evals, evecs = torch.linalg.eigh(h)  # ascending
        top_vals = evals.flip(0)[:k]
        top_vecs = evecs.flip(1)[:, :k]
        keep = _kept(diag, op.dtype, notes)
        lam_pre = float("nan")
        if bool(keep.any()):
            scale = diag.abs()[keep].rsqrt()
            pre = scale[:, None] * h[keep][:, keep] * scale[None, :]
            lam_pre = float(torch.linalg.eigvalsh(pre)[-1])
        blocks = {
            b.name: float((h[b.start : b.stop, b.start : b.stop] ** 2).sum() / fro_sq)
            for b in op.blocks
        }
    else:
        est = hutchinson(op, num_probes, seed=seed, progress=progress)
        diag = est.diag.to(torch.float64)
        fro_sq = est.frobenius_sq
        _check_hessian(fro_sq)
        mass, mass_se = est.diagonal_mass, est.diagonal_mass_stderr
        notes.append(f"diagonal mass and Frobenius norm from {num_probes} Hutchinson probes")
        top = eigsh(op, k, block_size=min(k, 8), seed=seed, progress=progress)
        convergence["top_eigenpairs"] = top.info
        top_vals, top_vecs = top.values.to(torch.float64), top.vectors.to(torch.float64)
        keep = _kept(diag, op.dtype, notes)
        lam_pre = float("nan")
        if bool(keep.any()):
            scale = torch.where(keep, diag.abs().clamp(min=torch.finfo(torch.float64).tiny)
                                .rsqrt(), torch.zeros_like(diag)).to(op.dtype)[:, None]  # (P, 1)
            pre = FunctionOperator(lambda v: scale * (op @ (scale * v)), n, dtype=op.dtype,
                                   device=op.device, is_symmetric=True)
            pre_pairs = eigsh(pre, 1, seed=seed, progress=progress)
            convergence["preconditioned"] = pre_pairs.info
            lam_pre = float(pre_pairs.values[0])
        notes.append("preconditioned lambda_max uses the Hutchinson diagonal")
        nb = num_probes if block_probes is None else block_probes
        blocks = {}
        if nb:
            for i, b in enumerate(op.blocks):
                est_b = hutchinson(_diagonal_block(op, b), nb, seed=seed + 1 + i)
                blocks[b.name] = est_b.frobenius_sq / fro_sq
            notes.append(f"block masses from {nb} probes per tensor")
    return DiagonalityReport(
        method=method,
        num_params=n,
        diagonal_mass=mass,
        diagonal_mass_stderr=mass_se,
        frobenius_norm=fro_sq**0.5,
        top_eigenvalues=[float(v) for v in top_vals],
        participation_numbers=[float(v) for v in participation_number(top_vecs)],
        preconditioned_lambda_max=lam_pre,
        block_masses=blocks,
        eigenvector_block_mass=_block_shares(op, top_vecs),
        num_hvps=op.num_hvps - start_hvps,
        notes=notes,
        convergence=convergence,
    )


def _check_hessian(fro_sq: float) -> None:
    """A Hessian whose diagonality is defined: finite and not zero."""
    if fro_sq != fro_sq or fro_sq == float("inf"):
        raise ValueError("the Hessian holds NaN or Inf: check the loss, the parameters and the "
                         "batch for NaN or Inf")
    if fro_sq == 0.0:
        raise ValueError("the Hessian is zero (the loss does not depend on the parameters, or is "
                         "linear in them): its diagonality is undefined")


def _kept(diag: torch.Tensor, dtype: torch.dtype, notes: list[str]) -> torch.Tensor:
    """Coordinates whose diagonal is not zero to round-off (the preconditioner's support)."""
    d = diag.abs()
    keep = d > d.max() * 1e3 * torch.finfo(dtype).eps
    dropped = int((~keep).sum())
    if not bool(keep.any()):
        notes.append("the diagonal is zero: no preconditioned spectrum")
    elif dropped:
        notes.append(f"{dropped} coordinates with zero diagonal left out of the preconditioned "
                     "spectrum")
    return keep


def _diagonal_block(op: HessianOperator, b: ParameterBlock) -> FunctionOperator:
    """The diagonal block $H_{bb}$ of one parameter tensor, as an operator of its own."""

    def matmat(v: torch.Tensor) -> torch.Tensor:  # (P_b, c) -> (P_b, c)
        full = torch.zeros(op.num_params, v.shape[1], dtype=op.dtype, device=op.device)
        full[b.start : b.stop] = v
        return (op @ full)[b.start : b.stop]

    return FunctionOperator(matmat, b.numel, dtype=op.dtype, device=op.device,
                            is_symmetric=True, chunk_size=op.chunk_size)
