r"""Data-parallel support: which process group, how shards are weighted, DDP unwrapping.

The Hessian tools and the LSC pre-trainer measure quantities of a loss or of a batch. When a
model trains data-parallel, every rank holds a *shard* of the batch: rank $r$ holds $n_r$
samples of the $N = \sum_r n_r$ of the whole batch. A quantity that is a mean over the batch
(a mean loss, its gradient and Hessian, a mean radius) is then the shard-size weighted sum

$$\bar q = \sum_r w_r\, \bar q_r, \qquad w_r = \frac{n_r}{N},$$

and a quantity that is a sum over the batch (a summed loss) is the plain sum ($w_r = 1$).
:class:`ShardReducer` computes the weights once (one ``all_gather`` of the shard sizes) and
reduces tensors with one ``all_reduce`` each; every rank then holds the same result, the one a
single process would compute on the concatenated batch.

**Which group.** ``process_group=None`` (the default everywhere) means the default group
when :mod:`torch.distributed` is initialised and has more than one rank, and no reduction
otherwise; a ``ProcessGroup`` means that group; the string ``"local"`` means no reduction
(each rank works on its own shard alone). Without a group nothing is communicated and the
single-process code path is taken unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # annotations only: torch builds without distributed support still import
    from torch.distributed import ProcessGroup

__all__ = ["ShardReducer", "resolve_process_group", "unwrap_model"]

#: class names of FSDP wrappers (FSDP1's wrapper and FSDP2's ``fully_shard`` mixin)
_FSDP_NAMES = ("FullyShardedDataParallel", "FSDPModule")


def _scalar(value: Any) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def resolve_process_group(process_group: Any = None) -> ProcessGroup | None:
    """The process group to reduce over, or ``None`` for no reduction.

    Args:
        process_group: ``None`` (the default group when :mod:`torch.distributed` is
            initialised with more than one rank, else no reduction), a
            ``torch.distributed.ProcessGroup``, or ``"local"`` (no reduction).

    Returns:
        A process group of at least two ranks, or ``None``.

    Raises:
        ValueError: for a string other than ``"local"``, or a group given while
            :mod:`torch.distributed` is not initialised.

    Examples:
        >>> resolve_process_group() is None  # torch.distributed not initialised
        True
        >>> resolve_process_group("local") is None
        True
    """
    if isinstance(process_group, str):
        if process_group != "local":
            raise ValueError(f"process_group must be a ProcessGroup, None or 'local', got "
                             f"{process_group!r}")
        return None
    dist = torch.distributed
    initialised = dist.is_available() and dist.is_initialized()
    if process_group is None:
        if not initialised:
            return None
        group = dist.group.WORLD
    else:
        if not initialised:
            raise ValueError("a process_group was given but torch.distributed is not "
                             "initialised (call torch.distributed.init_process_group first)")
        group = process_group
    return group if dist.get_world_size(group) > 1 else None


def unwrap_model(model: Any) -> nn.Module:
    """The module to act on: ``model.module`` for DDP (and ``DataParallel``), else ``model``.

    The diagnostics call the wrapped module directly (through
    :func:`torch.func.functional_call` or plain calls), so DDP's forward, which prepares its
    gradient-reduction hooks, never runs, and no gradient is reduced behind their back.

    Args:
        model: an ``nn.Module`` or a ``DistributedDataParallel`` / ``DataParallel`` wrapper.

    Returns:
        The plain module.

    Raises:
        TypeError: when ``model`` is not a module, or is sharded by FSDP (each rank holds a
            slice of the parameters, while these tools need the whole parameter vector on
            every rank: gather a full copy into a plain module first).

    Examples:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> unwrap_model(net) is net
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a DistributedDataParallel module, got "
                        f"{type(model).__name__}")
    if any(cls.__name__ in _FSDP_NAMES for cls in type(model).__mro__):
        raise TypeError(
            "FSDP-sharded models are not supported: each rank holds only a shard of the "
            "parameters, but the Hessian tools and LSC pre-training need the whole parameter "
            "vector on every rank. Gather a full copy (e.g. a full state_dict loaded into an "
            "unsharded replica) and pass that, or wrap the replica in DDP")
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while isinstance(model, (DistributedDataParallel, DataParallel)):
        model = model.module
    return model


