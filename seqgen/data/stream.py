"""One continuous text as one stream of symbol ids (char-rnn's data): read in chunks, checked to be
UTF-8 text, encoded once into the token cache and memory-mapped, so memory stays flat in the
text's size and a second run on the same file starts at once.

    ids, vocab = read_stream("book.txt", cache_dir)          # (N,) uint16 memmap, its vocabulary
    train, val = split_stream(len(ids), val_fraction=0.1)     # the first 90% / the last 10%
"""
from __future__ import annotations

import codecs
import gzip
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from ..vocab import SPECIALS, Vocab
from .token_cache import cache_key, file_identity, open_or_build

CHUNK = 1 << 22  # bytes read (and characters encoded) at a time: about 100 MB of work arrays
MAX_SYMBOLS = 65535  # ids are stored as uint16


class StreamError(ValueError):
    """The text cannot be one stream: empty, not text, or symbols a vocabulary lacks."""


def _chunks(path: Path) -> Iterator[str]:
    """The file's text, decoded chunk by chunk (a .gz file is read through gzip).

    Raises:
        StreamError: the bytes are not UTF-8 (a binary file), naming the offset.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    opener = gzip.open if path.suffix == ".gz" else open
    offset = 0
    with opener(path, "rb") as handle:
        while True:
            raw = handle.read(CHUNK)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                raise StreamError(f"{path} is not UTF-8 text (an undecodable byte at offset "
                                  f"{offset + err.start:,}); is it a binary file?") from None
            if "\x00" in text:
                raise StreamError(f"{path} holds NUL bytes (offset {offset + text.index(chr(0)):,}"
                                  "); is it a binary file?")
            if text:
                yield text
            if not raw:
                return
            offset += len(raw)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def text_vocab(path: Path) -> Vocab:
    """Every character of the file, most frequent first (after the special symbols)."""
    counts: Counter[str] = Counter()
    for text in _chunks(path):  # counted as code points, chunk by chunk, at numpy's speed
        points, n = np.unique(_codepoints(text), return_counts=True)
        counts.update({chr(int(c)): int(k) for c, k in zip(points, n)})
    if not counts:
        raise StreamError(f"{path} is empty: a stream needs text")
    if len(counts) + len(SPECIALS) > MAX_SYMBOLS:
        raise StreamError(f"{path} has {len(counts):,} distinct characters; at most "
                          f"{MAX_SYMBOLS - len(SPECIALS):,} fit a character stream")
    return Vocab([*SPECIALS, *sorted(counts, key=lambda c: (-counts[c], c))])


def _encode(path: Path, vocab: Vocab, out: Path) -> int:
    """Writes the file's ids to ``out`` (raw uint16) chunk by chunk; returns their number.

    Raises:
        StreamError: a character the vocabulary lacks (a resumed run's), naming the first.
    """
    symbols = [s for s in vocab.itos if len(s) == 1]
    points = np.array([ord(s) for s in symbols], dtype=np.uint32)
    order = np.argsort(points)
    points, ids = points[order], np.array([vocab.stoi[s] for s in symbols], dtype=np.uint16)[order]
    total = 0
    with out.open("wb") as handle:
        for text in _chunks(path):
            cps = _codepoints(text)
            at = np.searchsorted(points, cps).clip(max=max(len(points) - 1, 0))
            known = points[at] == cps if len(points) else np.zeros(len(cps), dtype=bool)
            if not known.all():
                missing = sorted({chr(c) for c in cps[~known][:10000]})
                raise StreamError(f"{path} has {int((~known).sum()):,} characters the "
                                  f"vocabulary lacks (first: {missing[0]!r}); pass --no-resume "
                                  "to learn a new one")
            handle.write(ids[at].tobytes())
            total += len(cps)
    return total


def read_stream(path: str | Path, cache_dir: str | Path, *, vocab: Vocab | None = None
                ) -> tuple[np.ndarray, Vocab]:
    """The file as (N,) uint16 ids, memory-mapped from the token cache, and its vocabulary
    (``vocab`` when given: a resumed run keeps its own).

    Raises:
        StreamError: one line, for an empty or binary file, or characters ``vocab`` lacks.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    given = vocab.to_list() if vocab is not None else None
    key = cache_key({"stream": file_identity(path), "vocab": given})

    def build(folder: Path) -> dict:
        learnt = vocab or text_vocab(path)
        n = _encode(path, learnt, folder / "ids.u16")
        if n == 0:
            raise StreamError(f"{path} is empty: a stream needs text")
        return {"symbols": n, "vocab": learnt.to_list()}

    folder, meta = open_or_build(cache_dir, key, build)
    ids = np.memmap(folder / "ids.u16", dtype=np.uint16, mode="r", shape=(meta["symbols"],))
    return ids, Vocab(meta["vocab"])


def split_stream(n: int, *, val_fraction: float) -> tuple[slice, slice]:
    """The first ``1 - val_fraction`` of ``n`` symbols train, the rest validate (nanoGPT's split
    of Tiny Shakespeare, the one its published figures use)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1) for a stream, got {val_fraction}")
    cut = int(n * (1 - val_fraction))
    return slice(0, cut), slice(cut, n)
