"""The ``recurrent-params`` command line: one subcommand per paper experiment.

Each experiment lives in ``recurrent_params/experiments/<name>.py`` and exposes

* ``SUMMARY``: one sentence, the subcommand's line in ``recurrent-params --help`` (optional:
  without it, the first sentence of ``HELP``),
* ``HELP``: a one-paragraph description shown by ``recurrent-params <name> --help``,
* ``add_arguments(parser)``: its own options (typed with the shared validators of
  :mod:`recurrent_params.experiments._arg_types`),
* ``run(args) -> dict``: runs it, prints its table, returns a JSON-serialisable summary.

The experiments are imported lazily so that ``--help`` is instant and a missing optional
dependency of one experiment never breaks the others.

Errors are one line and never a traceback: bad arguments exit with status 2
(``recurrent-params <name>: error: argument --x: ...``), values an experiment rejects and
files that cannot be read or written with status 1. Warnings the library raises while an
experiment runs are printed as one line each, ``recurrent-params: warning: <message>``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import warnings
from pathlib import Path

import torch

from recurrent_params.allocator import keep_freed_memory
from recurrent_params.experiments._arg_types import positive_int, seed

#: subcommand -> module under ``recurrent_params.experiments``.
EXPERIMENTS: dict[str, str] = {
    "memory": "memory",
    "teacher-student": "teacher_student",
    "effective-lr": "effective_lr",
    "hessian": "hessian",
    "lsc": "lsc",
    "demo": "demo",
    "long-memory": "long_memory",
    "signal-propagation": "signal_propagation",
}

# a full stop ends a sentence when whitespace (or the end) follows it: "arXiv 2405.21064" and
# "e.g. x" inside parentheses do not end one
_SENTENCE_END = re.compile(r"\.(?=\s|$)")


def first_sentence(text: str) -> str:
    """The first sentence of ``text``: up to the first full stop that is followed by whitespace
    or the end, outside parentheses (so ``"(arXiv 2405.21064)"`` stays whole).

    Examples:
        >>> first_sentence("The curse of memory (arXiv 2405.21064). For lam near 1, ...")
        'The curse of memory (arXiv 2405.21064).'
    """
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth <= 0 and _SENTENCE_END.match(text, i):
            return text[:i + 1]
    return text.rstrip()


def summary_of(module) -> str:
    """The subcommand's line in ``--help``: its ``SUMMARY``, else the first sentence of ``HELP``."""
    return getattr(module, "SUMMARY", None) or first_sentence(module.HELP)


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors print one line and exit with status 2, without a usage dump."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=seed, default=0, help="random seed, in [0, 2**32)")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for results (JSON/CSV) and figures (PNG)")
    parser.add_argument("--plot", type=Path, default=None, help="write the main figure here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch intra-op threads (default: torch's choice)")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subparser per experiment."""
    parser = _OneLineErrorParser(
        prog="recurrent-params",
        description="Reproduce the core results of the curse-of-memory (arXiv 2405.21064) and "
        "Local Stability Condition (arXiv 2308.12075) papers, on generated data and on real "
        "sequences (sequential MNIST / Fashion-MNIST, the Brown corpus).",
    )
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True,
                                parser_class=_OneLineErrorParser)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(f"recurrent_params.experiments.{module_name}")
        p = sub.add_parser(name, help=summary_of(module), description=module.HELP)
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


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command line: the message, without the source line."""
    text = " ".join(str(message).split())
    print(f"recurrent-params: warning: {text}", file=sys.stderr if file is None else file)


def _os_error(what: str, path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{what} {str(path)!r}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m recurrent_params``."""
    args = build_parser().parse_args(argv)
    args.device = _check_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    prefix = f"recurrent-params {args.experiment}: error:"
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"{prefix} cannot create --out {_os_error('folder', args.out, exc)}",
                  file=sys.stderr)
            return 1
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            summary = args._module.run(args)
        except (ValueError, RuntimeError) as exc:
            print(f"{prefix} {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            where = repr(str(exc.filename)) if exc.filename is not None else "a file"
            print(f"{prefix} cannot write or read {where} ({exc.strerror or exc})",
                  file=sys.stderr)
            return 1
    if args.out is not None and summary is not None:
        path = args.out / f"{args.experiment}.json"
        try:
            path.write_text(json.dumps(summary, indent=2, default=float))
        except OSError as exc:
            print(f"{prefix} cannot write {_os_error('file', path, exc)}", file=sys.stderr)
            return 1
        print(f"results written to {path}")
    return 0


def console_main() -> int:
    """The ``recurrent-params`` console script and ``python -m recurrent_params``.

    :func:`main` plus one process-wide setting that a library call must not make: freed host
    memory stays in the process (:func:`recurrent_params.keep_freed_memory`), so training steps
    at 784+ steps stop page-faulting their batch-sized temporaries in afresh (measured in
    ``docs/benchmarks.md``). ``RECURRENT_PARAMS_KEEP_FREED_MEMORY=0`` leaves glibc's defaults.
    """
    if os.environ.get("RECURRENT_PARAMS_KEEP_FREED_MEMORY", "1") != "0":
        keep_freed_memory()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
