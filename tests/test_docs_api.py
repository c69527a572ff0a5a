"""Every public name (each package's ``__all__``) has an entry in the API reference."""

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"


@pytest.mark.parametrize("package", ["recurrent_params", "optim", "diagnostics"])
def test_every_public_name_is_documented(package):
    module = importlib.import_module(package)
    page = (DOCS / f"{package}.md").read_text()
    documented = set(re.findall(rf"^::: {package}\.(\w+)", page, flags=re.M))
    public = {name for name in module.__all__ if not name.startswith("__")}
    missing = sorted(public - documented)
    assert not missing, f"add '::: {package}.<name>' to docs/api/{package}.md for {missing}"


@pytest.mark.parametrize("package", ["recurrent_params", "optim", "diagnostics"])
def test_every_public_name_exists(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which does not exist"


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["recurrent_params", "optim", "diagnostics"])
def test_docstring_examples_use_the_section_griffe_renders_as_code(package):
    # griffe turns ``>>>`` lines into code blocks only under ``Examples:``; under ``Example:``
    # they render as nested block quotes, and doctest flags show on the page
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.fullmatch(r"\s*Example:\s*", line) or "# doctest:" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "write 'Examples:' and no doctest flags:\n" + "\n".join(offenders)


# a LaTeX command in a docstring that is not a raw string loses its backslash to an escape:
# "\text" becomes a tab + "ext", "\bar" a backspace, "\frac" a form feed ... and the page shows
# broken math; the same characters pasted into a Markdown page do the same
_ESCAPED = re.compile(r"[\t\x07\x08\x0b\x0c]")


def _docstrings(path: Path):
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                yield getattr(node, "name", "<module>"), node.body[0].lineno, doc


def test_no_docstring_or_page_holds_an_escaped_latex_command():
    offenders = []
    for package in ("recurrent_params", "optim", "diagnostics", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, line, doc in _docstrings(path):
                if _ESCAPED.search(doc):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} ({name})")
    for path in sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]:
        for i, text in enumerate(path.read_text().splitlines(), 1):
            if _ESCAPED.search(text):
                offenders.append(f"{path.relative_to(ROOT)}:{i}")
    assert not offenders, ("a control character where a LaTeX backslash was meant (make the "
                           "docstring r\"\"\"...\"\"\"):\n" + "\n".join(offenders))
