"""Translation data: Multi30k-style line-aligned sentence pairs for the encoder-decoder.

Sources: a pairs file (TSV such as the Tatoeba/Anki ``English<TAB>French<TAB>attribution``
files, CSV with a header, or JSONL; fields by index or name), a folder of line-aligned files
``{split}.{lang}`` (plain or .gz; Multi30k names its splits ``train``, ``val``,
``test_2016_flickr``) for any language pair present, or a Hugging Face dataset by name when
online. The bundled sample in ``assets/data/multi30k`` is the offline default. Validation (and,
for a pairs file, test) rows are carved reproducibly when no file gives them.

Training pairs are tokenised once into the on-disk token cache (:mod:`seqgen.data.token_cache`)
and read memory-mapped, so memory does not grow with the corpus; the subword model is learned on
a bounded sample, and a second run on the same data starts from the cache.

Tokenisation is a joint subword model (SentencePiece unigram or BPE, learned on the training
sentences of both languages) by default, so source and target share one vocabulary and the model
can share and tie its embeddings; word level (a Unicode regex tokenizer) is the alternative.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import torch

from ...data.batch import Batch, bucket_plan, pad, target_pair
from ...data.carve import TEST, TRAIN, VAL
from ...data.pairs import PairSource, labelled
from ...data.token_cache import (DEFAULT_TOKEN_CACHE, CorpusEncoder, cache_key, open_or_build,
                                 open_texts, open_tokens)
from ...resources import resource_path
from ...tokenizers import SubwordTokenizer, Tokenizer, WordTokenizer, tokenizer_from_dict
from ...vocab import EOS, Vocab
from .splits import load_hf_pairs, split_file

DEFAULT_DATA_DIR = resource_path("assets", "data", "multi30k")


@dataclass
class TranslationDataConfig:
    data_dir: str = str(DEFAULT_DATA_DIR)  # folder of {split}.{lang}[.gz] files
    pairs: str = ""  # a TSV / CSV / JSONL file of pairs (plain or .gz); used instead when set
    pairs_format: str = ""  # tsv, csv or jsonl; default: by the file's extension
    src_field: str = "0"  # the source column: 0-based index, CSV header or JSONL key
    tgt_field: str = "1"  # the target column
    val_pairs: str = ""  # validation pairs in the same format (default: carved from --pairs)
    test_pairs: str = ""  # test pairs in the same format (default: carved from --pairs)
    val_fraction: float = 0.02  # share carved for validation (and for test) when not given ...
    val_max: int = 5000  # ... and its cap; given validation / test files are capped too
    test_fraction: float = 0.02  # share carved for test from a pairs file (0: none)
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
    seed: int = 0  # batch order and the carve
    tokenizer_sample: int = 100_000  # the subword model is learned on the first N pairs (2N
    # sentences)
    shortlist_pairs: int = 30_000  # the shortlist is learned on the first N training pairs
    cache_dir: str = str(DEFAULT_TOKEN_CACHE)  # tokenised arrays, reused by later runs


# ------------------------------------------------------------------------------------------------
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
def pair_source(config: TranslationDataConfig) -> PairSource:
    """Where the config's pairs come from (nothing is read yet, except a Hugging Face dataset)."""
    if config.pairs:
        return PairSource.from_file(config.pairs, val=config.val_pairs, test=config.test_pairs,
                                    fmt=config.pairs_format, src_field=config.src_field,
                                    tgt_field=config.tgt_field)
    if config.dataset:
        train = list(zip(*load_hf_pairs(config, config.train_split)))
        return PairSource.from_memory(train, list(zip(*load_hf_pairs(config, config.val_split))))
    train = (split_file(config.data_dir, config.train_split, config.src),
             split_file(config.data_dir, config.train_split, config.tgt))
    try:
        val = (split_file(config.data_dir, config.val_split, config.src),
               split_file(config.data_dir, config.val_split, config.tgt))
    except FileNotFoundError:  # no validation files: carve them from the training pairs
        val = None
    return PairSource.from_aligned(train, val)


