"""Compact, memory-mapped sequence stores: token ids and texts kept on disk as one flat array
plus offsets, so a corpus costs a few bytes per token instead of a Python list per sentence.

``TokenArray`` holds id sequences (uint16 when the vocabulary allows, else int32);
``TextArray`` holds UTF-8 strings. Both are read-only sequences whose items are built on access
(a ``list[int]`` or a ``str``), and both are written by a streaming :class:`ArrayWriter`.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np

OFFSETS, VALUES = ".off", ".bin"


def row_number(index: int, n: int) -> int:
    """``index`` as a row of ``n`` (negative counts from the end); IndexError outside them."""
    row = index + n if index < 0 else index
    if not 0 <= row < n:
        raise IndexError(index)
    return row


class ArrayWriter:
    """Appends sequences to ``stem.bin`` (flat values) and keeps their end offsets.

    Args:
        stem: the path without suffix; ``stem.bin`` and ``stem.off`` are written.
        dtype: numpy dtype of the values (int32 for provisional ids, uint8 for UTF-8 bytes).
    """

    def __init__(self, stem: str | Path, dtype: str = "int32", *, flush_every: int = 1 << 20
                 ) -> None:
        self.stem, self.dtype, self.flush_every = Path(stem), np.dtype(dtype), flush_every
        self.ends = array("q", [0])
        self._buffer = array("i" if self.dtype == np.int32 else "B")
        self._handle = open(self.stem.with_suffix(VALUES), "wb")

    def add(self, values: Sequence[int] | bytes) -> None:
        """Appends one sequence (ids, or the bytes of one text)."""
        if isinstance(values, bytes):
            self._buffer.frombytes(values)
        else:
            self._buffer.extend(values)
        self.ends.append(self.ends[-1] + len(values))
        if len(self._buffer) >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        np.asarray(self._buffer, dtype=self.dtype).tofile(self._handle)
        self._buffer = array(self._buffer.typecode)

    def close(self) -> int:
        """Writes what is buffered and the offsets; returns the number of sequences."""
        self._flush()
        self._handle.close()
        np.asarray(self.ends, dtype=np.int64).tofile(self.stem.with_suffix(OFFSETS))
        return len(self.ends) - 1


def _load(stem: Path, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.fromfile(stem.with_suffix(OFFSETS), dtype=np.int64)
    path = stem.with_suffix(VALUES)
    values = (np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else
              np.zeros(0, dtype=dtype))
    return values, offsets


# ------------------------------------------------------------------------------------------------
class TokenArray(Sequence):
    """Id sequences from a memory-mapped flat array; ``array[i]`` is a ``list[int]``.

    Attributes:
        lengths: (N,) int64 sequence lengths, in memory (8 bytes per sequence).
    """

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values, self.offsets = values, offsets
        self.lengths = np.diff(offsets)

    @classmethod
    def open(cls, stem: str | Path) -> "TokenArray":
        stem = Path(stem)
        dtype = "uint16" if stem.with_suffix(".u16").exists() else "int32"
        return cls(*_load(stem, dtype))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):  # int -> list[int]; slice -> list of lists
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = row_number(index, len(self))
        return self.values[self.offsets[index]:self.offsets[index + 1]].tolist()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


def finish_ids(stem: Path, table: np.ndarray, *, chunk: int = 1 << 22) -> None:
    """Rewrites provisional int32 ids (``stem.bin``) through ``table`` into their final ids,
    stored as uint16 when every id fits (then a ``stem.u16`` marker is written)."""
    small = int(table.max(initial=0)) < 65536
    values, _ = _load(stem, "int32")
    out_path = stem.with_suffix(".tmp")
    with open(out_path, "wb") as handle:
        for start in range(0, len(values), chunk):
            table[values[start:start + chunk]].astype(np.uint16 if small else np.int32).tofile(handle)
    del values
    out_path.replace(stem.with_suffix(VALUES))
    if small:
        stem.with_suffix(".u16").touch()


class TextArray(Sequence):
    """UTF-8 strings from a memory-mapped byte array; ``array[i]`` is a ``str``."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values, self.offsets = values, offsets

    @classmethod
    def open(cls, stem: str | Path) -> "TextArray":
        return cls(*_load(Path(stem), "uint8"))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = row_number(index, len(self))
        return self.values[self.offsets[index]:self.offsets[index + 1]].tobytes().decode("utf-8")

    def __add__(self, other: Sequence[str]) -> list[str]:
        return [*self, *other]

    def __radd__(self, other: Sequence[str]) -> list[str]:
        return [*other, *self]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


class ChainedTokens(Sequence):
    """Several :class:`TokenArray` read as one (e.g. titles, then descriptions)."""

    def __init__(self, *parts: TokenArray) -> None:
        self.parts = parts
        self.lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
        self.starts = np.cumsum([0, *[len(p) for p in parts]])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = row_number(index, len(self))
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.parts[part][index - int(self.starts[part])]
