r"""The one random-probe draw of the estimators: Rademacher vectors, drawn on the CPU."""

from __future__ import annotations

import torch

__all__ = ["rademacher"]


def rademacher(
    num: int,
    size: int,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    span: tuple[int, int] | None = None,
) -> torch.Tensor:
    r"""``num`` Rademacher probes $z \in \{-1, 1\}^P$ as rows, ``(num, size)``.

    Rademacher probes have $E[z z^\top] = I$ and $z_i^2 = 1$, which makes the Hutchinson
    diagonal estimate exact for a diagonal matrix and gives it the smallest variance among
    probes with independent entries (Hutchinson, "A stochastic estimator of the trace of the
    influence matrix for Laplacian smoothing splines", Commun. Stat. Simul. Comput. 18(3),
    1989). They are drawn on the CPU from ``generator`` and then moved to ``device``, so every
    rank of a process group, and every device, sees the same probes for the same seed.

    Args:
        num: number of probes.
        size: $P$.
        generator: a CPU ``torch.Generator`` (consumed: successive calls continue its stream).
        dtype: dtype of the probes.
        device: device of the probes.
        span: ``(start, stop)``: zero every coordinate outside ``start:stop`` (the stream drawn
            is the same as without it).

    Returns:
        ``(num, size)`` tensor of $\pm 1$ (and zeros outside ``span``).

    Examples:
        >>> import torch
        >>> z = rademacher(4, 3, generator=torch.Generator().manual_seed(0))
        >>> z.shape, bool((z.abs() == 1).all())
        (torch.Size([4, 3]), True)
    """
    z = (torch.randint(0, 2, (num, size), generator=generator).to(dtype) * 2 - 1).to(device)
    if span is not None:
        start, stop = span
        z[:, :start] = 0
        z[:, stop:] = 0
    return z
