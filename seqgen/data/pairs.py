"""Sentence pairs for any pair task (translation, summarisation): where they come from, and the
held-out rows carved from them when no validation or test file is given.

A :class:`PairSource` says cheaply what it is (its files' identities, for the token cache key)
and streams its rows only when a cache entry has to be built, so a cached run reads nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .carve import TEST, TRAIN, VAL, carve
from .records import aligned, detect_format, fields
from .token_cache import file_identity, texts_digest

Pair = tuple[str, str]


def read_pairs(path: str | Path, *, fmt: str = "", src_field: str = "0", tgt_field: str = "1"
               ) -> Iterator[Pair]:
    """(source, target) of every row of a TSV / CSV / JSONL file (format by extension unless
    ``fmt``); fields by 0-based index or header / key."""
    yield from fields(path, detect_format(path, fmt), [str(src_field), str(tgt_field)])


@dataclass
class PairSource:
    """Training rows, and the held-out rows given beside them (each a stream factory).

    Attributes:
        train: makes a fresh iterator over the training rows.
        val, test: the same for given held-out rows, or None: carve them from ``train``.
        identity: what names this data without reading it (file paths, sizes, mtimes).
        carve_test: whether to carve test rows when none are given.
    """

    train: Callable[[], Iterable[Pair]]
    val: Callable[[], Iterable[Pair]] | None = None
    test: Callable[[], Iterable[Pair]] | None = None
    identity: dict = field(default_factory=dict)
    carve_test: bool = False

    @classmethod
    def from_file(cls, path: str, *, val: str = "", test: str = "", fmt: str = "",
                  src_field: str = "0", tgt_field: str = "1") -> "PairSource":
        """A pairs file (and optional validation / test files in the same format)."""
        detect_format(path, fmt)  # a one-line error now, not on the first read

        def reader(p: str) -> Callable[[], Iterable[Pair]]:
            return lambda: read_pairs(p, fmt=fmt, src_field=src_field, tgt_field=tgt_field)

        files = {name: p for name, p in (("train", path), ("val", val), ("test", test)) if p}
        identity = {name: file_identity(p) for name, p in files.items()}
        return cls(reader(path), reader(val) if val else None, reader(test) if test else None,
                   {**identity, "format": fmt, "fields": [src_field, tgt_field]},
                   carve_test=True)

    @classmethod
    def from_aligned(cls, train: tuple[Path, Path], val: tuple[Path, Path] | None = None
                     ) -> "PairSource":
        """Line-aligned files: ``(source file, target file)`` per split."""
        identity = {"train": [file_identity(p) for p in train]}
        if val:
            identity["val"] = [file_identity(p) for p in val]
        return cls(lambda: aligned(*train), (lambda: aligned(*val)) if val else None,
                   identity=identity)

    @classmethod
    def from_memory(cls, train: list[Pair], val: list[Pair] | None = None) -> "PairSource":
        """Rows already in memory (a Hugging Face dataset), named by a digest of their text."""
        digest = texts_digest(t for rows in (train, val or []) for pair in rows for t in pair)
        return cls(lambda: train, (lambda: val) if val is not None else None,
                   identity={"memory": digest, "val_given": val is not None})


@dataclass
class Labelled:
    """The rows of a source, each labelled TRAIN / VAL / TEST, and how they were split."""

    rows: Iterator[tuple[int, Pair]]
    val: list[Pair]  # given validation rows (carved ones arrive through ``rows``)
    test: list[Pair]
    carve: dict | None  # the carve record (None: nothing carved)


def labelled(source: PairSource, *, val_fraction: float, val_max: int, test_fraction: float,
             seed: int) -> Labelled:
    """The source's rows with their split; validation and test rows are carved reproducibly
    (seeded permutation, capped) when not given; given ones are capped at ``val_max``."""
    cap = val_max or None
    val = list(islice(source.val(), cap)) if source.val else []
    test = list(islice(source.test(), cap)) if source.test else []
    want_val = source.val is None
    want_test = source.test is None and source.carve_test and test_fraction > 0
    if not (want_val or want_test):
        return Labelled(((TRAIN, row) for row in source.train()), val, test, None)
    n = sum(1 for _ in source.train())
    split, record = carve(n, val_fraction=val_fraction if want_val else 0.0, val_max=val_max,
                          test_fraction=test_fraction if want_test else 0.0, seed=seed)
    rows = ((int(split[i]), row) for i, row in enumerate(source.train()))
    return Labelled(rows, val, test, record)


__all__ = ["Pair", "PairSource", "Labelled", "labelled", "read_pairs", "TRAIN", "VAL", "TEST"]
