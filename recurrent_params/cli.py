"""The ``recurrent-params`` command line: one subcommand per paper experiment.

Each experiment lives in ``recurrent_params/experiments/<name>.py`` and exposes

* ``HELP``: a one-paragraph description shown by ``--help``,
* ``add_arguments(parser)``: its own options,
* ``run(args) -> dict``: runs it, prints its table, returns a JSON-serialisable summary.

The experiments are imported lazily so that ``--help`` is instant and a missing optional
dependency of one experiment never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import torch

#: subcommand -> module under ``recurrent_params.experiments``.
EXPERIMENTS: dict[str, str] = {
    "memory": "memory",
    "teacher-student": "teacher_student",
    "effective-lr": "effective_lr",
    "hessian": "hessian",
    "lsc": "lsc",
    "demo": "demo",
    "signal-propagation": "signal_propagation",
}


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors print one line and exit with status 2, without a usage dump."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for results (JSON/CSV) and figures (PNG)")
    parser.add_argument("--plot", type=Path, default=None, help="write the main figure here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subparser per experiment."""
    parser = _OneLineErrorParser(
        prog="recurrent-params",
        description="Reproduce the core results of the curse-of-memory (arXiv 2405.21064) and "
        "Local Stability Condition (arXiv 2308.12075) papers on generated data.",
    )
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True,
                                parser_class=_OneLineErrorParser)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(f"recurrent_params.experiments.{module_name}")
        p = sub.add_parser(name, help=module.HELP.split(".")[0] + ".", description=module.HELP)
        _add_common_arguments(p)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _check_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SystemExit(f"recurrent-params: error: bad --device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("recurrent-params: error: --device cuda but no CUDA device is available")
    return device


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m recurrent_params``."""
    args = build_parser().parse_args(argv)
    args.device = _check_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("recurrent-params: error: --threads must be at least 1")
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    try:
        summary = args._module.run(args)
    except (ValueError, RuntimeError) as exc:
        print(f"recurrent-params {args.experiment}: error: {exc}", file=sys.stderr)
        return 1
    if args.out is not None and summary is not None:
        path = args.out / f"{args.experiment}.json"
        path.write_text(json.dumps(summary, indent=2, default=float))
        print(f"results written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
