"""Searchers on scripted probability tables and tiny random models; logits processors."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from conftest import ScriptedModel, tiny_model

from seqgen.data.batch import Batch, pad, prompt_batch
from seqgen.decoding.processors import (BanTokens, MinLength, NoRepeatNGram, RepetitionPenalty,
                                        Temperature, TopK, TopP)
from seqgen.decoding.search import BeamSearch, GreedySearch, SampleSearch, build_searcher, generate
from seqgen.vocab import BOS, EOS, PAD

# Greedy takes 4 (0.6) and then can only reach 0.6 * 0.35 = 0.21; the best sequence is 5 6 (0.4).
TABLE = {(): {4: 0.6, 5: 0.4}, (4,): {4: 0.35, 5: 0.35, 6: 0.3}, (5,): {6: 1.0},
         (4, 4): {EOS: 1.0}, (4, 5): {EOS: 1.0}, (4, 6): {EOS: 1.0}, (5, 6): {EOS: 1.0}}


def run(searcher, model: ScriptedModel, batch_size: int = 1):
    state, first = model.start(batch_size)
    return searcher.search(model, state, first)


def test_beam_finds_the_sequence_greedy_misses():
    model = ScriptedModel(TABLE)
    greedy = run(GreedySearch(max_len=5, ban_unk=False), model)[0][0]
    beam = run(BeamSearch(beam_size=2, max_len=5, length_penalty=0.0, ban_unk=False), model)[0][0]
    assert greedy.tokens[0] == 4
    assert beam.tokens == [5, 6]
    assert beam.score == pytest.approx(float(torch.tensor(0.4).log()), abs=1e-5)


def test_beam_n_best_is_sorted_and_batched_like_single():
    model = ScriptedModel(TABLE)
    nbest = run(BeamSearch(beam_size=3, n_best=3, max_len=5, length_penalty=0.0, ban_unk=False),
                model, batch_size=2)
    assert len(nbest) == 2 and nbest[0] == nbest[1]
    scores = [h.score for h in nbest[0]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert nbest[0][0].tokens == [5, 6]


@pytest.mark.parametrize("cell,attention,encoder", [("lstm", "none", "none"), ("gru", "none", "none"),
                                                    ("lstm", "additive", "rnn"),
                                                    ("gru", "general", "rnn")])
def test_beam_size_one_equals_greedy(cell, attention, encoder):
    model = tiny_model(cell=cell, attention=attention, encoder=encoder, seed=3)
    src, lengths = pad([[5, 6, 7], [8, 9], [4]])
    batch = Batch(src=src, src_lengths=lengths) if encoder == "rnn" else Batch(
        prompt=prompt_batch([[5], [6, 7], []])[0], prompt_lengths=prompt_batch([[5], [6, 7], []])[1])
    greedy = generate(model, batch, GreedySearch(max_len=12))
    beam = generate(model, batch, BeamSearch(beam_size=1, max_len=12))
    assert [h[0].tokens for h in greedy] == [h[0].tokens for h in beam]


def test_batched_beam_equals_one_at_a_time():
    model = tiny_model(encoder="rnn", attention="additive", seed=5)
    sources = [[5, 6, 7, 8], [9], [4, 4, 10]]
    src, lengths = pad(sources)
    searcher = BeamSearch(beam_size=4, max_len=10, n_best=2)
    together = generate(model, Batch(src=src, src_lengths=lengths), searcher)
    for i, s in enumerate(sources):
        one_src, one_len = pad([s])
        alone = generate(model, Batch(src=one_src, src_lengths=one_len), searcher)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]


def test_sampling_is_reproducible_with_a_seed_and_never_emits_pad_or_bos():
    model = tiny_model(seed=1)
    with torch.no_grad():  # make PAD and BOS the model's favourites: they must still never appear
        model.decoder.output.bias[PAD] = 8.0
        model.decoder.output.bias[BOS] = 8.0
    batch = Batch(prompt=torch.tensor([[BOS, 5]]), prompt_lengths=torch.tensor([2]))
    for temperature in (0.3, 0.8, 1.0, 1.3, 1.8, 5.0):
        draws = [generate(model, batch, build_searcher(temperature=temperature, seed=7, max_len=30),
                          num_samples=4) for _ in range(2)]
        assert [h.tokens for h in draws[0][0]] == [h.tokens for h in draws[1][0]]
        for hyp in draws[0][0]:
            assert PAD not in hyp.tokens and BOS not in hyp.tokens


def test_greedy_stops_each_sequence_at_eos_and_respects_max_len():
    model = ScriptedModel(TABLE)
    out = run(GreedySearch(max_len=1, ban_unk=False), model)[0][0]
    assert out.tokens == [4]
    out = run(GreedySearch(max_len=10, ban_unk=False), model)[0][0]
    assert out.tokens in ([4, 4], [4, 5])


def test_collected_attention_has_one_row_per_generated_token():
    model = tiny_model(encoder="rnn", attention="general", seed=2)
    src, lengths = pad([[5, 6, 7], [8]])
    for searcher in (GreedySearch(max_len=6, collect_attention=True),
                     BeamSearch(beam_size=3, max_len=6, collect_attention=True)):
        hyps = generate(model, Batch(src=src, src_lengths=lengths), searcher)
        for hyp, n_src in zip((h[0] for h in hyps), (3, 1)):
            assert hyp.attention.shape[0] >= len(hyp.tokens)
            assert torch.allclose(hyp.attention.sum(-1), torch.ones(hyp.attention.shape[0]), atol=1e-5)
            assert float(hyp.attention[:, n_src:].abs().sum()) == 0.0  # padding gets no weight


# ------------------------------------------------------------------------------------------------
PROCESSORS = [Temperature(0.7), TopK(3), TopP(0.9), RepetitionPenalty(1.5), NoRepeatNGram(2),
              MinLength(3), BanTokens([PAD, BOS])]


@pytest.mark.parametrize("processor", PROCESSORS, ids=lambda p: type(p).__name__)
def test_processors_never_change_their_input(processor):
    logits = torch.randn(3, 10)
    history = torch.tensor([[4, 5, 4], [6, 6, 6], [7, 8, 9]])
    before = logits.clone()
    out = processor(logits, history)
    assert torch.equal(logits, before) and out.shape == logits.shape


def test_top_k_top_p_and_ngram_blocking_keep_what_they_should():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    empty = torch.zeros((1, 0), dtype=torch.long)
    assert torch.isfinite(TopK(2)(logits, empty)).tolist() == [[False, False, False, True, True]]
    probs = logits.softmax(-1)[0]  # 0.64, 0.23, ...: p=0.7 keeps the two largest
    assert float(probs[4]) < 0.7 < float(probs[4] + probs[3])
    assert torch.isfinite(TopP(0.7)(logits, empty)).tolist() == [[False, False, False, True, True]]
    history = torch.tensor([[3, 4, 3]])  # the bigram (3, 4) exists: after 3, 4 is banned
    assert torch.isinf(NoRepeatNGram(2)(logits, history)[0, 4])
    assert torch.isinf(MinLength(5)(logits, history)[0, EOS])


@pytest.mark.parametrize("make,message", [
    (lambda: Temperature(0), "greedy"), (lambda: Temperature(-1), "greedy"),
    (lambda: TopP(0), r"\(0, 1\]"), (lambda: TopP(1.5), r"\(0, 1\]"), (lambda: TopK(0), "top_k"),
    (lambda: BeamSearch(beam_size=0), "beam size"), (lambda: BeamSearch(beam_size=2, n_best=3), "n_best"),
    (lambda: RepetitionPenalty(0.5), "repetition_penalty"),
    (lambda: build_searcher(beam=3, temperature=0.8), "either sampling"),
    (lambda: GreedySearch(max_len=0), "max_len"),
])
def test_invalid_options_say_what_to_do(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sample_search_with_top_k_one_is_greedy():
    model = tiny_model(seed=4)
    batch = Batch(prompt=torch.tensor([[BOS, 5, 6]]), prompt_lengths=torch.tensor([3]))
    greedy = generate(model, batch, GreedySearch(max_len=15))[0][0].tokens
    sampled = generate(model, batch, SampleSearch(temperature=1.0, top_k=1, max_len=15))[0][0].tokens
    assert greedy == sampled


@dataclass(frozen=True)
class LengthState:
    sid: torch.Tensor  # (N,) which sentence each row belongs to
    t: int

    def index_select(self, index: torch.Tensor) -> "LengthState":
        return LengthState(self.sid.index_select(0, index), self.t)


class EndsAfter:
    """Sentence i prefers token 4 + i for ``lengths[i]`` steps, then EOS; records batch sizes."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths, self.rows_seen = torch.tensor(lengths), []

    def step(self, tokens, state):
        self.rows_seen.append(tokens.size(0))
        logits = torch.full((tokens.size(0), 10), -5.0)
        logits[:, 3] = -4.0  # a runner-up so beams differ
        ended = state.t >= self.lengths[state.sid]
        logits[torch.arange(len(state.sid)), 4 + state.sid] = torch.where(ended, -6.0, 0.0)
        logits[ended, 2] = 0.0
        return logits, LengthState(state.sid, state.t + 1)


def test_beam_search_drops_finished_sentences_without_changing_results():
    lengths = [1, 6, 3]
    batched_model = EndsAfter(lengths)
    searcher = BeamSearch(beam_size=2, max_len=12, n_best=2)
    together = searcher.search(batched_model, LengthState(torch.arange(3), 0),
                               torch.full((3,), 1))
    for i in range(3):
        alone = searcher.search(EndsAfter(lengths), LengthState(torch.tensor([i]), 0),
                                torch.full((1,), 1))
        assert [h.tokens for h in together[i]] == [h.tokens for h in alone[0]]
    assert together[1][0].tokens == [5] * 6 and together[0][0].tokens == [4]
    assert batched_model.rows_seen[0] == 6 and batched_model.rows_seen[-1] == 2  # pruned to one
