"""The two ways reading a real data set can fail: the files are missing, or they are not what
they should be."""

from __future__ import annotations

from pathlib import Path

from recurrent_params.data.paths import FETCH_COMMAND

__all__ = ["DataNotFoundError", "DataIntegrityError"]


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not in the folder a loader looked in.

    The message names the folder, the files expected there and the command that fetches them
    (``python -m recurrent_params.data.fetch --only NAME``, or ``make data``).

    Args:
        name: the data set, as ``fetch --only`` spells it (``"fashion-mnist"``), or ``None`` for
            a set the fetch script does not provide.
        folder: where the loader looked.
        expected: what it expected to find there.
    """

    def __init__(self, name: str | None, folder: Path, expected: str) -> None:
        self.name = name
        self.folder = Path(folder)
        if name is None:
            how = "pass root= a folder that holds them"
        else:
            how = (f"fetch it with `{FETCH_COMMAND} --only {name}` (or `make data`), "
                   "or pass root= a folder that holds the files")
        super().__init__(f"{name or 'data set'} not found in {self.folder}: expected {expected}; "
                         f"{how}")


class DataIntegrityError(ValueError):
    """A data set's files are there but wrong: a bad header, a count or checksum that does not
    match, or a truncated payload. The message names the file and what was expected."""
