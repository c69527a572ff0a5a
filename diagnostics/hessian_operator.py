"""Matrix-free Hessian of a loss with respect to the trainable parameters of a module.

The operator only multiplies (Hessian-vector products, the dense form, blocks, unflatten); the
estimators built on products (Hutchinson, Lanczos, scipy's ARPACK) live in
:mod:`diagnostics.estimators` and take this operator like any other, and the products
themselves (and the choice of their ``torch.func`` backend) are computed by the private
``diagnostics._hvp`` engine, the flat parameter vector's layout by
:mod:`diagnostics.parameter_blocks`. (About 420 lines, a quarter of them the class docstring.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from diagnostics._hvp import BACKENDS, HVPEngine
from diagnostics._progress import progress_bar
from diagnostics.distributed import ShardReducer, unwrap_model
from diagnostics.estimators import (
    Eigenpairs,
    HutchinsonEstimate,
    as_scipy_operator,
    eigsh,
    hutchinson,
)
from diagnostics.parameter_blocks import (
    ParameterBlock,
    flatten_parameters,
    parameter_layout,
    unflatten_vector,
)

__all__ = ["HessianOperator"]


def _tensors(obj: Any) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _symmetrize_(h: torch.Tensor, block: int) -> None:
    """``h <- (h + h^T) / 2`` in place, one pair of blocks at a time."""
    n = h.shape[0]
    for i in range(0, n, block):
        bi = slice(i, min(n, i + block))
        for j in range(i, n, block):
            bj = slice(j, min(n, j + block))
            avg = 0.5 * (h[bi, bj] + h[bj, bi].T)
            h[bi, bj] = avg
            h[bj, bi] = avg.T


class HessianOperator:
    r"""Matrix-free Hessian $H = \nabla^2_\theta\, \ell(f_\theta(x), y)$ of a loss.

    $\theta$ is the flat real vector of the trainable parameters of ``model`` (in
    ``named_parameters()`` order; a complex parameter enters through
    ``torch.view_as_real``, i.e. as interleaved real and imaginary parts). The loss is
    evaluated with :func:`torch.func.functional_call`, so buffers, parametrizations
    (whose originals are the parameters, e.g. ``parametrizations.lam.original0``) and the
    module's train/eval mode are used as they are: nothing is switched to ``eval()`` and no
    ``.grad`` is written. Dropout or other randomness in train mode makes the Hessian random:
    call ``model.eval()`` yourself if that is what you want. The point $\theta$ is the
    parameters' value at construction: build a new operator after changing them.

    Hessian-vector products are computed with :mod:`torch.func`, by forward-over-reverse
    (``jvp`` of ``grad``) or reverse-over-reverse (``vjp`` of ``grad``) differentiation,
    vectorised over blocks of vectors with :func:`torch.func.vmap` and split into chunks of
    ``chunk_size`` vectors to bound memory. Reverse-over-reverse builds the graph of the
    gradient once and keeps it (memory: the activations of one backward pass, as a retained
    double-backward graph), so each product is one backward pass through it. With
    ``backend="auto"`` the first block is computed each way and the fastest is kept. Models
    that no ``torch.func`` transform can handle (e.g. an old-style ``autograd.Function``) fall
    back, with a warning, to a plain ``torch.autograd`` double backward, one vector at a time.

    **Data-parallel.** When :mod:`torch.distributed` is initialised (or a ``process_group``
    is given), every rank holds a shard of $n_r$ samples of a batch of $N = \sum_r n_r$, and
    the operator is that of the whole batch: for a mean loss
    $\ell = \sum_r \frac{n_r}{N}\,\ell_r$, so

    $$H v = \sum_r \frac{n_r}{N}\, H_r v, \qquad \nabla \ell = \sum_r \frac{n_r}{N}
    \nabla \ell_r$$

    (weights 1 with ``reduction="sum"``). The reduction is one ``all_reduce`` per call of
    :meth:`hvp` (so per block of vectors), in :meth:`loss` and in :meth:`gradient`; everything
    built on products (:meth:`dense`, the estimators, :func:`~diagnostics.hessian_diagonality`)
    is then the same on every rank, because the products are, and their random probes and
    starting vectors are drawn from seeds on the CPU. Every rank must call the same methods in
    the same order (they are collective). Construction checks that the ranks agree on the
    parameters (bit for bit) and on their number. Without a group (one process) nothing is
    communicated. A
    ``DistributedDataParallel`` model is unwrapped (its ``.module`` is used), so DDP's
    forward and its gradient hooks never run; FSDP-sharded models are refused (see
    :func:`~diagnostics.unwrap_model`).

    **An operator, not a solver.** It follows the protocol of
    :mod:`diagnostics.estimators.operator` (``shape``, ``@``, ``dtype``, ``device``,
    ``is_symmetric = True``, ``chunk_size``), so :func:`~diagnostics.eigsh`,
    :func:`~diagnostics.hutchinson` and any later estimator take it as they take a dense
    matrix. :meth:`eigsh`, :meth:`hutchinson` and :meth:`as_linear_operator` are one-line
    shorthands for them; ``hutchinson_diagonal`` and ``frobenius_norm_sq`` are deprecated
    forwarders (a ``DeprecationWarning``; read the fields of :meth:`hutchinson` instead).

    **NaN in gives NaN out**: with NaN or Inf in the loss, the parameters or the batch, the
    products, :meth:`dense` and :meth:`gradient` hold NaN (no error here);
    :func:`~diagnostics.eigsh` then raises a ``ValueError`` naming it, and
    :func:`~diagnostics.hutchinson` returns NaN estimates.

    Args:
        model: any ``nn.Module``, or a ``DistributedDataParallel`` module.
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` where ``outputs = model(*inputs)``
            (for the cells of this package, ``outputs`` is the pair ``(y, last_state)``).
        batch: ``(inputs, targets)``; ``inputs`` is a tensor or a tuple of positional
            arguments. Tensors must be on the parameters' device.
        param_names: restrict $\theta$ to these parameter names (default: every parameter
            with ``requires_grad``); the others are held fixed (detached: no graph is recorded
            through them). A dict keyed by names is accepted too.
        chunk_size: vectors per vmapped HVP call.
        backend: ``"auto"``, ``"forward-over-reverse"``, ``"reverse-over-reverse"`` or
            ``"autograd"``.
        progress: show tqdm bars for long loops.
        process_group: ``None`` (the default group when :mod:`torch.distributed` is
            initialised, else none), a ``ProcessGroup``, or ``"local"`` (this rank's shard
            alone); see :func:`~diagnostics.resolve_process_group`.
        reduction: ``"mean"`` when ``loss_fn`` averages over the samples (shards weighted by
            $n_r/N$) or ``"sum"`` when it sums them (weights 1). Only used with a group.
        shard_size: $n_r$; default the leading dimension of the first input tensor
            (batch-first). Only used with a group.

    Attributes:
        is_symmetric: ``True`` (a Hessian is symmetric; the estimators skip their probe check).
        blocks: one :class:`ParameterBlock` per parameter tensor, in order.
        num_hvps: Hessian-vector products computed so far.
        reducer: the :class:`~diagnostics.ShardReducer` (inactive in one process).

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
        >>> y = torch.zeros(2, 1, dtype=torch.float64)
        >>> loss = lambda out, target: 0.5 * ((out - target) ** 2).sum()
        >>> H = HessianOperator(model, loss, (x, y), progress=False)
        >>> H.dense()  # X^T X for a least-squares loss
        tensor([[2., 2.],
                [2., 4.]], dtype=torch.float64)
        >>> H @ torch.tensor([1.0, 0.0], dtype=torch.float64)
        tensor([2., 2.], dtype=torch.float64)
    """

    is_symmetric = True

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        batch: Sequence[Any],
        *,
        param_names: Sequence[str] | None = None,
        chunk_size: int = 32,
        backend: str = "auto",
        progress: bool = True,
        process_group: Any = None,
        reduction: str = "mean",
        shard_size: int | None = None,
    ) -> None:
        model = unwrap_model(model)
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("batch must be a pair (inputs, targets)")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.model = model
        self.loss_fn = loss_fn
        inputs, targets = batch
        self._inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        self._targets = targets
        self.chunk_size = chunk_size
        self.progress = progress
        self.num_hvps = 0

        named = dict(model.named_parameters())
        if param_names is None:
            chosen = [(n, p) for n, p in named.items() if p.requires_grad]
        else:
            # names of a DDP wrapper's parameters carry a "module." prefix: accept them
            param_names = [n[len("module."):] if n not in named and n.startswith("module.")
                           else n for n in param_names]
            unknown = [n for n in param_names if n not in named]
            if unknown:
                raise ValueError(f"unknown parameter names {unknown}; available: {list(named)}")
            chosen = [(n, named[n]) for n in param_names]
        if not chosen:
            raise ValueError("the model has no trainable parameters to differentiate")

        blocks, self.dtype, self.device = parameter_layout(chosen)
        for t in _tensors((self._inputs, self._targets)):
            if t.device != self.device:
                raise ValueError(
                    f"batch tensors must be on the parameters' device {self.device}, "
                    f"got a tensor on {t.device}"
                )
        self.blocks: list[ParameterBlock] = blocks
        self._theta = flatten_parameters(chosen)  # (P,)
        # the parameters held fixed enter detached: otherwise every product would record an
        # autograd graph through them (and its result would keep that graph alive)
        kept = {n for n, _ in chosen}
        self._fixed = {n: p.detach() for n, p in named.items() if n not in kept}
        if shard_size is None:
            first = next(iter(_tensors(self._inputs)), None)
            shard_size = int(first.shape[0]) if first is not None and first.dim() else 1
        self.reducer = ShardReducer(shard_size, process_group=process_group,
                                    reduction=reduction, device=self.device,
                                    check=(self._theta.numel(),))
        self.reducer.check_identical(self._theta, "the parameters")
        self._hvp = HVPEngine(self.loss_at, self._theta, backend)
        self._dense: torch.Tensor | None = None

    # ------------------------------------------------------------------ basic properties
    @property
    def num_params(self) -> int:
        """Size $P$ of the flat parameter vector (real coordinates)."""
        return self._theta.numel()

    @property
    def shape(self) -> tuple[int, int]:
        """``(P, P)``."""
        return (self.num_params, self.num_params)

    @property
    def names(self) -> list[str]:
        """Parameter names, in flat-vector order."""
        return [b.name for b in self.blocks]

    @property
    def offsets(self) -> dict[str, tuple[int, int]]:
        """``name -> (start, stop)`` in the flat vector."""
        return {b.name: (b.start, b.stop) for b in self.blocks}

    @property
    def backend(self) -> str:
        """The HVP backend in use (resolved after the first product when ``"auto"``)."""
        return self._hvp.name

    @property
    def batched_products(self) -> bool:
        """Whether a block of vectors is multiplied in one ``vmap``-ed product (``False``:
        looped over the cached gradient graph, for models that ``vmap`` cannot batch);
        known after the first product."""
        return self._hvp.vmap

    def flat_parameters(self) -> torch.Tensor:
        """The point $\\theta$ (a detached copy), shape ``(P,)``."""
        return self._theta.clone()

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat ``(P,)`` vector into ``name -> tensor`` (complex blocks as complex)."""
        self._check_vector(vector)
        return unflatten_vector(vector, self.blocks)

    def __repr__(self) -> str:
        return (
            f"HessianOperator(num_params={self.num_params}, blocks={len(self.blocks)}, "
            f"dtype={self.dtype}, device={self.device}, backend={self.backend!r}"
            + ("" if self.batched_products or not self._hvp.resolved else ", looped") + ")"
        )

    # ------------------------------------------------------------------ loss and products
    def loss_at(self, theta: torch.Tensor) -> torch.Tensor:
        r"""The loss at a flat parameter vector ``theta`` (``(P,)``, the layout of
        :meth:`flat_parameters`) on this rank's batch, as a 0-d tensor that ``torch.func``
        transforms can differentiate: ``torch.func.hessian(op.loss_at)(op.flat_parameters())``
        is the dense Hessian by torch's own route (the reference the operator's products are
        tested and benchmarked against; it holds every intermediate at once)."""
        params = unflatten_vector(theta, self.blocks)
        out = functional_call(self.model, {**self._fixed, **params}, self._inputs, strict=False)
        loss = self.loss_fn(out, self._targets)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        return loss.reshape(())

    def loss(self) -> float:
        """The loss at $\\theta$ (of the whole batch of the process group, if any)."""
        with torch.no_grad():
            return float(self.reducer.reduce_(self.loss_at(self._theta).detach().clone()))

    def gradient(self) -> torch.Tensor:
        """The gradient $\\nabla_\\theta \\ell$, shape ``(P,)`` (reduced like the loss)."""
        return self.reducer.reduce_(torch.func.grad(self.loss_at)(self._theta))

    def hvp(self, vectors: torch.Tensor, *, progress: bool | None = None) -> torch.Tensor:
        """Hessian-vector products of a block of row vectors.

        Args:
            vectors: ``(P,)`` or ``(k, P)``.
            progress: override the operator's ``progress`` setting.

        Returns:
            ``H v`` with the same shape as ``vectors``.
        """
        single = vectors.dim() == 1
        vs = vectors.unsqueeze(0) if single else vectors
        self._check_vector(vs[0] if vs.shape[0] else vectors.new_zeros(self.num_params))
        vs = vs.to(dtype=self.dtype)
        show = (self.progress if progress is None else progress) and vs.shape[0] > self.chunk_size
        chunks = vs.split(self.chunk_size)
        outs = []
        for chunk in progress_bar(chunks, show, "HVPs", len(chunks)):
            outs.append(self._hvp(chunk))
            self.num_hvps += chunk.shape[0]
        out = torch.cat(outs) if outs else vs.clone()
        if self.reducer.active and outs:
            # the one place where ranks meet: sum_r w_r H_r v (a fresh tensor, safe in place)
            out = self.reducer.reduce_(out.contiguous())
        return out[0] if single else out

    def matvec(self, vector: torch.Tensor) -> torch.Tensor:
        """``H @ v`` for a flat vector ``(P,)`` or a matrix ``(P, k)`` of column vectors."""
        if vector.dim() == 1:
            return self.hvp(vector)
        if vector.dim() == 2 and vector.shape[0] == self.num_params:
            return self.hvp(vector.T).T
        raise ValueError(
            f"expected a vector ({self.num_params},) or a matrix ({self.num_params}, k), "
            f"got shape {tuple(vector.shape)}"
        )

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        return self.matvec(other)

    def _check_vector(self, v: torch.Tensor) -> None:
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(v).__name__}")
        if v.shape[-1] != self.num_params:
            raise ValueError(
                f"expected vectors of length {self.num_params}, got shape {tuple(v.shape)}"
            )
        if v.device != self.device:
            raise ValueError(f"expected a tensor on {self.device}, got one on {v.device}")
        if v.is_complex():
            raise TypeError("vectors must be real (complex parameters enter as real views)")

    # ------------------------------------------------------------------ dense and spectra
    def dense(
        self, *, symmetrize: bool = True, cache: bool = False, progress: bool | None = None
    ) -> torch.Tensor:
        """The exact Hessian ``(P, P)``, filled by blocks of ``chunk_size`` rows (``P`` HVPs).

        Peak memory is one ``(P, P)`` matrix plus one block (two matrices with ``cache``).

        Args:
            symmetrize: return $(H + H^\\top)/2$ (computed in place, block by block),
                removing round-off asymmetry.
            cache: keep a copy on the operator (the point $\\theta$ is fixed), so later calls,
                e.g. by :func:`~diagnostics.hessian_diagonality`, cost no HVPs.
            progress: override the operator's ``progress`` setting.
        """
        if self._dense is not None:
            h = self._dense.clone()
        else:
            h = self._build_dense(progress)
            if cache:
                self._dense = h.clone()
        if symmetrize:
            _symmetrize_(h, max(self.chunk_size, 256))
        return h

    def _build_dense(self, progress: bool | None) -> torch.Tensor:
        n = self.num_params
        show = self.progress if progress is None else progress
        h = torch.empty(n, n, dtype=self.dtype, device=self.device)  # (P, P)
        starts = range(0, n, self.chunk_size)
        for s in progress_bar(starts, show and n > self.chunk_size, "Hessian", len(starts)):
            e = min(n, s + self.chunk_size)
            eye = torch.zeros(e - s, n, dtype=self.dtype, device=self.device)
            eye[torch.arange(e - s), torch.arange(s, e)] = 1.0
            h[s:e] = self.hvp(eye, progress=False)  # rows of H (symmetric)
        return h

    # ------------------------------------------------------------------ estimator shorthands
    def eigsh(self, k: int = 6, *, progress: bool | None = None, **kwargs: Any) -> Eigenpairs:
        """Shorthand for :func:`diagnostics.eigsh` ``(self, k, ...)`` (same arguments).

        ``progress`` defaults to the operator's setting. Returns :class:`~diagnostics.Eigenpairs`
        (unpacks as ``(values, vectors)``; convergence details in ``.info``).
        """
        return eigsh(self, k, progress=self.progress if progress is None else progress, **kwargs)

    def hutchinson(self, num_probes: int = 100, *, block: str | None = None,
                   progress: bool | None = None, **kwargs: Any) -> HutchinsonEstimate:
        """Shorthand for :func:`diagnostics.hutchinson` ``(self, num_probes, ...)``.

        ``block`` here is a parameter name (see :attr:`names`), turned into its span of the flat
        vector; ``progress`` defaults to the operator's setting; other arguments as there.
        """
        span = None
        if block is not None:
            if block not in self.offsets:
                raise ValueError(f"unknown block {block!r}; available: {self.names}")
            span = self.offsets[block]
        show = self.progress if progress is None else progress
        return hutchinson(self, num_probes, block=span, progress=show, **kwargs)

    def as_linear_operator(self):
        """Shorthand for :func:`diagnostics.estimators.as_scipy_operator` ``(self)``."""
        return as_scipy_operator(self)

    def hutchinson_diagonal(self, num_probes: int = 100, *, seed: int = 0
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Deprecated: use :meth:`hutchinson` and its ``diag`` and ``diag_stderr``."""
        _deprecated("hutchinson_diagonal", "hutchinson(...).diag and .diag_stderr")
        est = self.hutchinson(num_probes, seed=seed)
        return est.diag, est.diag_stderr

    def frobenius_norm_sq(self, num_probes: int = 100, *, seed: int = 0) -> tuple[float, float]:
        """Deprecated: use :meth:`hutchinson` and its ``frobenius_sq`` and its stderr."""
        _deprecated("frobenius_norm_sq", "hutchinson(...).frobenius_sq and .frobenius_sq_stderr")
        est = self.hutchinson(num_probes, seed=seed)
        return est.frobenius_sq, est.frobenius_sq_stderr


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"HessianOperator.{old} is deprecated and will be removed; use {new}",
                  DeprecationWarning, stacklevel=3)
