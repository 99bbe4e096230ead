"""Searchers on scripted tables: length penalty ranking, top-p inside sampling, n-gram blocking
inside greedy search, and dead ends (every token banned) that end the sequence instead of failing."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import ScriptedModel, TableState

from seqgen.decoding.processors import NoRepeatNGram, apply_processors
from seqgen.decoding.search import BeamSearch, GreedySearch, SampleSearch, build_searcher
from seqgen.vocab import EOS

NEG_INF = float("-inf")


def run(searcher, model, batch_size: int = 1):
    state, first = model.start(batch_size)
    return searcher.search(model, state, first)


def chain(prefix: tuple[int, ...], rest: list[int]) -> dict[tuple[int, ...], dict[int, float]]:
    """Table entries that continue ``prefix`` deterministically with ``rest`` (then EOS)."""
    table, history = {}, prefix
    for token in rest:
        table[history] = {token: 1.0}
        history = (*history, token)
    return table


# ------------------------------------------------------------------------------------------------
# [4] then EOS has probability 0.6; the two long branches 5 6 9... and 5 7 9... have 0.2 each.
LONG = 8  # tokens in a long hypothesis (EOS excluded)
PENALTY_TABLE = {(): {4: 0.6, 5: 0.4}, (4,): {EOS: 1.0}, (5,): {6: 0.5, 7: 0.5},
                 **chain((5, 6), [9] * (LONG - 2)), **chain((5, 7), [9] * (LONG - 2))}


def wu(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@pytest.mark.parametrize("alpha,winner", [(0.0, 1), (1.0, 1), (2.0, LONG)])
def test_length_penalty_changes_which_hypothesis_wins(alpha, winner):
    """winner: the length of the best hypothesis; the short one wins until alpha is large."""
    model = ScriptedModel(PENALTY_TABLE, vocab=10)
    nbest = run(BeamSearch(beam_size=2, n_best=2, max_len=20, length_penalty=alpha, ban_unk=False),
                model)[0]
    assert len(nbest) == 2
    short_score = math.log(0.6) / wu(2, alpha)  # one token + EOS
    long_score = math.log(0.2) / wu(LONG + 1, alpha)
    by_tokens = {tuple(h.tokens): h.score for h in nbest}
    assert by_tokens[(4,)] == pytest.approx(short_score, abs=1e-5)
    long_hyp = [h for h in nbest if len(h.tokens) == LONG]
    assert len(long_hyp) == 1 and long_hyp[0].score == pytest.approx(long_score, abs=1e-5)
    assert len(nbest[0].tokens) == winner and nbest[0].score > nbest[1].score


# ------------------------------------------------------------------------------------------------
TOP_P_TABLE = {(): {4: 0.5, 5: 0.3, 6: 0.2}}  # then EOS


def first_tokens(top_p: float, seed: int, rows: int = 64) -> set[int]:
    searcher = SampleSearch(temperature=1.0, top_p=top_p, max_len=3, ban_unk=False,
                            generator=torch.Generator().manual_seed(seed))
    return {h[0].tokens[0] for h in run(searcher, ScriptedModel(TOP_P_TABLE), batch_size=rows)}


def test_top_p_below_the_top_probability_keeps_only_the_top_token():
    for seed in range(10):  # 640 draws: none may be a token outside the nucleus
        assert first_tokens(0.45, seed) == {4}


def test_top_p_one_keeps_every_token_and_a_mid_p_keeps_the_nucleus():
    assert set().union(*(first_tokens(1.0, seed) for seed in range(3))) == {4, 5, 6}
    assert set().union(*(first_tokens(0.7, seed) for seed in range(3))) == {4, 5}  # 0.5 + 0.3


# ------------------------------------------------------------------------------------------------
BIGRAMS = {  # next-token probabilities by the last token: greedy alone loops 4 5 4 5 ...
    None: {4: 0.7, 5: 0.3},
    4: {5: 0.5, 6: 0.3, 7: 0.15, EOS: 0.05},
    5: {4: 0.5, 7: 0.25, 6: 0.2, EOS: 0.05},
    6: {4: 0.4, 5: 0.3, 7: 0.2, EOS: 0.1},
    7: {5: 0.4, 4: 0.3, 6: 0.2, EOS: 0.1},
}


class Bigram:
    """A scripted model whose next-token table depends on the last token only; tokens it gives no
    probability get -inf (not just a tiny one), so a processor can empty a row completely.
    A last token missing from the table puts all mass on EOS."""

    def __init__(self, table: dict[int | None, dict[int, float]], vocab: int = 8) -> None:
        self.table, self.vocab, self.training = table, vocab, False

    def step(self, tokens: torch.Tensor, state: TableState) -> tuple[torch.Tensor, TableState]:
        history = torch.cat([state.history, tokens[:, None]], dim=1)
        logits = torch.full((tokens.size(0), self.vocab), NEG_INF)
        for row, hist in enumerate(history[:, 1:].tolist()):
            for token, prob in self.table.get(hist[-1] if hist else None, {EOS: 1.0}).items():
                logits[row, token] = math.log(prob)
        return logits, TableState(history)

    start = ScriptedModel.start


def blocked_greedy(table, n: int, max_len: int) -> list[int]:
    """Reference: arg-max over the tokens that do not repeat an n-gram; EOS at a dead end."""
    out: list[int] = []
    for _ in range(max_len):
        seen = {tuple(out[j:j + n]) for j in range(len(out) - n + 1)}
        options = {t: p for t, p in table[out[-1] if out else None].items()
                   if tuple([*out[len(out) - n + 1:], t]) not in seen}
        token = max(options, key=options.get) if options else EOS
        if token == EOS:
            break
        out.append(token)
    return out


def bigrams(tokens: list[int]) -> list[tuple[int, int]]:
    return list(zip(tokens, tokens[1:]))


def test_greedy_alone_repeats_a_bigram_and_blocking_never_does():
    model = Bigram(BIGRAMS)
    plain = run(build_searcher(max_len=12, ban_unk=False), model)[0][0].tokens
    assert plain[:4] == [4, 5, 4, 5] and len(set(bigrams(plain))) < len(bigrams(plain))
    blocked = run(build_searcher(max_len=12, no_repeat_ngram=2, ban_unk=False), model)[0][0].tokens
    assert len(blocked) >= 4
    assert len(set(bigrams(blocked))) == len(bigrams(blocked))
    assert blocked == blocked_greedy(BIGRAMS, 2, 12)


def test_blocking_is_per_row_in_a_batch():
    model = Bigram(BIGRAMS)
    rows = run(build_searcher(max_len=12, no_repeat_ngram=2, ban_unk=False), model, batch_size=3)
    assert [h[0].tokens for h in rows] == [blocked_greedy(BIGRAMS, 2, 12)] * 3


# ------------------------------------------------------------------------------------------------
ONLY_FOUR = {None: {4: 1.0}, 4: {4: 1.0}}  # the model can say nothing but 4, forever


def test_processors_never_leave_a_row_without_a_choice():
    logits = torch.full((2, 8), NEG_INF)
    logits[:, 4] = 0.0
    history = torch.tensor([[4, 4], [5, 6]])  # row 0: the bigram (4, 4) exists, 4 is banned
    out = apply_processors([NoRepeatNGram(2)], logits, history)
    assert not torch.isneginf(out).all(dim=-1).any()
    assert out[0].argmax() == EOS and torch.isneginf(out[0, 4])
    assert torch.equal(out[1], logits[1])  # a row with a choice is untouched
    assert torch.isneginf(logits[1, EOS])  # and the input is never changed


@pytest.mark.parametrize("options", [dict(), dict(temperature=1.0, seed=0), dict(top_p=0.9, seed=1),
                                     dict(beam=2)], ids=["greedy", "sample", "top-p", "beam"])
def test_a_dead_end_from_ngram_blocking_ends_the_sequence(options):
    searcher = build_searcher(max_len=10, no_repeat_ngram=2, ban_unk=False, **options)
    hyps = run(searcher, Bigram(ONLY_FOUR), batch_size=2)
    for hyp in hyps:
        assert hyp[0].tokens == [4, 4]  # 4 4, then (4, 4) again is banned: nothing left but EOS
    if isinstance(searcher, BeamSearch):
        assert math.isfinite(hyps[0][0].score)


def test_without_blocking_the_same_model_runs_to_max_len():
    hyp = run(GreedySearch(max_len=6, ban_unk=False), Bigram(ONLY_FOUR))[0][0]
    assert hyp.tokens == [4] * 6
