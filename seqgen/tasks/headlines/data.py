"""Headline data: AG News titles (or titles + descriptions, or any plain-text file) for a
character- or word-level generator with no encoder.

Sources, in order of preference: a folder of AG News CSV files (``train.csv``/``test.csv``, plain
or .gz: class, title, description), a plain text file (one example per non-empty line), or a
Hugging Face dataset by name when online. The bundled sample in ``assets/data/ag_news`` is the
offline default.
"""
from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

from ...fileio import read_lines, read_text
from ...resources import resource_path
from ...tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from ...vocab import Vocab
from ...data.batch import Batch, bucket_plan, prompt_batch, target_pair

DEFAULT_DATA_DIR = resource_path("assets", "data", "ag_news")
DESCRIPTION_MARK = "\u00b6"  # a description example starts with this symbol (a title never does)


@dataclass
class HeadlineDataConfig:
    data_dir: str = str(DEFAULT_DATA_DIR)  # AG News-style CSV folder
    dataset: str = ""  # Hugging Face name (e.g. sh0416/ag_news); used instead of data_dir when set
    text_file: str = ""  # any plain-text file, one example per line (the word-level lab)
    field: Literal["title", "title+description"] = "title"
    level: Literal["char", "word"] = "char"
    clean: bool = True  # undo AG News escapes (#39; -> ', &lt;b&gt; tags, backslashes)
    min_freq: int = 1
    max_vocab: int = 0  # 0: no limit
    max_len: int = 200  # symbols per example; longer ones are truncated
    val_fraction: float = 0.1
    description_epochs: int = 0  # AG News: the first N epochs also train on the descriptions of
    # the training rows (each its own example, led by DESCRIPTION_MARK), later ones on titles
    # alone; held-out rows stay out entirely (a description repeats its title's words)
    limit: int = 0  # use only the first N training examples (0: all)
    batch_size: int = 64
    seed: int = 0


# ------------------------------------------------------------------------------------------------
# AG News lost the "&" of its HTML entities to a space: "Kerry #39;s", "  #36;1.88M", " quot;".
_BROKEN_ENTITY = re.compile(r"(?<!&) ?(#\d+|quot|amp|lt|gt);")
_TAG = re.compile(r"<[^>]{0,40}>")


def clean_text(text: str) -> str:
    """Undoes AG News' damaged escapes (' #39;' -> "'", '&lt;b&gt;' tags, ' quot;', backslashes)."""
    text = html.unescape(_BROKEN_ENTITY.sub(r"&\1;", text))
    text = _TAG.sub("", html.unescape(text)).replace("\\", " ")
    return re.sub(r"\s+", " ", text).strip()


def find_split_file(folder: str | Path, split: str, suffixes: Sequence[str] = (".csv",)) -> Path:
    """``folder/split.csv`` or ``folder/split.csv.gz``; a one-line error names what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    for suffix in suffixes:
        for name in (f"{split}{suffix}", f"{split}{suffix}.gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no {split}{suffixes[0]} (or .gz) in {folder}")


def read_ag_news_csv(path: str | Path, *, field: str = "title", clean: bool = True) -> list[str]:
    """Texts from an AG News CSV (class, title, description); empty ones are dropped."""
    return [text for text, _ in read_ag_news_rows(path, field=field, clean=clean)]


def read_ag_news_rows(path: str | Path, *, field: str = "title", clean: bool = True
                      ) -> list[tuple[str, str]]:
    """(text, description) of every row whose text is not empty."""
    rows = []
    for row_no, row in enumerate(csv.reader(io.StringIO(read_text(path))), start=1):
        if not row:
            continue
        if len(row) < 2:
            raise ValueError(f"{path}: row {row_no} has {len(row)} column(s); expected class, "
                             "title, description")
        title, description = row[1], row[2] if len(row) > 2 else ""
        text = f"{title}. {description}" if field == "title+description" and len(row) > 2 else title
        text = clean_text(text) if clean else text.strip()
        if text:
            rows.append((text, clean_text(description) if clean else description.strip()))
    return rows


def load_texts(config: HeadlineDataConfig, split: str = "train") -> list[str]:
    """The examples of one split from whichever source the config names."""
    return [text for text, _ in load_rows(config, split)]


def load_rows(config: HeadlineDataConfig, split: str = "train") -> list[tuple[str, str]]:
    """(example, description) pairs of one split; the description is empty for plain text."""
    if config.text_file:
        lines = read_lines(config.text_file)
        return [(line.strip(), "") for line in lines if line.strip()]
    if config.dataset:
        return _load_hf(config, split)
    return read_ag_news_rows(find_split_file(config.data_dir, split), field=config.field,
                             clean=config.clean)


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
class HeadlineData:
    """Encoded training and validation examples, batched for the trainer."""

    def __init__(self, config: HeadlineDataConfig, *, vocab: Vocab | None = None,
                 tokenizer: Tokenizer | None = None, texts: list[str] | None = None) -> None:
        self.config = config
        self.tokenizer = tokenizer or make_tokenizer(config.level)
        rows = load_rows(config, "train") if texts is None else [(t, "") for t in texts]
        if not rows:
            raise ValueError("no training text found (all examples empty?)")
        train_rows, val_rows = split_validation(rows, config.val_fraction, config.seed)
        if config.limit:
            train_rows = train_rows[: config.limit]
        self.train_texts, self.val_texts = [t for t, _ in train_rows], [t for t, _ in val_rows]
        self.description_texts = [DESCRIPTION_MARK + d for _, d in train_rows if d.strip()
                                  ] if config.description_epochs else []
        if config.description_epochs and not self.description_texts:
            raise ValueError("description_epochs needs AG News rows with descriptions; this data "
                             "has none")
        train_tokens = [self.tokenizer.tokenize(t)
                        for t in self.train_texts + self.description_texts]
        self.vocab = vocab or Vocab.build(train_tokens, min_freq=config.min_freq,
                                          max_size=config.max_vocab or None)
        # training examples: the titles, then the descriptions (used in the first epochs only)
        self.train_ids = [self.encode(t) for t in self.train_texts + self.description_texts]
        self.val_ids = [self.encode(t) for t in self.val_texts]

    def encode(self, text: str) -> list[int]:
        """Text to ids (truncated to ``max_len``); unseen symbols become UNK, never an error."""
        return self.vocab.encode(self.tokenizer.tokenize(text)[: self.config.max_len])

    def train_plan(self, epoch: int) -> list[list[int]]:
        """Batches of titles, with the descriptions mixed in during ``description_epochs``."""
        n = len(self.train_ids) if epoch < self.config.description_epochs else len(self.train_texts)
        return bucket_plan([len(s) for s in self.train_ids[:n]], batch_size=self.config.batch_size,
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


def split_validation(texts: list, fraction: float, seed: int) -> tuple[list, list]:
    """A deterministic random validation split carved from the training examples (any items:
    the split depends only on their number and the seed)."""
    import random

    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_val = int(round(len(texts) * fraction))
    if fraction > 0 and len(texts) > 1:
        n_val = max(n_val, 1)
    val = sorted(order[:n_val])
    val_set = set(val)
    return [t for i, t in enumerate(texts) if i not in val_set], [texts[i] for i in val]
