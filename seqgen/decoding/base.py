"""What every searcher shares: the stepper it drives (anything with ``step``), the hypotheses
it returns, and the order its logits processors run in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from torch import Tensor

from .processors import LogitsProcessor, default_bans

MAX_LEN = 5000  # symbols per output; beyond it a run is almost surely a mistake


class Stepper(Protocol):
    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, EOS excluded
    score: float  # log-probability (length-normalised for beam search)
    attention: Tensor | None = None  # (len, S) attention weights per generated token


class Searcher:
    """Processors run in Hugging Face's order: penalties and blocks, then the bans (PAD, BOS,
    UNK), then the sampling warpers (temperature, top-k, top-p), so that top-k and top-p choose
    among tokens that may be emitted: a banned arg-max would otherwise leave a row with nothing."""

    def __init__(self, *, max_len: int, processors: Sequence[LogitsProcessor], ban_unk: bool,
                 collect_attention: bool, warpers: Sequence[LogitsProcessor] = ()) -> None:
        if not 1 <= max_len <= MAX_LEN:
            raise ValueError(f"max_len must be from 1 to {MAX_LEN} (got {max_len})")
        self.max_len = int(max_len)
        self.shaping = [*processors, *warpers]
        self.bans = default_bans(ban_unk=ban_unk)
        self.processors = [*processors, self.bans, *warpers]
        self.collect_attention = collect_attention
