"""Logits processors: small pure callables ``(logits, history) -> logits`` chained before a choice.

Each validates its options when built (with an error that says what to do instead) and never
changes its input in place. ``history`` is the (N, t) tokens generated so far.
"""
from __future__ import annotations

import functools
import math
from typing import Iterable, Protocol, Sequence

import torch
from torch import Tensor

from ..vocab import BOS, EOS, PAD, UNK

NEG_INF = float("-inf")
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1e3  # beyond these, division under- or overflows


class LogitsProcessor(Protocol):
    def __call__(self, logits: Tensor, history: Tensor) -> Tensor: ...


def apply_processors(processors: Sequence[LogitsProcessor], logits: Tensor, history: Tensor
                     ) -> Tensor:
    """Chains the processors; a row they ban entirely (e.g. n-gram blocking at a dead end) is left
    only EOS, so a searcher can always end the sequence instead of choosing from nothing.

    That check costs a pass over the logits per step, so it runs only when a processor may need
    it: those that never leave a row without a choice say ``bans_whole_rows = False``."""
    for process in processors:
        logits = process(logits, history)
    if any(getattr(process, "bans_whole_rows", True) for process in processors):
        logits = end_dead_rows(logits)
    return logits


def end_dead_rows(logits: Tensor) -> Tensor:
    """Lets a row whose every token is banned choose EOS (a copy is made only if one is)."""
    dead = torch.isneginf(logits).all(dim=-1)  # (N,)
    if bool(dead.any()):
        logits = logits.clone()
        logits[dead, EOS] = 0.0
    return logits


# ------------------------------------------------------------------------------------------------
class Temperature:
    """p_i ∝ exp(log p_i / T): T < 1 sharpens towards greedy, T > 1 flattens towards uniform."""

    bans_whole_rows = False

    def __init__(self, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}); for temperature 0 "
                             "use greedy decoding instead")
        if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} "
                             f"(got {temperature}); below that use greedy decoding, above it the "
                             "samples are uniform noise")
        self.temperature = float(temperature)

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        return logits / self.temperature


class TopK:
    """Keeps the k most likely tokens."""

    bans_whole_rows = False

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"top_k must be >= 1 (got {k}); leave it unset to keep every token")
        self.k = int(k)

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        k = min(self.k, logits.size(-1))
        kth = logits.topk(k, dim=-1).values[:, -1:]  # (N, 1)
        return logits.masked_fill(logits < kth, NEG_INF)


class TopP:
    """Nucleus: keeps the smallest set of most likely tokens whose probability reaches p."""

    bans_whole_rows = False

    def __init__(self, p: float) -> None:
        if not 0 < p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (got {p}); use 1 to keep every token")
        self.p = float(p)

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (N, V)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative - sorted_logits.softmax(dim=-1) >= self.p  # mass before >= p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        return logits.masked_fill(drop, NEG_INF)


class RepetitionPenalty:
    """CTRL-style: divides positive (multiplies negative) logits of tokens already generated."""

    bans_whole_rows = False

    def __init__(self, penalty: float) -> None:
        if not (math.isfinite(penalty) and penalty >= 1):
            raise ValueError(f"repetition_penalty must be a finite number >= 1 (got {penalty}); "
                             "1 disables it")
        self.penalty = float(penalty)

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        if history.size(1) == 0 or self.penalty == 1:
            return logits
        seen = logits.gather(1, history)
        seen = torch.where(seen > 0, seen / self.penalty, seen * self.penalty)
        return logits.scatter(1, history, seen)


class NoRepeatNGram:
    """Bans any token that would repeat an n-gram already present in the history."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"no_repeat_ngram must be >= 1 (got {n}); 0 means off, so leave it out")
        self.n = int(n)

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        n, t = self.n, history.size(1)
        if t < n - 1:
            return logits
        banned = torch.zeros_like(logits, dtype=torch.bool)
        rows = history.tolist()
        for i, row in enumerate(rows):
            prefix = tuple(row[t - n + 1:]) if n > 1 else ()
            for j in range(t - n + 1):
                if tuple(row[j:j + n - 1]) == prefix:
                    banned[i, row[j + n - 1]] = True
        return logits.masked_fill(banned, NEG_INF)


class MinLength:
    """Forbids EOS until ``min_length`` tokens have been generated."""

    bans_whole_rows = False

    def __init__(self, min_length: int, *, eos: int = EOS) -> None:
        if min_length < 0:
            raise ValueError(f"min_length must be >= 0 (got {min_length})")
        self.min_length, self.eos = int(min_length), eos

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        if history.size(1) >= self.min_length:
            return logits
        return logits + ban_bias((self.eos,), logits.size(1), logits.device)


class BanTokens:
    """Never emits the given ids; PAD and BOS are always banned by the searchers."""

    bans_whole_rows = False

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(set(int(i) for i in ids))

    def __call__(self, logits: Tensor, history: Tensor) -> Tensor:
        return logits + self.bias(logits.size(1), logits.device)  # one pass; index_fill took two

    def bias(self, vocab_size: int, device: torch.device) -> Tensor:
        """(V,) zeros with -inf at the banned ids: added to scores, it bans them in the same pass
        that adds something else (beam search adds its running scores)."""
        return ban_bias(self.ids, vocab_size, device)


def ban_bias(ids: Sequence[int], vocab_size: int, device: torch.device) -> Tensor:
    """A cached (V,) row of zeros with -inf at ``ids``; adding it bans them in one pass."""
    return _ban_row(tuple(ids), vocab_size, torch.device(device))


@functools.lru_cache(maxsize=64)  # bounded: shortlisted searches vary V from batch to batch
def _ban_row(ids: tuple[int, ...], vocab_size: int, device: torch.device) -> Tensor:
    bias = torch.zeros(vocab_size, device=device)
    bias[[i for i in ids if i < vocab_size]] = NEG_INF
    return bias


def default_bans(*, ban_unk: bool = True) -> BanTokens:
    return BanTokens([PAD, BOS, UNK] if ban_unk else [PAD, BOS])
