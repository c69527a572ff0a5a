"""scikit-learn's 8x8 handwritten digits as a sequence-classification task.

The 1,797 images of ``sklearn.datasets.load_digits`` ship inside the scikit-learn wheel, so
the task runs offline. Read pixel by pixel (row-major) an image is a 64-step sequence of one
feature, a small stand-in for the sequential MNIST of the LSC paper (arXiv 2308.12075);
flattened it is a 64-feature vector for the paper's feed-forward experiment.

Preprocessing: pixel intensities (integers 0..16) are divided by 16, so every input lies in
[0, 1]; no standardisation. The held-out test split is stratified by class and fixed by the
seed (``sklearn.model_selection.train_test_split``), and so is the validation split carved
out of the training part.

This module is public so that later experiments (e.g. spiking networks, which add their own
encoding) can reuse exactly the same data and splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DigitsSplit", "load_digits_sequences", "N_CLASSES", "SEQ_LEN"]

#: number of classes (digits 0..9).
N_CLASSES = 10
#: pixels per image, i.e. time steps of the sequence.
SEQ_LEN = 64


@dataclass
class DigitsSplit:
    """Train / validation / test tensors of the digits task.

    Attributes:
        x_train, x_val, x_test: float inputs in [0, 1], ``(N, 64, 1)`` as sequences or
            ``(N, 64)`` when flattened.
        y_train, y_val, y_test: int64 class labels ``(N,)``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def to(self, device: torch.device | str) -> DigitsSplit:
        """The same split with every tensor on ``device``."""
        return DigitsSplit(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __repr__(self) -> str:
        return (f"DigitsSplit(train={len(self.y_train)}, val={len(self.y_val)}, "
                f"test={len(self.y_test)}, x shape {tuple(self.x_train.shape[1:])})")


def load_digits_sequences(test_fraction: float = 0.2, val_fraction: float = 0.1, seed: int = 0,
                          flatten: bool = False, dtype: torch.dtype = torch.float32
                          ) -> DigitsSplit:
    r"""The 8x8 digits as pixel sequences, split into train / validation / test.

    Each image $X \in \{0..16\}^{8\times 8}$ becomes $x_t = X_{\lfloor t/8\rfloor, t \bmod 8}/16$,
    $t = 0..63$. The test split holds ``test_fraction`` of every class; the validation split
    holds ``val_fraction`` of the rest (also stratified). Both depend only on ``seed``.

    Args:
        test_fraction: share of the images held out for testing, in (0, 1).
        val_fraction: share of the remaining images held out for validation (early stopping),
            in [0, 1); 0 gives an empty validation split.
        seed: fixes both splits.
        flatten: return ``(N, 64)`` vectors instead of ``(N, 64, 1)`` sequences.
        dtype: floating dtype of the inputs.

    Raises:
        ImportError: when scikit-learn is missing (``pip install recurrent-params[experiments]``).
        ValueError: for fractions outside their ranges.

    References:
        Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
        arXiv 2308.12075 (sequential MNIST, here replaced by the offline 8x8 digits).

    Examples:
        >>> split = load_digits_sequences(seed=0)
        >>> split.x_train.shape[1:], float(split.x_train.max()) <= 1.0
        (torch.Size([64, 1]), True)
        >>> len(split.y_train) + len(split.y_val) + len(split.y_test)
        1797
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the digits task needs scikit-learn: "
                          "pip install 'recurrent-params[experiments]'") from exc
    data = load_digits()
    x = torch.as_tensor(data.data, dtype=dtype) / 16.0  # (N, 64)
    y = torch.as_tensor(data.target, dtype=torch.int64)  # (N,)
    idx = torch.arange(len(y)).numpy()
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=data.target,
                                  random_state=seed)
    if val_fraction > 0:
        train, val = train_test_split(rest, test_size=val_fraction,
                                      stratify=data.target[rest], random_state=seed)
    else:
        train, val = rest, rest[:0]
    if not flatten:
        x = x.unsqueeze(-1)  # (N, 64, 1)
    parts = []
    for part in (train, val, test):
        part = torch.as_tensor(part, dtype=torch.int64)
        parts += [x[part], y[part]]
    return DigitsSplit(*parts)
