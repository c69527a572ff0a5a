"""The one progress-bar helper of the diagnostics package (tqdm, silent when not on a terminal)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(iterable: Iterable | None, enabled: bool, desc: str, total: int) -> Any:
    """Wrap ``iterable`` in a tqdm bar when ``enabled``, else return it unchanged.

    The bar passes ``disable=None``, which tqdm turns into "off unless stderr is a terminal", so
    logs written to a file or a pipe hold no carriage returns. With ``iterable=None`` and
    ``enabled`` the result is a manual bar (call ``update(n)`` and ``close()``); disabled, it is
    ``None``.

    Args:
        iterable: what to iterate over, or ``None`` for a manual bar.
        enabled: show a bar at all.
        desc: the bar's label.
        total: number of steps.

    Returns:
        The bar, or ``iterable`` itself when disabled.
    """
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, disable=None)
