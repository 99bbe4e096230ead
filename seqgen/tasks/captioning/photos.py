"""Captioning's training rows for self-critical training: one row per photo (and per mirror
image), scored against all of that photo's references, instead of one row per caption."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from ...data.batch import Batch, target_pair
from .data import CaptionData, swap_sides


class CaptionImages:
    """The training photos (and their mirror images) one per row, with ``ids``: the data module
    for objectives that score the model's own captions against each photo's references.

    Each row also carries one of its photo's captions as targets, so the batch still has a
    cross-entropy (used when the precision is timed)."""

    def __init__(self, data: CaptionData, *, batch_size: int) -> None:
        if data.train_features is None:
            raise ValueError("training on whole photos needs cached features; it cannot be "
                             "combined with fine-tuning the CNN")
        self.data, self.batch_size = data, batch_size
        first: dict[int, list[int]] = {}
        for image, caption in [*data.examples, *data.mirrored_examples]:
            first.setdefault(image, caption)
        self.targets = [first[i] for i in range(data.train_features.size(0))]
        words = [[data.tokenize(c) for c in refs] for refs in data.train.refs]
        self.references = [[" ".join(w) for w in refs] for refs in words]  # per feature row
        if data.mirrored_examples:
            self.references += [[" ".join(swap_sides(w)) for w in refs] for refs in words]

    def __len__(self) -> int:
        return len(self.targets)

    def train_plan(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.data.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self), generator=generator).tolist()
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def make_batch(self, indices: Sequence[int]) -> Batch:
        tgt_in, tgt_out = target_pair([self.targets[i] for i in indices])
        return Batch(features=self.data.inputs("train", indices), tgt_in=tgt_in, tgt_out=tgt_out,
                     ids=torch.as_tensor(list(indices)))

    def val_batches(self) -> Iterator[Batch]:
        return self.data.val_batches()
