"""Headline data: AG News titles (or titles + descriptions, or any plain-text file) for a
character- or word-level generator with no encoder.

Sources, in order of preference: a text file (plain text, one example per non-empty line, or
one field of a JSONL / CSV file), a Hugging Face dataset by name when online, or a folder of AG
News CSV files (``train.csv``/``test.csv``, plain or .gz: class, title, description). The
bundled sample in ``assets/data/ag_news`` is the offline default.

Encoded examples live in the on-disk token cache (:mod:`seqgen.data.token_cache`), memory-mapped,
so memory does not grow with the corpus and a second run on the same data starts at once.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Literal, Sequence

import numpy as np

from ...data.arrays import ChainedTokens
from ...data.texts import iter_texts
from ...data.token_cache import (DEFAULT_TOKEN_CACHE, CorpusEncoder, cache_key, file_identity,
                                 open_or_build, open_texts, open_tokens, texts_digest)
from ...resources import resource_path
from ...tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from ...vocab import Vocab
from ...data.ag_news import (clean_text, find_split_file, iter_ag_news_rows,  # noqa: F401
                               read_ag_news_csv, read_ag_news_rows)
from ...data.batch import Batch, bucket_plan, prompt_batch, target_pair

DEFAULT_DATA_DIR = resource_path("assets", "data", "ag_news")
DESCRIPTION_MARK = "\u00b6"  # a description example starts with this symbol (a title never does)


@dataclass
class HeadlineDataConfig:
    data_dir: str = str(DEFAULT_DATA_DIR)  # AG News-style CSV folder
    dataset: str = ""  # Hugging Face name (e.g. sh0416/ag_news); used instead of data_dir when set
    text_file: str = ""  # a text file: plain (one example per line), JSONL or CSV
    text_format: str = ""  # text, jsonl or csv; default: by the file's extension
    text_field: str = ""  # JSONL key / CSV header or 0-based index of the text (default "text")
    field: Literal["title", "title+description"] = "title"
    level: Literal["char", "word"] = "char"
    clean: bool = True  # undo AG News escapes (#39; -> ', &lt;b&gt; tags, backslashes)
    min_freq: int = 1
    max_vocab: int = 0  # 0: no limit
    max_len: int = 200  # symbols per example; longer ones are truncated
    val_fraction: float = 0.1  # share of train held out (never trained on) ...
    val_max: int = 5000  # ... of which at most this many are scored during training (0: all)
    description_epochs: int = 0  # AG News: the first N epochs also train on the descriptions of
    # the training rows (each its own example, led by DESCRIPTION_MARK), later ones on titles
    # alone; held-out rows stay out entirely (a description repeats its title's words)
    limit: int = 0  # use only the first N training examples (0: all)
    batch_size: int = 64
    seed: int = 0
    cache_dir: str = str(DEFAULT_TOKEN_CACHE)  # encoded examples, reused by later runs
    RULES: ClassVar[dict[str, str]] = {"window": ">=1", "val_symbols": ">=0"}

    stream: bool = False  # the text file is one continuous text (a book): parallel streams of
    # windows with the state carried across them, not one example per line (see stream.py)
    window: int = 128  # stream: symbols per window (how far back a gradient reaches)
    val_symbols: int = 0  # stream: held-out symbols scored at each evaluation (0: all of them)


# ------------------------------------------------------------------------------------------------
def load_texts(config: HeadlineDataConfig, split: str = "train") -> list[str]:
    """The examples of one split from whichever source the config names."""
    return [text for text, _ in load_rows(config, split)]


def load_rows(config: HeadlineDataConfig, split: str = "train") -> list[tuple[str, str]]:
    """(example, description) pairs of one split; the description is empty for plain text."""
    return list(iter_rows(config, split))


def iter_rows(config: HeadlineDataConfig, split: str = "train") -> Iterable[tuple[str, str]]:
    """:func:`load_rows`, streamed from a file."""
    if config.text_file:
        return ((text, "") for text in iter_texts(config.text_file, fmt=config.text_format,
                                                    field=config.text_field))
    if config.dataset:
        return _load_hf(config, split)
    return iter_ag_news_rows(find_split_file(config.data_dir, split), field=config.field,
                             clean=config.clean)


def source_identity(config: HeadlineDataConfig) -> dict:
    """What names a training file without reading it (path, size, mtime)."""
    if config.text_file:
        return file_identity(config.text_file)
    return file_identity(find_split_file(config.data_dir, "train"))


def _load_hf(config: HeadlineDataConfig, split: str) -> list[tuple[str, str]]:
    from datasets import load_dataset

    rows = load_dataset(config.dataset, split=split)
    tidy = clean_text if config.clean else str.strip
    if "title" in rows.column_names:
        pairs = [(f"{r['title']}. {r.get('description', '')}"
                  if config.field == "title+description" else r["title"],
                  r.get("description") or "") for r in rows]
    elif "text" in rows.column_names:
        pairs = [(text, "") for text in rows["text"]]
    else:
        raise ValueError(f"dataset {config.dataset} has neither a 'title' nor a 'text' column")
    tidied = ((tidy(text), description) for text, description in pairs)
    return [(text, tidy(description)) for text, description in tidied if text]


def make_tokenizer(level: str) -> Tokenizer:
    if level == "char":
        return CharTokenizer()
    if level == "word":
        return WordTokenizer()
    raise ValueError(f"level must be 'char' or 'word', got {level!r}")


# ------------------------------------------------------------------------------------------------
def _digest(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def _encode_entry(folder: Path, config: HeadlineDataConfig, rows: Iterable[tuple[str, str]],
                  n: int, tokenizer: Tokenizer, vocab: Vocab | None) -> dict:
    """Streams the training examples into the cache entry ``folder``; returns its meta."""
    if n == 0:
        raise ValueError("no training text found (all examples empty?)")
    if n == 1 and config.val_fraction > 0:
        raise ValueError("the data has a single example: at least 2 are needed, one to train on "
                         "and one to validate on (or pass --data.val_fraction=0)")
    held = validation_mask(n, config.val_fraction, config.seed)
    encoder, val, n_train = CorpusEncoder(folder), [], 0
    for i, (text, description) in enumerate(rows):
        if held[i]:
            val.append(text)
            continue
        if config.limit and n_train >= config.limit:
            continue
        encoder.add("titles", tokenizer.tokenize(text), keep=config.max_len)
        encoder.add_text("title_text", text)
        if config.description_epochs and description.strip():
            described = DESCRIPTION_MARK + description
            encoder.add("descs", tokenizer.tokenize(described), keep=config.max_len)
            encoder.add_text("desc_text", described)
        n_train += 1
    if config.description_epochs and "descs" not in encoder.ids:
        raise ValueError("description_epochs needs AG News rows with descriptions; this data "
                         "has none")
    vocab = vocab or encoder.group_vocab(min_freq=config.min_freq,
                                         max_size=config.max_vocab or None)
    encoder.finish({"titles": vocab, "descs": vocab})
    return {"vocab": vocab.itos, "val": val[: config.val_max or None], "held_out": len(val),
            "train": n_train}


class HeadlineData:
    """Encoded training and validation examples, batched for the trainer.

    Attributes:
        train_ids: the training titles, then (with ``description_epochs``) the descriptions,
            memory-mapped from the token cache; train_texts / description_texts: their text.
        val_texts: held-out examples scored during training (at most ``val_max``).
    """

    def __init__(self, config: HeadlineDataConfig, *, vocab: Vocab | None = None,
                 tokenizer: Tokenizer | None = None, texts: list[str] | None = None) -> None:
        self.config = config
        self.tokenizer = tokenizer or make_tokenizer(config.level)
        rows: list | None = None  # in memory: given texts, or a Hugging Face dataset (read once)
        if texts is not None:
            rows = [(t, "") for t in texts if t.strip()]
        elif config.dataset and not config.text_file:
            rows = _load_hf(config, "train")
        identity = (source_identity(config) if rows is None else
                    {"dataset": config.dataset if texts is None else "",
                     "digest": texts_digest(t for row in rows for t in row)})
        settings = {k: v for k, v in asdict(config).items()
                    if k not in ("batch_size", "cache_dir", "data_dir", "text_file")}
        key = cache_key({"task": "texts", "source": identity, "settings": settings,
                         "tokenizer": _digest(self.tokenizer.to_dict()),
                         "vocab": _digest(vocab.itos) if vocab else None})

        def build(folder: Path) -> dict:
            if rows is not None:
                return _encode_entry(folder, config, rows, len(rows), self.tokenizer, vocab)
            n = sum(1 for _ in iter_rows(config, "train"))
            return _encode_entry(folder, config, iter_rows(config, "train"), n, self.tokenizer,
                                 vocab)

        self.cache, meta = open_or_build(config.cache_dir, key, build)
        self.vocab = vocab or Vocab(meta["vocab"])
        self.train_texts = open_texts(self.cache, "title_text")
        self.description_texts = (open_texts(self.cache, "desc_text")
                                  if config.description_epochs else [])
        self.train_ids = ChainedTokens(open_tokens(self.cache, "titles"),
                                       open_tokens(self.cache, "descs"))
        self.val_texts: list[str] = meta["val"]
        self.val_ids = [self.encode(t) for t in self.val_texts]

    def encode(self, text: str) -> list[int]:
        """Text to ids (truncated to ``max_len``); unseen symbols become UNK, never an error."""
        return self.vocab.encode(self.tokenizer.tokenize(text)[: self.config.max_len])

    def train_plan(self, epoch: int) -> list[list[int]]:
        """Batches of titles, with the descriptions mixed in during ``description_epochs``."""
        n = len(self.train_ids) if epoch < self.config.description_epochs else len(self.train_texts)
        return bucket_plan(self.train_ids.lengths[:n].tolist(), batch_size=self.config.batch_size,
                           seed=self.config.seed, epoch=epoch)

    def make_batch(self, indices: Sequence[int]) -> Batch:
        return self.batch_of([self.train_ids[i] for i in indices])

    def val_batches(self) -> Iterator[Batch]:
        yield from examples_to_batches(self.val_ids, self.config.batch_size)

    @staticmethod
    def batch_of(sequences: Sequence[Sequence[int]]) -> Batch:
        tgt_in, tgt_out = target_pair(sequences)
        return Batch(tgt_in=tgt_in, tgt_out=tgt_out)

    def prompts(self, texts: Sequence[str]) -> Batch:
        """Generation prompts; an empty prompt starts from BOS alone."""
        prompt, lengths = prompt_batch([self.vocab.encode(self.tokenizer.tokenize(t)) for t in texts])
        return Batch(prompt=prompt, prompt_lengths=lengths)


def examples_to_batches(ids: Sequence[Sequence[int]], batch_size: int) -> Iterator[Batch]:
    """Evaluation batches in length order (little padding, deterministic)."""
    plan = bucket_plan([len(s) for s in ids], batch_size=batch_size, seed=0, epoch=0, shuffle=False)
    for indices in plan:
        yield HeadlineData.batch_of([ids[i] for i in indices])


def validation_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """(n,) bool: the rows :func:`split_validation` holds out (at least one when
    ``fraction > 0`` and ``n >= 2``)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = int(round(n * fraction))
    if fraction > 0 and n > 1:
        n_val = max(n_val, 1)
    mask = np.zeros(n, dtype=bool)
    mask[order[:n_val]] = True
    return mask


def split_validation(texts: list, fraction: float, seed: int) -> tuple[list, list]:
    """A deterministic random validation split carved from the training examples (any items:
    the split depends only on their number and the seed)."""
    held = validation_mask(len(texts), fraction, seed)
    return ([t for t, h in zip(texts, held) if not h], [t for t, h in zip(texts, held) if h])
