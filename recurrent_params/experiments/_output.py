"""Printing tables and saving results/figures for the experiments."""

from __future__ import annotations

import csv
from pathlib import Path


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of a list of flat dicts (same keys in every row)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    width = {k: max(len(k), *(len(cell(r[k])) for r in rows)) for k in keys}
    lines = ["  ".join(k.rjust(width[k]) for k in keys)]
    lines += ["  ".join(cell(r[k]).rjust(width[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def write_table(rows: list[dict], csv_path: Path | None = None) -> None:
    """Print the table; also write it as CSV when a path is given."""
    print(format_table(rows))
    if csv_path is not None and rows:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure (PNG), creating the folder, and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure written to {path}")
