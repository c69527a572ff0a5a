"""Bad inputs to ``diagnostics``: radii, transitions, Hessian tools, effective learning rates."""

from __future__ import annotations

CASES: list = []
