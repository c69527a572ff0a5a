"""``mix_seed``: the one rule for derived seeds, which keeps the streams the documented results
were produced with."""

import numpy as np
import pytest

from recurrent_params.seeding import STRIDES, mix_seed


def test_the_legacy_formulas_are_kept():
    seed, step, salt, rank, base = 11, 37, 3, 2, 4
    # optim.lsc: final measurement, per-rank Gaussian stream
    assert mix_seed(seed, step=step + 1, salt=salt) == seed + 7919 * (step + 1) + 104729 * salt
    assert mix_seed(seed, rank=rank + 1) == seed + 1_000_003 * (rank + 1)
    # experiments.teacher_student: student init, per-seed data, held-out batch
    assert mix_seed(seed, run=base) == base * 100_003 + seed
    assert mix_seed(0, run=base, step=seed + 1) == base * 100_003 + 7919 * (seed + 1)
    assert mix_seed(base, stream=1) == 10**6 + base


def test_strides_are_distinct_and_the_map_is_linear():
    assert len(set(STRIDES.values())) == len(STRIDES)
    assert mix_seed(5) == 5
    assert mix_seed(5, step=2, rank=1) == mix_seed(5, step=2) + mix_seed(0, rank=1)
    assert mix_seed(np.int64(3), salt=np.int32(1)) == 3 + STRIDES["salt"]


def test_bad_indices():
    with pytest.raises(ValueError, match="unknown index 'epoch'"):
        mix_seed(0, epoch=1)
    with pytest.raises(TypeError, match="step must be an int"):
        mix_seed(0, step=1.5)
    with pytest.raises(TypeError, match="seed must be an int"):
        mix_seed(True)
