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

from ..fileio import read_lines, read_text
from ..resources import resource_path
from ..tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from ..vocab import Vocab
from .batch import Batch, bucket_plan, prompt_batch, target_pair

DEFAULT_DATA_DIR = resource_path("assets", "data", "ag_news")


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
    texts = []
    for row_no, row in enumerate(csv.reader(io.StringIO(read_text(path))), start=1):
        if not row:
            continue
        if len(row) < 2:
            raise ValueError(f"{path}: row {row_no} has {len(row)} column(s); expected class, "
                             "title, description")
        title = row[1]
        text = f"{title}. {row[2]}" if field == "title+description" and len(row) > 2 else title
        text = clean_text(text) if clean else text.strip()
        if text:
            texts.append(text)
    return texts


def load_texts(config: HeadlineDataConfig, split: str = "train") -> list[str]:
    """The examples of one split from whichever source the config names."""
    if config.text_file:
        lines = read_lines(config.text_file)
        return [line.strip() for line in lines if line.strip()]
    if config.dataset:
        return _load_hf(config, split)
    return read_ag_news_csv(find_split_file(config.data_dir, split), field=config.field,
                            clean=config.clean)


def _load_hf(config: HeadlineDataConfig, split: str) -> list[str]:
    from datasets import load_dataset

    rows = load_dataset(config.dataset, split=split)
    if "title" in rows.column_names:
        raw = [f"{r['title']}. {r.get('description', '')}" if config.field == "title+description"
               else r["title"] for r in rows]
    elif "text" in rows.column_names:
        raw = list(rows["text"])
    else:
        raise ValueError(f"dataset {config.dataset} has neither a 'title' nor a 'text' column")
    return [t for t in (clean_text(x) if config.clean else x.strip() for x in raw) if t]


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
        texts = load_texts(config, "train") if texts is None else texts
        if not texts:
            raise ValueError("no training text found (all examples empty?)")
        self.train_texts, self.val_texts = split_validation(texts, config.val_fraction, config.seed)
        if config.limit:
            self.train_texts = self.train_texts[: config.limit]
        train_tokens = [self.tokenizer.tokenize(t) for t in self.train_texts]
        self.vocab = vocab or Vocab.build(train_tokens, min_freq=config.min_freq,
                                          max_size=config.max_vocab or None)
        self.train_ids = [self.encode(t) for t in self.train_texts]
        self.val_ids = [self.encode(t) for t in self.val_texts]

    def encode(self, text: str) -> list[int]:
        """Text to ids (truncated to ``max_len``); unseen symbols become UNK, never an error."""
        return self.vocab.encode(self.tokenizer.tokenize(text)[: self.config.max_len])

    def train_plan(self, epoch: int) -> list[list[int]]:
        return bucket_plan([len(s) for s in self.train_ids], batch_size=self.config.batch_size,
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


def split_validation(texts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A deterministic random validation split carved from the training examples."""
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
