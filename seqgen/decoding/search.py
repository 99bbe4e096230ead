"""Searchers: greedy, sampling and beam search, batched, driven only through ``step``.

A searcher sees a *stepper* — anything with ``step(tokens, state) -> (logits, state)`` whose state
has ``index_select`` — plus logits processors. It knows nothing of the task or of the decoder's
class, so one beam search serves headlines, translation and captioning alike.
"""
from __future__ import annotations

from typing import Any, Generator, Sequence

import torch
from torch import Tensor

from ..vocab import EOS, PAD
from .base import Hypothesis, Searcher, Stepper  # noqa: F401 (Stepper: re-exported)
from .beam import BeamSearch
from .processors import (LogitsProcessor, MinLength, NoRepeatNGram, RepetitionPenalty, Temperature,
                         TopK, TopP, apply_processors)

class _LeftToRight(Searcher):
    """Shared loop of greedy and sampling: one token per sequence per step, stop at EOS."""

    def choose(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def steps(self, model: Stepper, state: Any, first: Tensor
              ) -> Generator[Tensor, None, list[list[Hypothesis]]]:
        """Yields the (N,) tokens chosen at each step (PAD for finished rows) and returns one
        hypothesis per batch entry; lets callers stream text as it is produced. first: (N,)."""
        n = first.size(0)
        tokens = first
        history = first.new_full((n, self.max_len), PAD)  # filled in place; a view is passed on
        finished = torch.zeros(n, dtype=torch.bool, device=first.device)
        scores = torch.zeros(n, device=first.device)
        attention = []
        length = n_finished = 0
        for t in range(self.max_len):
            logits, state = model.step(tokens, state)
            logits = logits.float()  # (N, V)
            chosen = self.choose(apply_processors(self.processors, logits, history[:, :t]))  # (N,)
            logp = logits.log_softmax(-1).gather(1, chosen[:, None]).squeeze(1)
            if n_finished:  # (masking skipped while every row runs: most steps of most searches)
                chosen = chosen.masked_fill(finished, PAD)
                logp = logp.masked_fill(finished, 0.0)
            scores += logp
            history[:, t] = chosen
            length = t + 1
            if self.collect_attention and getattr(state, "attention", None) is not None:
                attention.append(state.attention[:, -1])  # (N, S)
            yield chosen
            finished |= chosen == EOS
            n_finished = int(finished.sum())
            if n_finished == n:
                break
            tokens = chosen
        history = history[:, :length]
        attn = torch.stack(attention, dim=1) if attention else None  # (N, t, S)
        out = []
        for i, row in enumerate(history.tolist()):
            length = row.index(EOS) if EOS in row else len(row)
            out.append([Hypothesis(row[:length], float(scores[i]),
                                   None if attn is None else attn[i, : length + 1])])
        return out

    def search(self, model: Stepper, state: Any, first: Tensor) -> list[list[Hypothesis]]:
        """Generates one hypothesis per batch entry (``steps`` run to the end)."""
        steps = self.steps(model, state, first)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value


class GreedySearch(_LeftToRight):
    """Arg-max at every step: fast, deterministic, and prone to loops."""

    def __init__(self, *, max_len: int = 100, processors: Sequence[LogitsProcessor] = (),
                 ban_unk: bool = True, collect_attention: bool = False) -> None:
        super().__init__(max_len=max_len, processors=processors, ban_unk=ban_unk,
                         collect_attention=collect_attention)

    def choose(self, logits: Tensor) -> Tensor:
        return logits.argmax(dim=-1)


class SampleSearch(_LeftToRight):
    """Samples from the (temperature / top-k / top-p reshaped) distribution; seedable."""

    def __init__(self, *, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, max_len: int = 100,
                 processors: Sequence[LogitsProcessor] = (), ban_unk: bool = True,
                 generator: torch.Generator | None = None, collect_attention: bool = False) -> None:
        shaping: list[LogitsProcessor] = [Temperature(temperature)]
        if top_k is not None:
            shaping.append(TopK(top_k))
        if top_p is not None:
            shaping.append(TopP(top_p))
        super().__init__(max_len=max_len, processors=processors, warpers=shaping,
                         ban_unk=ban_unk, collect_attention=collect_attention)
        self.generator = generator

    def choose(self, logits: Tensor) -> Tensor:
        probs = logits.softmax(dim=-1)  # (N, V); banned tokens have probability exactly 0
        if self.generator is not None and self.generator.device != probs.device:
            probs = probs.to(self.generator.device)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1).to(logits.device)


# ------------------------------------------------------------------------------------------------
def build_searcher(*, beam: int = 1, temperature: float | None = None, top_k: int | None = None,
                   top_p: float | None = None, max_len: int = 100, length_penalty: float = 1.0,
                   n_best: int = 1, repetition_penalty: float = 1.0, no_repeat_ngram: int = 0,
                   min_length: int = 0, ban_unk: bool = True, seed: int | None = None,
                   collect_attention: bool = False) -> GreedySearch | SampleSearch | BeamSearch:
    """One place that turns user options into a searcher (used by the CLI and the recipes)."""
    processors: list[LogitsProcessor] = []
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(repetition_penalty))
    if no_repeat_ngram:
        processors.append(NoRepeatNGram(no_repeat_ngram))
    if min_length:
        processors.append(MinLength(min_length))
    sampling = temperature is not None or top_k is not None or top_p is not None
    if sampling and beam > 1:
        raise ValueError("choose either sampling (temperature/top-k/top-p) or beam search, not both")
    common = dict(max_len=max_len, processors=processors, ban_unk=ban_unk,
                  collect_attention=collect_attention)
    if sampling:
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return SampleSearch(temperature=1.0 if temperature is None else temperature, top_k=top_k,
                            top_p=top_p, generator=generator, **common)
    if beam > 1 or n_best > 1:
        return BeamSearch(beam_size=beam, length_penalty=length_penalty, n_best=n_best, **common)
    if beam < 1:
        raise ValueError(f"beam size must be >= 1 (got {beam}); 1 is greedy search")
    return GreedySearch(**common)


def generate(model: Any, batch: Any, searcher: Any, *, num_samples: int = 1
             ) -> list[list[Hypothesis]]:
    """Runs ``model.init_state(batch)`` then the searcher; ``num_samples`` repeats each entry.

    Returns, per batch entry, its hypotheses (n-best for beam search, samples otherwise).
    """
    if num_samples < 1:
        raise ValueError(f"the number of samples must be >= 1 (got {num_samples})")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            state, first = model.init_state(batch)
            if num_samples > 1:
                index = torch.arange(first.size(0), device=first.device).repeat_interleave(num_samples)
                state, first = state.index_select(index), first.index_select(0, index)
            results = searcher.search(model, state, first)
    finally:
        model.train(was_training)
    if num_samples > 1:
        results = [[h for r in results[i * num_samples:(i + 1) * num_samples] for h in r]
                   for i in range(len(results) // num_samples)]
    return results
