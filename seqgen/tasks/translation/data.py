"""Translation data: Multi30k-style line-aligned sentence pairs for the encoder-decoder.

Sources: a folder of line-aligned files ``{split}.{lang}`` (plain or .gz; Multi30k names its
splits ``train``, ``val``, ``test_2016_flickr``) for any language pair present, or a Hugging Face
dataset by name when online. The bundled sample in ``assets/data/multi30k`` is the offline default.

Tokenisation is a joint subword model (SentencePiece unigram or BPE, learned on the training
sentences of both languages) by default, so source and target share one vocabulary and the model
can share and tie its embeddings; word level (a Unicode regex tokenizer) is the alternative.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import torch

from ...fileio import read_lines
from ...resources import resource_path
from ...tokenizers import SubwordTokenizer, Tokenizer, WordTokenizer
from ...vocab import EOS, Vocab
from ...data.batch import Batch, bucket_plan, pad, target_pair

DEFAULT_DATA_DIR = resource_path("assets", "data", "multi30k")
SPLIT_ALIASES = {"test": "test_2016_flickr", "validation": "val", "dev": "val", "valid": "val"}
HF_SPLITS = {"val": "validation", "test_2016_flickr": "test"}


@dataclass
class TranslationDataConfig:
    data_dir: str = str(DEFAULT_DATA_DIR)  # folder of {split}.{lang}[.gz] files
    dataset: str = ""  # Hugging Face name (e.g. bentrevett/multi30k); used instead when set
    src: str = "de"
    tgt: str = "en"
    train_split: str = "train"
    val_split: str = "val"
    tokenizer: Literal["subword", "word"] = "subword"
    subword_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = 8000  # joint subword vocabulary size
    min_freq: int = 2  # word level: rarer words become UNK
    lowercase: bool = False  # word level only
    max_len: int = 100  # tokens; longer training pairs are dropped, longer inputs truncated
    batch_size: int = 64
    max_tokens: int = 0  # cap on padded target tokens per batch (0: batch_size only)
    limit: int = 0  # use only the first N training pairs (0: all)
    val_limit: int = 0
    seed: int = 0


# ------------------------------------------------------------------------------------------------
def split_file(folder: str | Path, split: str, lang: str) -> Path:
    """``folder/{split}.{lang}`` or its .gz; an alias (``test`` for ``test_2016_flickr``, ``dev``
    for ``val``) is tried only when no file carries the name as given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    names = [split] + ([SPLIT_ALIASES[split]] if split in SPLIT_ALIASES else [])
    for name in names:
        for file_name in (f"{name}.{lang}", f"{name}.{lang}.gz"):
            if (folder / file_name).is_file():
                return folder / file_name
    raise FileNotFoundError(f"no {' or '.join(f'{n}.{lang}' for n in names)} (or .gz) in {folder}")


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per "\n"-separated line (never split elsewhere), stripped of outer spaces."""
    return [line.strip() for line in read_lines(path)]


def load_pairs(config: TranslationDataConfig, split: str) -> tuple[list[str], list[str]]:
    """Source and target sentences of one split, checked to be line-aligned."""
    if config.dataset:
        return _load_hf(config, split)
    src = read_sentences(split_file(config.data_dir, split, config.src))
    tgt = read_sentences(split_file(config.data_dir, split, config.tgt))
    if len(src) != len(tgt):
        raise ValueError(f"{split}.{config.src} has {len(src)} lines but {split}.{config.tgt} has "
                         f"{len(tgt)}; the files must be line-aligned")
    return src, tgt


def _load_hf(config: TranslationDataConfig, split: str) -> tuple[list[str], list[str]]:
    from datasets import load_dataset

    split = SPLIT_ALIASES.get(split, split)
    rows = load_dataset(config.dataset, split=HF_SPLITS.get(split, split))
    if "translation" in rows.column_names:  # WMT style: {"translation": {"de": ..., "en": ...}}
        pairs = [r["translation"] for r in rows]
        return [p[config.src] for p in pairs], [p[config.tgt] for p in pairs]
    for lang in (config.src, config.tgt):
        if lang not in rows.column_names:
            raise ValueError(f"dataset {config.dataset} has no {lang!r} column "
                             f"(columns: {', '.join(rows.column_names)})")
    return list(rows[config.src]), list(rows[config.tgt])


def build_tokenizers(config: TranslationDataConfig, src_texts: Sequence[str],
                     tgt_texts: Sequence[str]) -> tuple[Tokenizer, Tokenizer]:
    """The subword model is learned on both sides' training text (one joint model)."""
    if config.tokenizer == "subword":
        tokenizer = SubwordTokenizer.train([*src_texts, *tgt_texts], vocab_size=config.vocab_size,
                                           model_type=config.subword_type)
        return tokenizer, tokenizer
    if config.tokenizer == "word":
        return WordTokenizer(lowercase=config.lowercase), WordTokenizer(lowercase=config.lowercase)
    raise ValueError(f"tokenizer must be 'subword' or 'word', got {config.tokenizer!r}")


