"""Tokenizers: text <-> symbols at character, word or subword level, each serialisable to a dict.

A tokenizer only splits and joins text; the :class:`~seqgen.vocab.Vocab` maps symbols to ids.
Every tokenizer round-trips through ``to_dict``/``tokenizer_from_dict`` so a checkpoint can rebuild
it without pickled code.
"""
from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path
from typing import Iterable, Protocol

from .vocab import SPECIALS

_WORD_RE = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


class Tokenizer(Protocol):
    level: str

    def tokenize(self, text: str) -> list[str]: ...

    def detokenize(self, symbols: list[str]) -> str: ...

    def to_dict(self) -> dict: ...


class CharTokenizer:
    """Every character is a symbol; case and spacing are kept as they are."""

    level = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def detokenize(self, symbols: list[str]) -> str:
        return "".join(symbols)

    def to_dict(self) -> dict:
        return {"level": self.level}


class WordTokenizer:
    """Words and punctuation marks, split by a Unicode-aware regex; joined back with light rules."""

    level = "word"

    def __init__(self, *, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return _WORD_RE.findall(text.lower() if self.lowercase else text)

    def detokenize(self, symbols: list[str]) -> str:
        text = " ".join(symbols)
        text = _NO_SPACE_BEFORE.sub(r"\1", text)
        return _NO_SPACE_AFTER.sub(r"\1", text)

    def to_dict(self) -> dict:
        return {"level": self.level, "lowercase": self.lowercase}


class SubwordTokenizer:
    """SentencePiece unigram or BPE pieces; detokenisation is exact (spaces live in the pieces)."""

    level = "subword"

    def __init__(self, model_proto: bytes) -> None:
        try:
            import sentencepiece as spm
        except ImportError as err:  # pragma: no cover - dependency declared in pyproject
            raise ImportError("subword tokenisation needs the 'sentencepiece' package") from err
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int, model_type: str = "unigram",
              character_coverage: float = 1.0) -> "SubwordTokenizer":
        """Learns a subword model from training text (seconds for Multi30k)."""
        import sentencepiece as spm

        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus.txt"
            corpus.write_text("\n".join(t for t in texts if t.strip()), encoding="utf-8")
            spm.SentencePieceTrainer.train(
                input=str(corpus), model_prefix=str(Path(tmp) / "sp"), vocab_size=vocab_size,
                model_type=model_type, character_coverage=character_coverage,
                pad_id=-1, bos_id=-1, eos_id=-1, unk_id=0, hard_vocab_limit=False,
                minloglevel=2,
            )
            return cls((Path(tmp) / "sp.model").read_bytes())

    def tokenize(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def detokenize(self, symbols: list[str]) -> str:
        return self._sp.decode_pieces([s for s in symbols if s not in SPECIALS])

    def to_dict(self) -> dict:
        return {"level": self.level, "model": base64.b64encode(self.model_proto).decode("ascii")}


def tokenizer_from_dict(spec: dict) -> Tokenizer:
    """Rebuilds a tokenizer saved with ``to_dict``."""
    level = spec.get("level")
    if level == "char":
        return CharTokenizer()
    if level == "word":
        return WordTokenizer(lowercase=bool(spec.get("lowercase", False)))
    if level == "subword":
        return SubwordTokenizer(base64.b64decode(spec["model"]))
    raise ValueError(f"unknown tokenizer level {level!r}; expected char, word or subword")
