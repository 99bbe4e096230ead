"""The on-disk cache of tokenised corpora, and the streaming encoder that fills it.

A cache entry is a folder named by a key: the hash of where the data came from (each source
file's path, size and modification time, or a digest of in-memory texts), the tokenizer's
identity and the data settings that change the arrays. It holds :class:`~.arrays.TokenArray` /
:class:`~.arrays.TextArray` files and ``meta.json`` (vocabularies, tokenizers, held-out texts,
counts). Entries are written to a temporary folder and renamed, so a killed build leaves no
half entry; a second run on the same data opens the arrays memory-mapped and starts at once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..vocab import SPECIALS, Vocab
from .arrays import ArrayWriter, TextArray, TokenArray, finish_ids

DEFAULT_TOKEN_CACHE = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                       / "seqgen" / "tokens")
FORMAT = 1
log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
def file_identity(path: str | Path) -> dict:
    """What names a file's version without reading it: resolved path, size, mtime (ns)."""
    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def texts_digest(texts: Iterable[str]) -> str:
    """A digest of in-memory texts (Hugging Face rows), for sources that are not files."""
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode("utf-8", "replace") + b"\0")
    return digest.hexdigest()


def cache_key(parts: dict) -> str:
    """A short stable key of JSON-able parts (sources, tokenizer identity, settings)."""
    blob = json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def open_or_build(root: str | Path, key: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
    """The entry ``root/key`` and its meta, built by ``build(folder) -> meta`` when absent."""
    root = Path(root).expanduser()
    folder = root / key
    if (folder / "meta.json").is_file():
        log.info("token cache hit: %s", folder)
        return folder, json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        meta = build(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        try:
            tmp.replace(folder)
        except OSError:  # another process finished the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("token cache written: %s", folder)
    return folder, json.loads((folder / "meta.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------
def vocab_from_counts(counts: dict[str, int], *, min_freq: int = 1, max_size: int | None = None
                      ) -> Vocab:
    """What :meth:`Vocab.build` gives for sequences with these symbol counts."""
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}")
    ranked = sorted((s for s, c in counts.items() if c >= min_freq and s not in SPECIALS),
                    key=lambda s: (-counts[s], s))
    return Vocab(list(SPECIALS) + ranked[:max_size])


class CorpusEncoder:
    """Streams tokenised sequences into provisional-id arrays, counting symbols per group,
    then maps each stream to its vocabulary (given, or built from a group's counts).

    Args:
        folder: the cache entry being built.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stoi: dict[str, int] = {}
        self.counts: dict[str, list[int]] = {}
        self.ids: dict[str, ArrayWriter] = {}
        self.texts: dict[str, ArrayWriter] = {}

    def add(self, name: str, symbols: Sequence[str], *, group: str | None = "",
            keep: int | None = None) -> None:
        """Appends one tokenised sequence to the id stream ``name`` (its first ``keep``
        symbols; all by default), all its symbols counted in ``group`` (None: not counted)."""
        if name not in self.ids:
            self.ids[name] = ArrayWriter(self.folder / name, "int32")
        stoi, ids = self.stoi, []
        counts = None if group is None else self.counts.setdefault(group, [])
        for symbol in symbols:
            i = stoi.get(symbol)
            if i is None:
                i = stoi[symbol] = len(stoi)
            if counts is not None:
                if i >= len(counts):
                    counts.extend([0] * (len(stoi) - len(counts)))
                counts[i] += 1
            ids.append(i)
        self.ids[name].add(ids[:keep] if keep is not None else ids)

    def add_text(self, name: str, text: str) -> None:
        """Appends one text to the text stream ``name``."""
        if name not in self.texts:
            self.texts[name] = ArrayWriter(self.folder / name, "uint8")
        self.texts[name].add(text.encode("utf-8"))

    def group_vocab(self, group: str = "", *, min_freq: int = 1, max_size: int | None = None
                    ) -> Vocab:
        """The vocabulary :meth:`Vocab.build` would give for the symbols counted in ``group``."""
        counts = self.counts.get(group, [])
        return vocab_from_counts({s: counts[i] for s, i in self.stoi.items()
                                  if i < len(counts) and counts[i]},
                                 min_freq=min_freq, max_size=max_size)

    def finish(self, vocabs: dict[str, Vocab]) -> None:
        """Closes the streams and rewrites each id stream through its vocabulary (stream name
        -> vocabulary; a symbol it lacks becomes UNK)."""
        for writer in [*self.ids.values(), *self.texts.values()]:
            writer.close()
        symbols = sorted(self.stoi, key=self.stoi.get)
        for name, vocab in vocabs.items():
            if name in self.ids:
                finish_ids(self.folder / name, np.asarray(vocab.encode(symbols), dtype=np.int64))


def open_tokens(folder: Path, name: str) -> TokenArray:
    """The id stream ``name`` of a cache entry (empty if none was written)."""
    if not (folder / f"{name}.off").is_file():
        return TokenArray(np.zeros(0, np.int32), np.zeros(1, np.int64))
    return TokenArray.open(folder / name)


def open_texts(folder: Path, name: str) -> TextArray:
    """The text stream ``name`` of a cache entry (empty if none was written)."""
    if not (folder / f"{name}.off").is_file():
        return TextArray(np.zeros(0, np.uint8), np.zeros(1, np.int64))
    return TextArray.open(folder / name)