def source_batch(ids: Sequence[Sequence[int]]) -> Batch:
    """Encoder input: ids + EOS, right-padded, with lengths."""
    src, lengths = pad([[*s, EOS] for s in ids])
    return Batch(src=src, src_lengths=lengths)


# ------------------------------------------------------------------------------------------------
class TranslationData:
    """Tokenised, encoded sentence pairs, batched by length for the trainer."""

    def __init__(self, config: TranslationDataConfig, *, src_vocab: Vocab | None = None,
                 tgt_vocab: Vocab | None = None, src_tokenizer: Tokenizer | None = None,
                 tgt_tokenizer: Tokenizer | None = None) -> None:
        self.config = config
        train_src, train_tgt = load_pairs(config, config.train_split)
        if config.limit:
            train_src, train_tgt = train_src[: config.limit], train_tgt[: config.limit]
        self.val_src, self.val_tgt = load_pairs(config, config.val_split)
        if config.val_limit:
            self.val_src, self.val_tgt = self.val_src[: config.val_limit], self.val_tgt[: config.val_limit]
        kept = [(s, t) for s, t in zip(train_src, train_tgt) if s.strip() and t.strip()]
        if not kept:
            raise ValueError("no training pairs found (all lines empty?)")
        if src_tokenizer is None or tgt_tokenizer is None:
            src_tokenizer, tgt_tokenizer = build_tokenizers(config, *zip(*kept))
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        src_tokens = [src_tokenizer.tokenize(s) for s, _ in kept]
        tgt_tokens = [tgt_tokenizer.tokenize(t) for _, t in kept]
        if tgt_vocab is None:
            if self.joint:
                tgt_vocab = Vocab.build([*src_tokens, *tgt_tokens], min_freq=1)
                src_vocab = tgt_vocab
            else:
                src_vocab = Vocab.build(src_tokens, min_freq=config.min_freq)
                tgt_vocab = Vocab.build(tgt_tokens, min_freq=config.min_freq)
        self.src_vocab, self.tgt_vocab = src_vocab or tgt_vocab, tgt_vocab
        pairs = [(self.src_vocab.encode(s), self.tgt_vocab.encode(t), text)
                 for s, t, (_, text) in zip(src_tokens, tgt_tokens, kept)
                 if len(s) <= config.max_len and len(t) <= config.max_len]
        self.dropped = len(kept) - len(pairs)
        self.train_src_ids = [p[0] for p in pairs]
        self.train_tgt_ids = [p[1] for p in pairs]
        self.train_tgt = [p[2] for p in pairs]  # the references of batch ``ids``, as text
        self.val_src_ids = self.encode_sources(self.val_src)
        self.val_tgt_ids = [self.tgt_vocab.encode(tgt_tokenizer.tokenize(t))[: config.max_len]
                            for t in self.val_tgt]

    @property
    def joint(self) -> bool:
        """Whether source and target share one subword model and vocabulary."""
        return self.config.tokenizer == "subword"

    def __len__(self) -> int:
        return len(self.train_tgt_ids)

    def encode_sources(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_sources(texts, self.src_tokenizer, self.src_vocab, self.config.max_len)

    # -- the trainer's data-module protocol ---------------------------------------------------
    def train_plan(self, epoch: int) -> list[list[int]]:
        lengths = [max(len(s), len(t)) + 1 for s, t in zip(self.train_src_ids, self.train_tgt_ids)]
        return bucket_plan(lengths, batch_size=self.config.batch_size, seed=self.config.seed,
                           epoch=epoch, max_tokens=self.config.max_tokens)

    def make_batch(self, indices: Sequence[int]) -> Batch:
        """The pairs ``indices``, with ``ids`` for objectives that score the model's own
        translations against ``train_tgt``."""
        batch = pair_batch([self.train_src_ids[i] for i in indices],
                           [self.train_tgt_ids[i] for i in indices])
        batch.ids = torch.as_tensor(list(indices))
        return batch

    def val_batches(self) -> Iterator[Batch]:
        pairs = [(s, t) for s, t in zip(self.val_src_ids, self.val_tgt_ids) if t]
        plan = bucket_plan([len(t) for _, t in pairs], batch_size=self.config.batch_size, seed=0,
                           epoch=0, shuffle=False)
        for indices in plan:
            yield pair_batch([pairs[i][0] for i in indices], [pairs[i][1] for i in indices])


def pair_batch(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> Batch:
    batch = source_batch(src_ids)
    batch.tgt_in, batch.tgt_out = target_pair(tgt_ids)
    return batch


def encode_sources(texts: Sequence[str], tokenizer: Tokenizer, vocab: Vocab, max_len: int
                   ) -> list[list[int]]:
    """Source ids; unseen symbols become UNK and overlong sentences are cut to ``max_len``."""
    return [vocab.encode(tokenizer.tokenize(text)[:max_len]) for text in texts]
