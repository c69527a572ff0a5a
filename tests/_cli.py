"""Running the ``recurrent-params`` command line inside a test process, and reading what a
sweep wrote."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from recurrent_params.cli import main


def run_cli(argv: list[str]) -> int:
    """``recurrent-params argv`` in this process; its exit status. The torch thread count that
    ``--threads`` sets is restored afterwards, so later tests keep the suite's one thread."""
    threads = torch.get_num_threads()
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (one finished run per line), in file order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]
