"""Private: the fixed validation / training / test subsets of the 784-step image experiments.

``long-memory`` and ``lsc --task smnist|fashion`` draw them the same way, so that a run of one
and a run of the other on the same sizes see the same images, and hold them in one
:class:`ImageTask`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ImageTask", "split_task", "subset_indices"]


@dataclass
class ImageTask:
    """Train / validation / test sequences ``(N, 784, d)`` and labels of one task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str

    def to(self, device, dtype: torch.dtype | None = None) -> ImageTask:
        """The task on ``device``, inputs in ``dtype`` (labels keep theirs)."""
        return ImageTask(self.x_train.to(device, dtype), self.y_train.to(device),
                         self.x_val.to(device, dtype), self.y_val.to(device),
                         self.x_test.to(device, dtype), self.y_test.to(device), self.source)

    def map_inputs(self, fn) -> ImageTask:
        """The task with ``fn`` applied to every split's inputs."""
        return ImageTask(fn(self.x_train), self.y_train, fn(self.x_val), self.y_val,
                         fn(self.x_test), self.y_test, self.source)


def subset_indices(n_train_pool: int, n_test_pool: int, val: int, train: int | None,
                   test: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_idx, val_idx, test_idx)``: fixed draws, the same on every machine.

    The training pool is shuffled once (generator seed 0); its first ``val`` images (at most
    all but one) are the validation set and the next ``train`` (all the rest when ``None``) the
    training set. The test set is the whole test pool, or ``test`` images of it drawn with
    generator seed 1 and kept in their original order.
    """
    order = torch.randperm(n_train_pool, generator=torch.Generator().manual_seed(0))
    n_val = min(val, n_train_pool - 1)
    val_idx, rest = order[:n_val], order[n_val:]
    if train is not None:
        rest = rest[:train]
    test_idx = torch.arange(n_test_pool)
    if test is not None and test < n_test_pool:
        test_idx = torch.randperm(n_test_pool, generator=torch.Generator().manual_seed(1))
        test_idx = test_idx[:test].sort().values
    return rest, val_idx, test_idx


def split_task(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
               source: str, val: int, train: int | None, test: int | None) -> ImageTask:
    """The :class:`ImageTask` of the fixed subsets (:func:`subset_indices`) of two pools."""
    rest, val_idx, test_idx = subset_indices(len(y_tr), len(y_te), val, train, test)
    return ImageTask(x_tr[rest], y_tr[rest], x_tr[val_idx], y_tr[val_idx], x_te[test_idx],
                     y_te[test_idx], source)
