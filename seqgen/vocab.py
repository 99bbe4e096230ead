"""Vocabulary: a fixed set of special tokens followed by the symbols seen in training text.

The specials always sit at the same indices (PAD=0, BOS=1, EOS=2, UNK=3), so padding is ignored by
the loss through ``ignore_index=PAD`` and searchers can ban PAD/BOS without asking the task.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class Vocab:
    """Maps symbols (characters, words or subword pieces) to ids and back."""

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        if tuple(symbols[: len(SPECIALS)]) != SPECIALS:
            symbols = list(SPECIALS) + [s for s in symbols if s not in SPECIALS]
        if len(set(symbols)) != len(symbols):
            raise ValueError("vocabulary symbols must be unique")
        self.itos: list[str] = symbols
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(symbols)}

    # ---------------------------------------------------------------- building
    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], *, min_freq: int = 1, max_size: int | None = None
    ) -> "Vocab":
        """Counts symbols over tokenised training sequences; most frequent first, ties by symbol.

        Args:
            sequences: tokenised texts (a string counts as a sequence of characters).
            min_freq: drop symbols seen fewer times than this (they become UNK).
            max_size: keep at most this many symbols besides the specials.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        ranked = sorted((s for s, c in counts.items() if c >= min_freq and s not in SPECIALS),
                        key=lambda s: (-counts[s], s))
        return cls(list(SPECIALS) + ranked[:max_size])

    # ---------------------------------------------------------------- mapping
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.stoi

    def encode(self, symbols: Sequence[str], *, strict: bool = False) -> list[int]:
        """Symbols to ids; unseen symbols become UNK, or raise when ``strict``."""
        if strict:
            unknown = sorted({s for s in symbols if s not in self.stoi})
            if unknown:
                raise ValueError(f"symbols not in the vocabulary: {unknown[:10]}")
        return [self.stoi.get(s, UNK) for s in symbols]

    def decode(self, ids: Iterable[int], *, keep_specials: bool = False) -> list[str]:
        """Ids to symbols, stopping at EOS and dropping PAD/BOS unless ``keep_specials``."""
        out = []
        for i in ids:
            i = int(i)
            if not keep_specials:
                if i == EOS:
                    break
                if i in (PAD, BOS):
                    continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return out

    # ---------------------------------------------------------------- persistence
    def to_list(self) -> list[str]:
        return list(self.itos)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"