class ShardReducer:
    r"""Reduce per-shard quantities across a process group, weighted by shard sizes.

    Every rank of the group constructs it with its own shard size (a collective call: one
    ``all_gather``). Rank $r$ gets the weight $w_r = n_r/N$ (``reduction="mean"``) or
    $w_r = 1$ (``"sum"``), and :meth:`reduce_` turns a local $\bar q_r$ into
    $\sum_r w_r \bar q_r$ on every rank. Without a group (one process, or ``"local"``) it
    does nothing and costs nothing.

    Args:
        shard_size: $n_r$, the number of samples this rank holds (at least 0; the group's
            total must be positive).
        process_group: see :func:`resolve_process_group`.
        reduction: ``"mean"`` (the per-shard quantities are means over the shard) or
            ``"sum"`` (sums over the shard).
        device: where the small bookkeeping tensors live (a CUDA device for NCCL).
        check: further integers that must agree on every rank (e.g. the number of
            parameters); a mismatch raises on every rank.

    Attributes:
        group: the process group, or ``None``.
        weight: $w_r$.
        shard_sizes: $n_r$ of every rank of the group (``[shard_size]`` without a group).

    Raises:
        ValueError: for a negative shard size, an empty group batch, or ``check`` values that
            differ between ranks (raised on every rank, so none is left waiting).

    Examples:
        >>> import torch
        >>> reducer = ShardReducer(8)  # one process: nothing to reduce
        >>> reducer.weight, reducer.shard_sizes
        (1.0, [8])
        >>> reducer.reduce_(torch.tensor([2.0]))
        tensor([2.])
    """

    def __init__(self, shard_size: int, *, process_group: Any = None,
                 reduction: str = "mean", device: torch.device | str = "cpu",
                 check: tuple[int, ...] = ()) -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if int(shard_size) < 0:
            raise ValueError(f"shard_size must be >= 0, got {shard_size}")
        self.group = resolve_process_group(process_group)
        self.reduction = reduction
        self.device = torch.device(device)
        if self.group is None:
            self.weight = 1.0
            self.shard_sizes = [int(shard_size)]
            if int(shard_size) == 0 and reduction == "mean":
                raise ValueError("the batch is empty")
            return
        dist = torch.distributed
        mine = torch.tensor([int(shard_size), *map(int, check)], dtype=torch.int64,
                            device=device)
        every = [torch.empty_like(mine) for _ in range(dist.get_world_size(self.group))]
        dist.all_gather(every, mine, group=self.group)
        rows = [t.tolist() for t in every]
        self.shard_sizes = [r[0] for r in rows]
        if any(r[1:] != rows[0][1:] for r in rows):
            raise ValueError(f"the ranks of the process group disagree: {[r[1:] for r in rows]}"
                             " (e.g. different models or parameter selections on different "
                             "ranks)")
        total = sum(self.shard_sizes)
        if total <= 0:
            raise ValueError(f"the shards of the process group are all empty: shard sizes "
                             f"{self.shard_sizes}")
        self.weight = 1.0 if reduction == "sum" else int(shard_size) / total

    @property
    def active(self) -> bool:
        """Whether there is anything to reduce (a group of two or more ranks)."""
        return self.group is not None

    @property
    def total(self) -> int:
        """$N$, the samples of the whole (group) batch."""
        return sum(self.shard_sizes)

    def reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        r"""$\sum_r w_r\, t_r$ in place on every rank (the tensor itself without a group)."""
        if self.group is None:
            return tensor
        if self.weight != 1.0:
            tensor.mul_(self.weight)
        torch.distributed.all_reduce(tensor, group=self.group)
        return tensor

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        r"""$\sum_r t_r$ in place on every rank (no weights)."""
        if self.group is not None:
            torch.distributed.all_reduce(tensor, group=self.group)
        return tensor

    def weighted_means(self, means: dict[str, Any], sizes: dict[str, int]
                       ) -> dict[str, torch.Tensor]:
        r"""Group means $\bar m_k = \sum_r n_{k,r}\, m_{k,r} / \sum_r n_{k,r}$ on every rank.

        For quantities whose sample counts vary per key (e.g. radii of transitions measured on
        different numbers of points), with one ``all_reduce`` for all keys. A 0-d tensor that
        requires grad stays differentiable in this rank's term: the value is the group mean
        and the gradient is $\frac{n_{k,r}}{\sum_r n_{k,r}}\nabla m_{k,r}$, so gradients
        summed over the ranks (:meth:`sum_`) are those of the group mean. Without a group the
        values come back unchanged (floats as 0-d float64 tensors).

        Args:
            means: ``{key: this rank's mean}`` (floats or 0-d tensors).
            sizes: ``{key: this rank's number of samples}``.

        Returns:
            ``{key: group mean}``.
        """
        if self.group is None:
            return {k: v if isinstance(v, torch.Tensor) else torch.tensor(float(v),
                                                                          dtype=torch.float64)
                    for k, v in means.items()}
        names = list(means)
        local = torch.tensor([_scalar(means[k]) * sizes[k] for k in names]
                             + [float(sizes[k]) for k in names], dtype=torch.float64,
                             device=self.device)
        torch.distributed.all_reduce(local, group=self.group)
        n = len(names)
        out = {}
        for i, k in enumerate(names):
            total = float(local[n + i])
            mean = local[i] / max(total, 1.0)
            value = means[k]
            if isinstance(value, torch.Tensor):
                mean = mean.to(device=value.device, dtype=value.dtype)
                if value.requires_grad:
                    mean = mean + (value - value.detach()) * (sizes[k] / max(total, 1.0))
            out[k] = mean
        return out

    def check_identical(self, tensor: torch.Tensor, what: str) -> None:
        """Raise ``ValueError`` on every rank unless ``tensor`` is bit-identical on all ranks."""
        if self.group is None:
            return
        flat = tensor.detach().reshape(-1)
        hi, lo = flat.clone(), flat.clone()
        torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX, group=self.group)
        torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN, group=self.group)
        if not torch.equal(hi, lo):
            worst = float((hi - lo).abs().max())
            raise ValueError(f"{what} differ between the ranks of the process group (by up to "
                             f"{worst:.3g}); every rank must hold the same values (DDP "
                             "broadcasts rank 0's parameters at construction)")

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite ``tensor`` on every rank with the group's first rank's value."""
        if self.group is not None:
            src = torch.distributed.get_global_rank(self.group, 0)
            torch.distributed.broadcast(tensor, src=src, group=self.group)
        return tensor

    def __repr__(self) -> str:
        if self.group is None:
            return "ShardReducer(local)"
        return (f"ShardReducer(ranks={len(self.shard_sizes)}, shard_sizes={self.shard_sizes}, "
                f"reduction={self.reduction!r}, weight={self.weight:.4g})")
