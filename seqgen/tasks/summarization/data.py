"""Summarization data: (document, summary) pairs, one SentencePiece model for both sides.

By default the pairs are AG News article descriptions and their titles (``train.csv`` of an AG
News folder, cleaned as the headline task cleans them), validation rows carved from them. A user
brings any pairs: a TSV / CSV / JSONL file with named fields (``--pairs``), two line-aligned
files (``--src-file`` / ``--tgt-file``), or a Hugging Face dataset when online (``gigaword``:
document / summary; ``xsum``: document / summary; ``cnn_dailymail`` 3.0.0: article /
highlights). Documents are cut to ``max_src_len`` pieces and summaries to ``max_tgt_len``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from ...data.ag_news import find_split_file, iter_ag_news_rows
from ...data.batch import Batch, bucket_plan, pad, target_pair
from ...data.carve import VAL, carve
from ...data.records import aligned, detect_format, fields
from ...resources import resource_path
from ...tokenizers import SubwordTokenizer
from ...vocab import Vocab

DEFAULT_DATA_DIR = resource_path("assets", "data", "ag_news_articles")
Pair = tuple[str, str]


@dataclass
class SummarizationDataConfig:
    data_dir: str = str(DEFAULT_DATA_DIR)  # an AG News folder: description -> title
    pairs: str = ""  # a TSV / CSV / JSONL file of (document, summary) rows
    pairs_format: str = ""  # tsv, csv or jsonl (default: by extension)
    src_field: str = "0"  # the document's column: 0-based index, header or key
    tgt_field: str = "1"  # the summary's column
    src_file: str = ""  # line-aligned documents ...
    tgt_file: str = ""  # ... and their summaries
    dataset: str = ""  # a Hugging Face dataset name (online), with src_field / tgt_field
    dataset_config: str = ""  # e.g. 3.0.0 for cnn_dailymail
    val_fraction: float = 0.05  # carved reproducibly from the training rows
    val_max: int = 1000
    seed: int = 0
    vocab_size: int = 8000  # one joint subword vocabulary (copying needs one)
    tokenizer_sample: int = 200_000  # rows the subword model is learned on, at most
    max_src_len: int = 100  # pieces of a document kept
    max_tgt_len: int = 30  # pieces of a summary kept in training
    limit: int = 0  # use only the first N rows (0: all)
    batch_size: int = 64

    RULES = {"val_fraction": "[0,1)", "val_max": ">=1", "vocab_size": ">=20",
             "max_src_len": ">=1", "max_tgt_len": ">=1", "batch_size": ">=1"}


def read_rows(config: SummarizationDataConfig, split: str = "train") -> Iterator[Pair]:
    """(document, summary) rows of one split from whichever source the config names."""
    if config.pairs:
        yield from fields(config.pairs, detect_format(config.pairs, config.pairs_format),
                          [config.src_field, config.tgt_field])
    elif config.src_file or config.tgt_file:
        if not (config.src_file and config.tgt_file):
            raise ValueError("line-aligned data needs both --src-file and --tgt-file")
        yield from aligned(Path(config.src_file), Path(config.tgt_file))
    elif config.dataset:
        yield from _hf_rows(config, split)
    else:
        for title, description in iter_ag_news_rows(find_split_file(config.data_dir, split)):
            if description:
                yield description, title


def _hf_rows(config: SummarizationDataConfig, split: str) -> Iterator[Pair]:
    from datasets import load_dataset

    rows = load_dataset(config.dataset, config.dataset_config or None, split=split)
    for name in (config.src_field, config.tgt_field):
        if name not in rows.column_names:
            raise ValueError(f"{config.dataset} has no field {name!r}; it has "
                             f"{', '.join(rows.column_names)} (set --src-field / --tgt-field)")
    for row in rows:
        yield str(row[config.src_field]), str(row[config.tgt_field])


# ------------------------------------------------------------------------------------------------
_DATELINE = re.compile(r"^\s*(?:[A-Z][\w.,'&/]*(?:\s+[\w.,'&/]+){0,4}\s*)?"
                       r"(?:\([^()]{1,30}\)\s*)?-{1,2}\s+")


def strip_dateline(document: str) -> str:
    """The document without a leading wire dateline ("NEW YORK (Reuters) - ", "AP - ")."""
    stripped = _DATELINE.sub("", document, count=1)
    return stripped if stripped.strip() else document


def lead(document: str, words: int = 12) -> str:
    """The lead baseline: the first ``words`` words after any dateline."""
    return " ".join(strip_dateline(document).split()[:words])


# ------------------------------------------------------------------------------------------------
class SummarizationData:
    """Tokenised training and validation pairs, batched by document length."""

    def __init__(self, config: SummarizationDataConfig, *, vocab: Vocab | None = None,
                 tokenizer: SubwordTokenizer | None = None) -> None:
        self.config = config
        rows = [(d.strip(), s.strip()) for d, s in read_rows(config) if d.strip() and s.strip()]
        if config.limit:
            rows = rows[:config.limit]
        if len(rows) < 2:
            raise ValueError(f"{len(rows)} (document, summary) pair(s) found; training needs at "
                             "least 2 (one is held out for validation)")
        split, self.carve = carve(len(rows), val_fraction=config.val_fraction,
                                  val_max=config.val_max, test_fraction=0.0, seed=config.seed)
        train = [row for row, s in zip(rows, split) if s != VAL]
        self.val = [row for row, s in zip(rows, split) if s == VAL]
        if tokenizer is None:
            sample = [t for pair in train[:config.tokenizer_sample] for t in pair]
            tokenizer = SubwordTokenizer.train(sample, vocab_size=config.vocab_size)
        self.tokenizer = tokenizer
        pieces = [(self.encode_text(d), self.encode_text(s, config.max_tgt_len)) for d, s in train]
        self.vocab = vocab or Vocab.build([p for pair in pieces for p in pair], min_freq=1)
        self.src_ids = [self.vocab.encode(d) for d, _ in pieces]
        self.tgt_ids = [self.vocab.encode(s) for _, s in pieces]
        self.train_documents = [d for d, _ in train]
        self.train_targets = [s for _, s in train]

    def encode_text(self, text: str, limit: int | None = None) -> list[str]:
        return self.tokenizer.tokenize(text)[: limit or self.config.max_src_len]

    def __len__(self) -> int:
        return len(self.src_ids)

    def train_plan(self, epoch: int) -> list[list[int]]:
        return bucket_plan([len(s) for s in self.src_ids], batch_size=self.config.batch_size,
                           seed=self.config.seed, epoch=epoch)

    def make_batch(self, indices: Sequence[int]) -> Batch:
        batch = document_batch([self.src_ids[i] for i in indices])
        batch.tgt_in, batch.tgt_out = target_pair([self.tgt_ids[i] for i in indices])
        batch.ids = torch.as_tensor(list(indices))
        return batch

    def val_batches(self) -> Iterable[Batch]:
        for start in range(0, len(self.val), self.config.batch_size):
            rows = self.val[start:start + self.config.batch_size]
            batch = document_batch([self.vocab.encode(self.encode_text(d)) for d, _ in rows])
            batch.tgt_in, batch.tgt_out = target_pair(
                [self.vocab.encode(self.encode_text(s, self.config.max_tgt_len)) for _, s in rows])
            yield batch


def document_batch(ids: Sequence[Sequence[int]]) -> Batch:
    """Documents (at least one piece each, so an empty one still encodes) as a source batch."""
    src, lengths = pad([list(row) or [0] for row in ids])
    return Batch(src=src, src_lengths=lengths.clamp(min=1))
