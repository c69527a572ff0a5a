r"""Derived seeds: one documented rule for every place that needs several random streams.

A run seeded with ``seed`` often needs independent streams: one per pre-training step, per
data-parallel rank, per repetition of a measurement, per model of a stacked run. They are all
derived by one integer map,

$$ \mathrm{mix\_seed}(s, k_1, \dots) = s + \sum_i \mathrm{stride}_i\, k_i , $$

with a fixed prime stride per kind of index (:data:`STRIDES`). The map is linear so that the
seeds stay readable (``seed + 7919 * step``) and the streams that produced the documented
results stay the same: the strides are the numbers the pre-trainer and the teacher-student
experiment used before this module held them. Distinct primes of different orders of
magnitude keep the seeds of nearby indices of different kinds apart (a collision needs, e.g.,
7919 steps to equal one 7919-stride of another kind and is harmless: the streams are only
meant to differ, not to be independent in any stronger sense; ``torch.Generator`` scrambles
the integer).
"""

from __future__ import annotations

import operator

__all__ = ["STRIDES", "mix_seed"]

STRIDES: dict[str, int] = {"step": 7_919, "run": 100_003, "salt": 104_729,
                           "stream": 1_000_000, "rank": 1_000_003}
"""The stride of each kind of index, all prime except ``stream`` (a round offset).

* ``step``: 7919, the 1,000th prime: one stream per step of a sequence of draws
  (a pre-training step; a seed's data stream in a stacked run).
* ``run``: 100,003, the first prime above $10^5$: one stream per run of a sweep
  (the experiment's ``base_seed``).
* ``salt``: 104,729, the 10,000th prime: repetitions of one measurement.
* ``stream``: $10^6$: a separate stream of the same seed (e.g. a held-out batch).
* ``rank``: 1,000,003, the first prime above $10^6$: one stream per data-parallel rank."""


def mix_seed(seed: int, **indices: int) -> int:
    r"""The seed of the stream ``indices`` of a run seeded with ``seed``:
    $s + \sum_k \mathrm{STRIDES}[k]\, i_k$.

    Args:
        seed: the run's seed.
        **indices: an integer index per kind of stream, keys from :data:`STRIDES`
            (``step``, ``run``, ``salt``, ``stream``, ``rank``).

    Returns:
        The derived integer seed (for ``torch.Generator().manual_seed``).

    Raises:
        TypeError: a seed or an index that is not an int.
        ValueError: an unknown kind of index.

    Examples:
        >>> mix_seed(3, step=2, salt=1)  # 3 + 7919 * 2 + 104729
        120570
        >>> mix_seed(5)
        5
    """
    out = _as_int(seed, "seed")
    for kind, index in indices.items():
        if kind not in STRIDES:
            raise ValueError(f"mix_seed: unknown index {kind!r}; expected one of "
                             f"{sorted(STRIDES)}")
        out += STRIDES[kind] * _as_int(index, kind)
    return out


def _as_int(value, name: str) -> int:
    """``operator.index`` (ints, numpy integers, 0-d integer tensors), refusing bools."""
    if isinstance(value, bool):
        raise TypeError(f"mix_seed: {name} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"mix_seed: {name} must be an int, got {type(value).__name__}") from None
