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
