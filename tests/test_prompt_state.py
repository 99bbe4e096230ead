"""A prompt is run through the decoder once and generation goes on from its state: stepping on
from that state equals running the prompt again in full, or stepping it through token by token
(input feeding included, with prompts of different lengths in one batch)."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from seqgen.data.batch import Batch, pad, prompt_batch
from seqgen.vocab import BOS


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_prompt_state_generation_equals_a_full_forward_pass(cell):
    """Running the prompt once and stepping on gives the logits a full re-run would give."""
    model = tiny_model(cell=cell, layers=2)
    prompts = [[4, 5, 6, 7], [8], []]
    prompt, lengths = prompt_batch(prompts)
    state, first = model.init_state(Batch(prompt=prompt, prompt_lengths=lengths))
    assert first.tolist() == [7, 8, BOS]
    logits, _ = model.step(first, state)  # (B, V) next-symbol logits after each prompt
    for i, p in enumerate(prompts):
        tokens = torch.tensor([[BOS, *p]])
        full, _ = model.decoder(tokens, model.decoder.init_state(batch_size=1))
        assert torch.allclose(logits[i], full[0, -1], atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_prompt_with_input_feeding_keeps_the_fed_vector_of_each_row(cell):
    """With input feeding the prompt pass loops over time; rows of different lengths stop at
    their own, and the attentional vector the last prompt step fed on is kept: stepping from
    the prompt state equals stepping each prompt through alone, token by token."""
    model = tiny_model(cell=cell, encoder="rnn", attention="general", input_feeding=True)
    src, src_lengths = pad([[4, 5, 6], [7, 8], [9, 10, 11]])
    prompts = [[4, 5, 6, 7], [8], []]
    prompt, lengths = prompt_batch(prompts)
    state, first = model.init_state(Batch(src=src, src_lengths=src_lengths, prompt=prompt,
                                          prompt_lengths=lengths))
    assert first.tolist() == [7, 8, BOS] and state.feed is not None
    logits, _ = model.step(first, state)
    for i, p in enumerate(prompts):
        alone, token = model.init_state(Batch(src=src[i:i + 1, :int(src_lengths[i])],
                                              src_lengths=src_lengths[i:i + 1]))
        for nxt in p:  # BOS first, then the prompt, one step each
            _, alone = model.step(token, alone)
            token = torch.tensor([nxt])
        expected, _ = model.step(token, alone)
        assert torch.allclose(logits[i], expected[0], atol=1e-5)
