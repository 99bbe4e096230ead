"""Denoising pre-training for summarizers: the training rows' own text, with spans of words
deleted, is the input and the text itself the target (BART's span corruption, deletion form).

A summarizer trained from scratch learns its English from the summaries alone: AG News gives
11,400 titles of about 7 words. The documents hold five times more text in the same domain. Asked
to restore a document (or a summary) from a damaged copy, the decoder learns that text's language
and the copy mechanism learns when to copy; fine-tuning on (document, summary) pairs then starts
from there (``--init``). Only training rows are used, so the validation rows stay unseen.
"""
from __future__ import annotations

import random
from typing import Iterable, Sequence

import torch

from ...data.batch import Batch, bucket_plan, target_pair
from .data import SummarizationData, document_batch


def delete_spans(words: Sequence[str], rng: random.Random, *, ratio: float = 0.3,
                 mean_span: float = 3.0) -> list[str]:
    """``words`` with spans (geometric lengths of mean ``mean_span``) removed until about
    ``ratio`` of them are gone; at least one word always stays."""
    keep = [True] * len(words)
    kept, budget = len(words), int(round(ratio * len(words)))
    while budget > 0 and kept > 1:
        span = 1
        while rng.random() > 1 / mean_span and span < budget:
            span += 1
        start = rng.randrange(len(words))
        for i in range(start, min(start + span, len(words))):
            if keep[i] and kept > 1:
                keep[i], kept, budget = False, kept - 1, budget - 1
    return [w for w, k in zip(words, keep) if k]


class DenoisingData:
    """What the trainer iterates in pre-training: each training document and summary, damaged
    afresh every epoch (by a seed, so a resumed run sees the same batches), restored as target.
    Validation stays the real (document, summary) rows, so its loss and ROUGE-L say what the
    pre-training is worth for summaries."""

    def __init__(self, data: SummarizationData, *, ratio: float = 0.3, seed: int = 0) -> None:
        self.data, self.ratio, self.seed = data, ratio, seed
        self.texts = [*data.train_documents, *data.train_targets]
        self.targets = [data.vocab.encode(data.encode_text(t, data.config.max_tgt_len))
                        for t in self.texts]

    def __len__(self) -> int:
        return len(self.texts)

    def train_plan(self, epoch: int) -> list[list[int]]:
        """Batches by text length; the epoch rides in the indices (``epoch * len + row``), so
        ``make_batch`` needs no state to draw that epoch's damage."""
        plan = bucket_plan([len(t) for t in self.targets], batch_size=self.data.config.batch_size,
                           seed=self.seed, epoch=epoch)
        return [[epoch * len(self) + i for i in batch] for batch in plan]

    def make_batch(self, indices: Sequence[int]) -> Batch:
        rows = [i % len(self) for i in indices]
        sources = []
        for index, row in zip(indices, rows):
            rng = random.Random(f"{self.seed}:{index}")
            damaged = " ".join(delete_spans(self.texts[row].split(), rng, ratio=self.ratio))
            sources.append(self.data.vocab.encode(self.data.encode_text(damaged)))
        batch = document_batch(sources)
        batch.tgt_in, batch.tgt_out = target_pair([self.targets[r] for r in rows])
        batch.ids = torch.as_tensor(rows)
        return batch

    def val_batches(self) -> Iterable[Batch]:
        return self.data.val_batches()
