"""The one batch type every data module produces and every model consumes, and the data-module
protocol the trainer reads batches through."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable, ClassVar, Iterable, Protocol, Sequence

import torch
from torch import Tensor

from ..vocab import BOS, EOS, PAD


@dataclass
class Batch:
    """A padded minibatch. Fields a task does not use stay None.

    Attributes:
        tgt_in: (B, T) decoder inputs, BOS first.
        tgt_out: (B, T) targets, the inputs shifted left with EOS last; PAD is ignored by the loss.
        src: (B, S) source ids (translation); src_lengths: (B,).
        features: (B, N, C) image grid features, or (B, 3, H, W) pixels (captioning).
        prompt: (B, P) BOS + prompt ids to run before generating; prompt_lengths: (B,).
        ids: (B,) the rows' indices in their data module (captioning: the photo; translation:
            the pair), for objectives that score samples against that row's references.
        extra: further (B, ...) tensors a task defines for its own encoder or objective; they
            travel with the batch (moved, repeated, selected) like the named inputs.
        window: for a continuous text read as parallel streams, which window of them this is
            (0: the streams start, so no state is carried into it); None otherwise.
    """

    tgt_in: Tensor | None = None
    tgt_out: Tensor | None = None
    src: Tensor | None = None
    src_lengths: Tensor | None = None
    features: Tensor | None = None
    prompt: Tensor | None = None
    prompt_lengths: Tensor | None = None
    ids: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)
    window: int | None = None

    TARGETS: ClassVar[tuple[str, ...]] = ("tgt_in", "tgt_out", "ids")  # what a batch learns from, not what it encodes

    @property
    def size(self) -> int:
        for name in ("tgt_in", "src", "features", "prompt"):
            value = getattr(self, name)
            if value is not None:
                return value.size(0)
        return 0

    def to(self, device: torch.device | str) -> "Batch":
        return self.map(lambda t: t.to(device, non_blocking=True))

    def map(self, fn: Callable[[Tensor], Tensor], *, inputs_only: bool = False) -> "Batch":
        """A new batch with ``fn`` applied to every tensor (``inputs_only``: targets and ids
        dropped), whatever fields the task uses."""
        changed = {f.name: fn(getattr(self, f.name)) for f in fields(self)
                   if isinstance(getattr(self, f.name), Tensor)}
        if inputs_only:
            changed.update({name: None for name in self.TARGETS})
        return replace(self, **changed, extra={k: fn(v) for k, v in self.extra.items()})

    def inputs(self) -> "Batch":
        """The batch without its targets: what the encoder reads."""
        return self.map(lambda t: t, inputs_only=True)

    def repeat_rows(self, k: int) -> "Batch":
        """Each row ``k`` times in a row (samples of one input side by side), inputs only."""
        return self.map(lambda t: t.repeat_interleave(k, dim=0), inputs_only=True)


class DataModule(Protocol):
    """What the trainer needs of a task's data: a deterministic batch plan per epoch (so a resumed
    run continues at the exact batch), batches by index, and validation batches."""

    def train_plan(self, epoch: int) -> list[list[int]]: ...

    def make_batch(self, indices: Sequence[int]) -> Batch: ...

    def val_batches(self) -> Iterable[Batch]: ...


# ------------------------------------------------------------------------------------------------
def pad(sequences: Sequence[Sequence[int]], *, value: int = PAD) -> tuple[Tensor, Tensor]:
    """Right-pads id lists into a (B, T) tensor; returns it with the (B,) lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), max(width, 1)), value, dtype=torch.long)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths


def target_pair(sequences: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Teacher-forcing pair: inputs BOS + ids, targets ids + EOS, both (B, T+1)."""
    tgt_in, _ = pad([[BOS, *s] for s in sequences])
    tgt_out, _ = pad([[*s, EOS] for s in sequences])
    return tgt_in, tgt_out


def prompt_batch(sequences: Sequence[Sequence[int]], *, start: int = BOS
                 ) -> tuple[Tensor, Tensor]:
    """Generation prompts: ``start`` (BOS; a stream model's own start symbol) + ids, padded,
    with lengths (B,)."""
    return pad([[start, *s] for s in sequences])


def bucket_plan(lengths: Sequence[int], *, batch_size: int, seed: int, epoch: int,
                max_tokens: int = 0, shuffle: bool = True) -> list[list[int]]:
    """Length-bucketed batches of example indices, deterministic for a (seed, epoch) pair.

    Examples are shuffled, sorted by length within pools of 50 batches (so each batch needs little
    padding), cut into batches of ``batch_size`` examples (or, with ``max_tokens``, of at most that
    many padded tokens), and the batch order shuffled. A resumed run rebuilds the same plan.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    order = list(range(len(lengths)))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if shuffle:
        order = [order[i] for i in torch.randperm(len(order), generator=generator).tolist()]
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        current: list[int] = []
        for i in chunk:
            too_many = max_tokens and (len(current) + 1) * max(lengths[i], 1) > max_tokens
            if current and (len(current) >= batch_size or too_many):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches
