"""Searchers: greedy, sampling and beam search, batched, driven only through ``step``.

A searcher sees a *stepper* — anything with ``step(tokens, state) -> (logits, state)`` whose state
has ``index_select`` — plus logits processors. It knows nothing of the task or of the decoder's
class, so one beam search serves headlines, translation and captioning alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generator, Protocol, Sequence

import torch
from torch import Tensor

from ..vocab import EOS, PAD
from .processors import (LogitsProcessor, MinLength, NoRepeatNGram, RepetitionPenalty, Temperature,
                         TopK, TopP, apply_processors, default_bans)

MAX_LEN = 5000  # symbols per output; beyond it a run is almost surely a mistake
MAX_LENGTH_PENALTY = 10.0


class Stepper(Protocol):
    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, EOS excluded
    score: float  # log-probability (length-normalised for beam search)
    attention: Tensor | None = None  # (len, S) attention weights per generated token


# ------------------------------------------------------------------------------------------------
class _Searcher:
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


class _LeftToRight(_Searcher):
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
class BeamSearch(_Searcher):
    """Batched beam search with Wu et al. length penalty ((5 + len) / 6) ** alpha and n-best lists.

    Finished hypotheses leave the beam (as in fairseq): each step ranks 2k candidates, the ones
    ending in EOS among the top k are set aside, and the best k others carry on. A sentence is done
    once it has k finished hypotheses.
    """

    def __init__(self, *, beam_size: int = 5, max_len: int = 100, length_penalty: float = 1.0,
                 n_best: int = 1, processors: Sequence[LogitsProcessor] = (), ban_unk: bool = True,
                 collect_attention: bool = False) -> None:
        if beam_size < 1:
            raise ValueError(f"beam size must be >= 1 (got {beam_size}); 1 is greedy search")
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"n_best must be between 1 and the beam size {beam_size} (got {n_best})")
        if not (math.isfinite(length_penalty) and 0 <= length_penalty <= MAX_LENGTH_PENALTY):
            raise ValueError(f"length_penalty must be a number from 0 to {MAX_LENGTH_PENALTY:g} "
                             f"(got {length_penalty}); 0 disables it")
        super().__init__(max_len=max_len, processors=processors, ban_unk=ban_unk,
                         collect_attention=collect_attention)
        self.k, self.alpha, self.n_best = int(beam_size), float(length_penalty), int(n_best)

    def normalise(self, score: float, length: int) -> float:
        return score / (((5 + length) / 6) ** self.alpha)

    @torch.no_grad()
    def search(self, model: Stepper, state: Any, first: Tensor) -> list[list[Hypothesis]]:
        b, k, device = first.size(0), self.k, first.device
        state = state.index_select(torch.arange(b, device=device).repeat_interleave(k))
        tokens, history = first.repeat_interleave(k), first.new_zeros((b * k, 0))
        beam_scores = torch.full((b, k), float("-inf"), device=device)
        beam_scores[:, 0] = 0.0
        attn_history: Tensor | None = None
        finished: list[list[Hypothesis]] = [[] for _ in range(b)]
        done = [False] * b
        active = list(range(b))  # the sentences still searched, in the order of the beam rows
        for t in range(self.max_len):
            logits, state = model.step(tokens, state)
            logp = logits.float().log_softmax(-1)  # (AK, V), owned here: changed in place below
            n_active, vocab = len(active), logp.size(1)
            if self.shaping:  # processors, bans, and EOS for any row they leave no choice
                logp = apply_processors(self.processors, logp, history)
                logp.add_(beam_scores.view(-1, 1))
            else:  # running scores and bans in one pass (a separate ban copied (AK, V) each step)
                logp.add_(beam_scores.view(-1, 1) + self.bans.bias(vocab, device))
            offsets = torch.arange(n_active, device=device)[:, None] * k  # (A, 1)
            step_attn = getattr(state, "attention", None) if self.collect_attention else None
            if step_attn is not None:
                step_attn = step_attn[:, -1:]  # (AK, 1, S)
                attn_history = step_attn if attn_history is None else torch.cat(
                    [attn_history, step_attn], dim=1)  # (AK, t+1, S)
            candidates = logp.view(n_active, k * vocab)  # (A, K*V)
            n_cand = min(2 * k, k * vocab)
            top_scores, top_idx = candidates.topk(n_cand, dim=1)  # (A, 2K)
            origin = torch.div(top_idx, vocab, rounding_mode="floor")  # (A, 2K) beam index
            token = top_idx % vocab  # (A, 2K)
            is_eos = (token == EOS) | (t == self.max_len - 1)
            self._finish(finished, done, active, top_scores, origin, token, is_eos, offsets,
                         history, attn_history)
            if all(done):
                break
            rank = torch.arange(n_cand, device=device).expand(n_active, n_cand)
            keep = (rank + is_eos.long() * n_cand).topk(k, dim=1, largest=False).values % n_cand
            keep = keep.sort(dim=1).values  # (A, K) best non-EOS candidates, best first
            beam_scores = top_scores.gather(1, keep)
            flat_origin = (offsets + origin.gather(1, keep)).view(-1)  # (AK,) rows to continue
            tokens = token.gather(1, keep).view(-1)  # (AK,)
            alive = [j for j, sent in enumerate(active) if not done[sent]]
            if len(alive) < n_active:  # finished sentences leave the batch: later steps are cheaper
                alive_t = torch.tensor(alive, device=device)
                rows = (alive_t[:, None] * k + torch.arange(k, device=device)).view(-1)
                beam_scores = beam_scores.index_select(0, alive_t)
                flat_origin, tokens = flat_origin.index_select(0, rows), tokens.index_select(0, rows)
                active = [active[j] for j in alive]
            state = state.index_select(flat_origin)
            history = torch.cat([history.index_select(0, flat_origin), tokens[:, None]], dim=1)
            if attn_history is not None:
                attn_history = attn_history.index_select(0, flat_origin)
        return [sorted(hyps, key=lambda h: -h.score)[: self.n_best] for hyps in finished]

    def _finish(self, finished: list[list[Hypothesis]], done: list[bool], active: list[int],
                top_scores: Tensor, origin: Tensor, token: Tensor, is_eos: Tensor, offsets: Tensor,
                history: Tensor, attn_history: Tensor | None) -> None:
        """Sets aside the candidates that end here (EOS, or the length limit) among the top k.

        Rows of the score tensors are active sentences; ``active`` maps them to batch entries.
        """
        k = self.k
        ends = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])  # (A, K)
        if not bool(ends.any()):
            return
        for local, rank in ends.nonzero().tolist():
            sent = active[local]
            if done[sent]:
                continue
            row = int(offsets[local, 0] + origin[local, rank])
            tokens = history[row].tolist()
            length = len(tokens) + 1
            if int(token[local, rank]) != EOS:  # cut off by max_len: keep the last token
                tokens.append(int(token[local, rank]))
            attn = None if attn_history is None else attn_history[row]
            finished[sent].append(Hypothesis(
                tokens, self.normalise(float(top_scores[local, rank]), length), attn))
            if len(finished[sent]) >= k:
                done[sent] = True


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
