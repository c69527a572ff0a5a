"""A word vocabulary in the Penn Treebank language-model style: the most frequent words, with
``<unk>`` for the rest and ``<eos>`` closing every sentence.

References:
    Mikolov et al., "Recurrent neural network based language model", Interspeech 2010 (the
    10k-word PTB setup); Zaremba, Sutskever & Vinyals, arXiv 1409.2329.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

__all__ = ["Vocabulary", "UNK", "EOS"]

UNK = "<unk>"
"""The token that stands for every word outside the vocabulary (id 0)."""

EOS = "<eos>"
"""The token that ends every sentence (id 1)."""


class Vocabulary:
    """Words to ids and back: ``<unk>`` is 0, ``<eos>`` is 1, then the kept words, most
    frequent first (ties broken alphabetically, so the order is deterministic).

    Args:
        words: the kept words in id order (without ``<unk>`` / ``<eos>``).

    Raises:
        ValueError: when a word repeats or is one of the two special tokens.

    Examples:
        >>> vocab = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"]], max_words=2)
        >>> vocab.itos
        ['<unk>', '<eos>', 'b', 'a']
        >>> vocab.encode(["a", "c", "b"], eos=True).tolist()
        [3, 0, 2, 1]
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("words: a word appears twice")
        if UNK in words or EOS in words:
            raise ValueError(f"words: {UNK} and {EOS} are added by the vocabulary itself")
        self.itos: list[str] = [UNK, EOS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.unk_id = 0
        self.eos_id = 1

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_words: int = 10000) -> Vocabulary:
        """The ``max_words`` most frequent words of ``sentences`` (the special tokens excluded).

        Args:
            sentences: lists of (already normalised) words.
            max_words: how many words to keep, >= 0 (PTB keeps 10,000).

        Raises:
            ValueError: when ``max_words`` is negative.
        """
        if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 0:
            raise ValueError(f"max_words: expected an int >= 0, got {max_words!r}")
        counts = Counter(w for sentence in sentences for w in sentence)
        counts.pop(UNK, None)
        counts.pop(EOS, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([w for w, _ in ranked[:max_words]])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, words: Sequence[str], eos: bool = False) -> torch.Tensor:
        """The int64 ids of ``words`` (unknown ones as ``<unk>``), then ``<eos>`` if asked."""
        ids = [self.stoi.get(w, self.unk_id) for w in words]
        if eos:
            ids.append(self.eos_id)
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        """The words of ``ids``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self.itos[i] for i in ids]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {UNK}, {EOS} and {len(self) - 2} words)"