def _digest(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def _entry_key(config: TranslationDataConfig, source: PairSource, tokenizer: Tokenizer | None,
               vocabs: tuple[Vocab | None, Vocab | None]) -> str:
    settings = {k: v for k, v in asdict(config).items()
                if k not in ("batch_size", "max_tokens", "cache_dir", "shortlist_pairs",
                             "data_dir", "pairs", "val_pairs", "test_pairs")}
    return cache_key({"task": "pairs", "source": source.identity, "settings": settings,
                      "tokenizer": _digest(tokenizer.to_dict()) if tokenizer else None,
                      "vocabs": [_digest(v.itos) if v else None for v in vocabs]})


def _encode_entry(folder: Path, config: TranslationDataConfig, source: PairSource,
                  tokenizers: tuple[Tokenizer | None, Tokenizer | None],
                  vocabs: tuple[Vocab | None, Vocab | None]) -> dict:
    """Streams the training pairs into the cache entry ``folder``; returns its meta."""
    rows = labelled(source, val_fraction=config.val_fraction, val_max=config.val_max,
                    test_fraction=config.test_fraction, seed=config.seed)
    src_tok, tgt_tok = tokenizers
    stream, head = rows.rows, []
    if src_tok is None or tgt_tok is None:  # learn the tokenizers on a bounded sample
        sample = min(config.tokenizer_sample, config.limit or config.tokenizer_sample)
        kept = []
        for code, pair in stream:
            head.append((code, pair))
            if code == TRAIN and pair[0] and pair[1]:
                kept.append(pair)
                if len(kept) >= sample:
                    break
        if not kept:
            raise ValueError("no training pairs found (all lines empty?)")
        src_tok, tgt_tok = build_tokenizers(config, *zip(*kept))
    joint = config.tokenizer == "subword"
    encoder, val, test = CorpusEncoder(folder), list(rows.val), list(rows.test)
    n_kept = dropped = 0
    for code, (src, tgt) in chain(head, stream):
        if code == VAL or code == TEST:
            (val if code == VAL else test).append((src, tgt))
            continue
        if not (src and tgt) or (config.limit and n_kept >= config.limit):
            continue
        src_tokens, tgt_tokens = src_tok.tokenize(src), tgt_tok.tokenize(tgt)
        if len(src_tokens) > config.max_len or len(tgt_tokens) > config.max_len:
            dropped += 1
            continue
        encoder.add("src", src_tokens, group="joint" if joint else "src")
        encoder.add("tgt", tgt_tokens, group="joint" if joint else "tgt")
        encoder.add_text("tgt_text", tgt)
        n_kept += 1
    if not n_kept:
        raise ValueError("no training pairs found (all lines empty, or all longer than "
                         f"max_len={config.max_len} tokens?)")
    src_vocab, tgt_vocab = vocabs
    if tgt_vocab is None:
        if joint:
            src_vocab = tgt_vocab = encoder.group_vocab("joint")
        else:
            src_vocab = encoder.group_vocab("src", min_freq=config.min_freq)
            tgt_vocab = encoder.group_vocab("tgt", min_freq=config.min_freq)
    src_vocab = src_vocab or tgt_vocab
    encoder.finish({"src": src_vocab, "tgt": tgt_vocab})
    cap = min(config.val_limit or len(val), len(val))
    return {"src_tokenizer": src_tok.to_dict(), "tgt_tokenizer": tgt_tok.to_dict(),
            "src_vocab": src_vocab.itos, "tgt_vocab": tgt_vocab.itos, "val": val[:cap],
            "test": test, "pairs": n_kept, "dropped": dropped, "carve": rows.carve}


class TranslationData:
    """Tokenised, encoded sentence pairs (memory-mapped from the token cache), batched by length
    for the trainer.

    Attributes:
        train_src_ids, train_tgt_ids: :class:`~seqgen.data.arrays.TokenArray` of the kept pairs.
        train_tgt: their references as text (a :class:`~seqgen.data.arrays.TextArray`).
        val_src, val_tgt, test_src, test_tgt: held-out texts (given, or carved).
        carve: how validation / test rows were carved (None: from files), for the run's record.
    """

    def __init__(self, config: TranslationDataConfig, *, src_vocab: Vocab | None = None,
                 tgt_vocab: Vocab | None = None, src_tokenizer: Tokenizer | None = None,
                 tgt_tokenizer: Tokenizer | None = None) -> None:
        self.config = config
        source = pair_source(config)
        given = (src_tokenizer, tgt_tokenizer) if src_tokenizer and tgt_tokenizer else (None, None)
        vocabs = (src_vocab, tgt_vocab) if tgt_vocab is not None else (None, None)
        key = _entry_key(config, source, given[1], vocabs)
        self.cache, meta = open_or_build(config.cache_dir, key, lambda folder: _encode_entry(
            folder, config, source, given, vocabs))
        self.src_tokenizer = given[0] or tokenizer_from_dict(meta["src_tokenizer"])
        self.tgt_tokenizer = given[1] or tokenizer_from_dict(meta["tgt_tokenizer"])
        if self.joint and given[0] is None:
            self.src_tokenizer = self.tgt_tokenizer
        self.tgt_vocab = tgt_vocab or Vocab(meta["tgt_vocab"])
        self.src_vocab = src_vocab or (self.tgt_vocab if meta["src_vocab"] == meta["tgt_vocab"]
                                       else Vocab(meta["src_vocab"]))
        self.dropped, self.carve = meta["dropped"], meta["carve"]
        self.train_src_ids = open_tokens(self.cache, "src")
        self.train_tgt_ids = open_tokens(self.cache, "tgt")
        self.train_tgt = open_texts(self.cache, "tgt_text")  # the references of batch ``ids``
        self.val_src, self.val_tgt = [p[0] for p in meta["val"]], [p[1] for p in meta["val"]]
        self.test_src, self.test_tgt = [p[0] for p in meta["test"]], [p[1] for p in meta["test"]]
        self.val_src_ids = self.encode_sources(self.val_src)
        self.val_tgt_ids = [self.tgt_vocab.encode(self.tgt_tokenizer.tokenize(t))[: config.max_len]
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
        lengths = (np.maximum(self.train_src_ids.lengths, self.train_tgt_ids.lengths) + 1).tolist()
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
