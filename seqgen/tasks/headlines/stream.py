"""One continuous text (a book, a script, code) as the language model's data: char-rnn's job.

The text is one stream of characters: the first ``1 - val_fraction`` trains, the rest is held out
(nanoGPT's split of Tiny Shakespeare). Training reads ``batch_size`` parallel streams, each a
contiguous share of the training text, window after window: batch ``t`` holds window ``t`` of
every stream, so the state each row ends a window in is the state its next window starts from
(carried by :class:`~seqgen.training.tbptt.CarriedState`, detached at the edge). Each epoch the
streams start at a seeded offset, so window edges move. Validation reads the held-out tail as
one stream, every character predicted once, with the state carried throughout.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ...data.batch import Batch
from ...data.stream import StreamError, read_stream, split_stream
from ...metrics import stream_nll
from ...tokenizers import CharTokenizer
from ...vocab import Vocab

VAL_WINDOW = 2048  # symbols per validation window (the state is carried between them)


@dataclass(frozen=True)
class StreamSpan:
    """Symbols ``start:stop`` of a stream's ids: what a stream model is scored on."""

    ids: Any  # (N,) ids, a memory-mapped array
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def text_file_in(path: str | Path) -> Path:
    """A text file, or the one text file of a folder (``input.txt[.gz]`` or a single ``*.txt``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"text file not found: {path}")
    found = [p for p in (path / "input.txt", path / "input.txt.gz") if p.is_file()] or sorted(
        [*path.glob("*.txt"), *path.glob("*.txt.gz")])
    if len(found) != 1:
        raise FileNotFoundError(f"{path} holds {len(found)} text files; name one of them")
    return found[0]


class StreamData:
    """A continuous text read as parallel streams of windows (the trainer's data module)."""

    def __init__(self, config: Any, *, vocab: Vocab | None = None) -> None:
        if config.level != "char":
            raise ValueError("--stream reads a text character by character (--level char); a "
                             "word-level stream is not supported yet")
        if not config.text_file:
            raise ValueError("--stream needs the text: --text-file FILE")
        self.config, self.path = config, text_file_in(config.text_file)
        self.ids, self.vocab = read_stream(self.path, config.cache_dir, vocab=vocab)
        if config.limit:
            self.ids = self.ids[:config.limit]
        self.tokenizer = CharTokenizer()
        self.train, self.val = split_stream(len(self.ids), val_fraction=config.val_fraction)
        rows, window = config.batch_size, config.window
        if self.train.stop < rows * (window + 1):
            raise StreamError(
                f"{self.path} has {self.train.stop:,} characters to train on, fewer than one "
                f"window of {window} for each of {rows} streams; lower --data.window or "
                "--data.batch_size")
        if self.val.stop - self.val.start < 2:
            raise StreamError(f"{self.path} holds too little text to hold {config.val_fraction:g} "
                              "of it out for validation")

    def describe(self) -> dict:
        """What the run records: the file, its size and the split (first and last symbol)."""
        return {"file": str(self.path), "symbols": int(len(self.ids)),
                "train": [self.train.start, self.train.stop],
                "val": [self.val.start, self.val.stop]}

    # -- the streams -------------------------------------------------------------------------
    def layout(self, epoch: int) -> tuple[int, int]:
        """(offset, length) of the streams in ``epoch``: they start ``offset`` symbols in (0 in
        the first epoch, then seeded, so window edges move) and each holds ``length``."""
        window = self.config.window
        offset = 0 if epoch == 0 else random.Random(self.config.seed * 7919 + epoch).randrange(
            window)
        return offset, (self.train.stop - offset) // self.config.batch_size

    def train_plan(self, epoch: int) -> list[list[int]]:
        """One batch per window, in order (the state runs on): ``[[window, epoch], ...]``."""
        _, length = self.layout(epoch)
        return [[t, epoch] for t in range((length - 1) // self.config.window)]

    def make_batch(self, indices: Sequence[int]) -> Batch:
        """Window ``indices[0]`` of every stream of epoch ``indices[1]``: (B, T) inputs and the
        (B, T) symbols that follow them."""
        t, epoch = int(indices[0]), int(indices[1]) if len(indices) > 1 else 0
        offset, length = self.layout(epoch)
        window = self.config.window
        starts = offset + np.arange(self.config.batch_size) * length + t * window  # (B,)
        rows = np.asarray(self.ids[starts[:, None] + np.arange(window + 1)], dtype=np.int64)
        tokens = torch.from_numpy(rows)  # (B, T + 1)
        return Batch(tgt_in=tokens[:, :-1], tgt_out=tokens[:, 1:], window=t)

    # -- validation ----------------------------------------------------------------------------
    def val_span(self, *, limit: int = 0) -> StreamSpan:
        """The held-out tail (its first ``limit`` symbols, when given)."""
        stop = min(self.val.stop, self.val.start + limit) if limit else self.val.stop
        return StreamSpan(self.ids, self.val.start, stop)

    def val_batches(self) -> Iterator[Batch]:
        """The held-out tail in windows of one row (for generic checks; the trainer scores the
        tail with its state carried, through :meth:`validation_loss`)."""
        span = self.val_span()
        for t, pos in enumerate(range(span.start, span.stop - 1, VAL_WINDOW)):
            piece = torch.from_numpy(np.asarray(self.ids[pos:min(pos + VAL_WINDOW + 1, span.stop)],
                                                dtype=np.int64))[None]
            yield Batch(tgt_in=piece[:, :-1], tgt_out=piece[:, 1:], window=t)

    def validation_loss(self, model: torch.nn.Module) -> tuple[float, int]:
        """Summed NLL and count over the held-out tail (its first ``val_symbols``), read as one
        stream: every character predicted once, the state carried throughout."""
        span = self.val_span(limit=self.config.val_symbols)
        return stream_nll(model, span.ids, start=span.start, stop=span.stop, window=VAL_WINDOW)
