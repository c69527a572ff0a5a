"""The 8x8 digits task: shapes, value range, deterministic stratified splits."""

import pytest
import torch

pytest.importorskip("sklearn")

from recurrent_params.experiments.digits import (  # noqa: E402
    N_CLASSES,
    SEQ_LEN,
    load_digits_sequences,
)


def test_shapes_range_and_sizes():
    split = load_digits_sequences(seed=0)
    assert split.x_train.shape[1:] == (SEQ_LEN, 1) and split.x_test.shape[1:] == (SEQ_LEN, 1)
    sizes = [len(split.y_train), len(split.y_val), len(split.y_test)]
    assert sum(sizes) == 1797 and sizes[2] == 360  # ceil(0.2 * 1797)
    for x in (split.x_train, split.x_val, split.x_test):
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert split.y_train.dtype == torch.int64
    flat = load_digits_sequences(seed=0, flatten=True)
    torch.testing.assert_close(flat.x_train, split.x_train.squeeze(-1))


def test_pixel_order_is_row_major():
    from sklearn.datasets import load_digits

    images = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16  # (N, 8, 8)
    split = load_digits_sequences(seed=0, val_fraction=0.0)
    x = torch.cat([split.x_train, split.x_test])[:, :, 0]  # (N, 64)
    # every sequence is some image read row by row
    flat_images = {tuple(r.tolist()) for r in images.reshape(-1, 64)}
    assert all(tuple(r.tolist()) in flat_images for r in x[:50])
    assert x[0, 8:16].tolist() in [img[1].tolist() for img in images if
                                    img.reshape(64).tolist() == x[0].tolist()]


def test_split_is_deterministic_disjoint_and_seeded():
    a, b = load_digits_sequences(seed=3), load_digits_sequences(seed=3)
    torch.testing.assert_close(a.x_test, b.x_test)
    torch.testing.assert_close(a.y_train, b.y_train)
    c = load_digits_sequences(seed=4)
    assert not torch.equal(a.x_test, c.x_test)
    train = {tuple(r.tolist()) for r in a.x_train[:, :, 0]}
    test = [tuple(r.tolist()) for r in a.x_test[:, :, 0]]
    # a few digits images are exact duplicates in the data set; almost none can be shared
    assert sum(t in train for t in test) <= 5


def test_split_is_stratified():
    split = load_digits_sequences(seed=1)
    full = torch.cat([split.y_train, split.y_val, split.y_test])
    share = torch.bincount(full, minlength=N_CLASSES) / len(full)
    for y in (split.y_train, split.y_test):
        part = torch.bincount(y, minlength=N_CLASSES) / len(y)
        assert (part - share).abs().max() < 0.01


@pytest.mark.parametrize("kwargs", [{"test_fraction": 0.0}, {"test_fraction": 1.0},
                                    {"val_fraction": -0.1}, {"val_fraction": 1.0}])
def test_bad_fractions_raise(kwargs):
    with pytest.raises(ValueError, match="fraction"):
        load_digits_sequences(**kwargs)
