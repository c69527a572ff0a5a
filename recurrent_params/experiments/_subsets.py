"""Private: the fixed validation / training / test subsets of the 784-step image experiments.

``long-memory`` and ``lsc --task smnist|fashion`` draw them the same way, so that a run of one
and a run of the other on the same sizes see the same images.
"""

from __future__ import annotations

import torch

__all__ = ["subset_indices"]


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
