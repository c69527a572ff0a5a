"""Bad inputs to ``optim``: the LSC pre-trainer and the optimisers."""

from __future__ import annotations

CASES: list = []
