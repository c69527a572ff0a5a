"""Fixed-seed permutations that depend on the seed alone, not on the torch or numpy version.

Permuted sequential MNIST (Le, Jaitly & Hinton 2015) feeds every image's pixels in one fixed
random order. Results are comparable across machines and releases only if that order is the
same everywhere, so it is drawn here by a Fisher-Yates shuffle driven by SplitMix64 (Steele,
Lea & Flood 2014), a generator of a few integer operations defined in full below, instead of
``torch.randperm`` or numpy, whose streams may change between releases.

References:
    Le, Jaitly & Hinton, "A simple way to initialize recurrent networks of rectified linear
    units", arXiv 1504.00941 (the permuted pixel-MNIST task).
"""

from __future__ import annotations

import torch

__all__ = ["fixed_permutation"]

_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def fixed_permutation(n: int, seed: int = 0) -> torch.Tensor:
    """A permutation of ``0..n-1`` that depends only on ``(n, seed)``.

    Fisher-Yates from the top: for $i = n-1, \\dots, 1$, swap position $i$ with
    $j = u_i \\bmod (i + 1)$, where $u_i$ is the next SplitMix64 output from state ``seed``.
    (The modulo bias is below $n / 2^{64}$.)

    Args:
        n: the length, >= 0.
        seed: any integer (taken modulo $2^{64}$).

    Returns:
        A ``torch.int64`` tensor of shape ``(n,)`` holding each of ``0..n-1`` once.

    Raises:
        TypeError: when ``n`` or ``seed`` is not an int.
        ValueError: when ``n`` is negative.

    Examples:
        >>> p = fixed_permutation(784, seed=0)
        >>> sorted(p.tolist()) == list(range(784))
        True
        >>> bool((fixed_permutation(784, seed=0) == p).all())
        True
        >>> fixed_permutation(5, seed=1).tolist()
        [2, 1, 4, 3, 0]
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if n < 0:
        raise ValueError(f"n: expected a length >= 0, got {n}")
    order = list(range(n))
    state = seed & _MASK
    for i in range(n - 1, 0, -1):
        state, u = _splitmix64(state)
        j = u % (i + 1)
        order[i], order[j] = order[j], order[i]
    return torch.tensor(order, dtype=torch.int64)
