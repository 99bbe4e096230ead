"""The shared decoder: stepping equals the fused teacher-forced pass; prompt state; masks."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import tiny_model

from seqgen.data.batch import Batch, pad, target_pair
from seqgen.nn.attention import AdditiveAttention, DotAttention
from seqgen.nn.decoder import DecoderConfig, RecurrentDecoder
from seqgen.nn.encoders import EncoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig


def batch_for(encoder: str) -> Batch:
    tgt_in, tgt_out = target_pair([[4, 5, 6, 7], [8, 9]])
    src, lengths = pad([[5, 6, 7], [8, 9]])
    features = torch.randn(2, 4, 7)
    return Batch(tgt_in=tgt_in, tgt_out=tgt_out,
                 src=src if encoder == "rnn" else None,
                 src_lengths=lengths if encoder == "rnn" else None,
                 features=features if encoder == "features" else None)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention,encoder", [("none", "none"), ("none", "rnn"), ("general", "features"),
                                               ("general", "rnn"), ("additive", "rnn"),
                                               ("additive", "features")])
def test_step_by_step_reproduces_teacher_forced_forward(cell, attention, encoder):
    model = tiny_model(cell=cell, attention=attention, encoder=encoder, layers=2)
    batch = batch_for(encoder)
    state = model._encode(batch)
    full, _ = model.decoder(batch.tgt_in, state)  # (B, T, V)
    steps = []
    for t in range(batch.tgt_in.size(1)):
        logits, state = model.step(batch.tgt_in[:, t], state)
        steps.append(logits)
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_input_feeding_carries_the_attentional_vector_into_the_next_step(cell):
    model = tiny_model(cell=cell, attention="general", encoder="rnn", input_feeding=True)
    batch = batch_for("rnn")
    state = model._encode(batch)
    assert state.feed is not None and not state.feed.any()
    full, end = model.decoder(batch.tgt_in, state)
    assert end.attention.shape[:2] == batch.tgt_in.shape and end.feed.shape == (2, 8)
    _, after_first = model.step(batch.tgt_in[:, 0], state)
    logits, _ = model.step(batch.tgt_in[:, 1], after_first)
    torch.testing.assert_close(logits, full[:, 1])
    changed = replace(after_first, feed=after_first.feed + 1.0)
    assert not torch.allclose(model.step(batch.tgt_in[:, 1], changed)[0], logits)
    total, n = model.loss(batch)
    total.backward()
    assert torch.isfinite(total) and n > 0
    with pytest.raises(ValueError, match="attention"):
        tiny_model(input_feeding=True)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention,encoder", [("general", "features"), ("additive", "rnn")])
def test_attending_first_steps_like_its_teacher_forced_pass_and_uses_the_previous_state(
        cell, attention, encoder):
    model = tiny_model(cell=cell, attention=attention, encoder=encoder, attend_first=True, layers=2)
    batch = batch_for(encoder)
    state = model._encode(batch)
    full, end = model.decoder(batch.tgt_in, state)  # (B, T, V)
    assert end.attention.shape == (*batch.tgt_in.shape, state.memory.size(1))
    steps, stepped = [], state
    for t in range(batch.tgt_in.size(1)):
        logits, stepped = model.step(batch.tgt_in[:, t], stepped)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, dim=1), full)
    # the first step's attention is read with the initial state: change that state, it moves
    first = model.step(batch.tgt_in[:, 0], state)[1].attention
    hidden = tuple(h + 1.0 for h in state.hidden) if cell == "lstm" else state.hidden + 1.0
    assert not torch.allclose(model.step(batch.tgt_in[:, 0], replace(state, hidden=hidden))[1]
                              .attention, first)
    with torch.no_grad():  # a closed gate shuts the context out of the RNN's input
        model.decoder.gate.bias.fill_(-1e4)
        shut = model.step(batch.tgt_in[:, 0], state)[1]
        other = replace(state, memory=state.memory + 1.0)
        torch.testing.assert_close(model.step(batch.tgt_in[:, 0], other)[1].hidden, shut.hidden)
    with pytest.raises(ValueError, match="attend_first"):
        tiny_model(attend_first=True)
    with pytest.raises(ValueError, match="attend_first"):
        tiny_model(attention="general", encoder="rnn", attend_first=True, input_feeding=True)


def test_attention_spread_penalises_memory_positions_left_out_in_training_only():
    model = tiny_model(attention="general", encoder="features", attend_first=True,
                       attention_spread=1.0).train()
    batch = batch_for("features")
    torch.manual_seed(0)
    with_penalty, n = model.loss(batch)
    plain = tiny_model(attention="general", encoder="features", attend_first=True).train()
    torch.manual_seed(0)
    without, _ = plain.loss(batch)
    assert with_penalty > without  # same weights (same seed), same dropout; only the penalty
    from seqgen.nn.model import _spread_penalty
    real = torch.tensor([[True, True, False]])
    even = torch.tensor([[[0.5, 0.5, 1.0], [0.5, 0.5, 0.0], [9.0, 9.0, 9.0]]])  # row 3 is padding
    assert float(_spread_penalty(even, real, None)) == 0.0
    assert float(_spread_penalty(even, real, torch.tensor([[True, True, False]]))) == 0.0
    one_sided = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    assert float(_spread_penalty(one_sided, torch.tensor([[True, True]]), None)) == 1.0  # (1 + 1)/2
    model.eval()
    assert torch.allclose(model.loss(batch)[0], plain.eval().loss(batch)[0])


def test_weight_drop_and_embedding_dropout_act_in_training_only():
    model = tiny_model(layers=2, seed=3)
    dropping = tiny_model(layers=2, seed=3)
    dropping.decoder.config = replace(dropping.decoder.config, weight_drop=0.5, embed_dropout=0.3)
    batch = batch_for("none")
    torch.testing.assert_close(dropping.loss(batch)[0], model.loss(batch)[0])  # eval: same maths
    dropping.train()
    torch.manual_seed(0)
    first = dropping.loss(batch)[0]
    assert not torch.allclose(first, model.train().loss(batch)[0])
    torch.manual_seed(1)
    assert not torch.allclose(dropping.loss(batch)[0], first)  # a fresh mask every batch
    first.backward()
    assert dropping.decoder.rnn.weight_hh_l1.grad is not None  # gradients reach the real weights
    with pytest.raises(ValueError, match="weight_drop"):
        RecurrentDecoder(DecoderConfig(attention="general", input_feeding=True, weight_drop=0.2),
                         vocab_size=5, memory_dim=4)


def test_dot_attention_requires_equal_sizes_and_works_when_equal():
    with pytest.raises(ValueError, match="general"):
        DotAttention(8, 5, general=False)
    attn = DotAttention(4, 4, general=False)
    memory = torch.randn(2, 3, 4)
    context, weights = attn(torch.randn(2, 5, 4), memory, attn.project_keys(memory), None)
    assert context.shape == (2, 5, 4) and weights.shape == (2, 5, 3)


@pytest.mark.parametrize("attention", [AdditiveAttention(6, 4), DotAttention(6, 4)])
def test_attention_ignores_padding(attention):
    memory = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    query = torch.randn(2, 3, 6)
    context, weights = attention(query, memory, attention.project_keys(memory), mask)
    assert torch.all(weights[1, :, 2:] == 0)
    changed = memory.clone()
    changed[1, 2:] = 100.0  # whatever sits under padding must not matter
    context2, _ = attention(query, changed, attention.project_keys(changed), mask)
    assert torch.allclose(context[1], context2[1], atol=1e-6)


def test_loss_ignores_padding_and_counts_eos():
    model = tiny_model()
    tgt_in, tgt_out = target_pair([[4, 5, 6], [7]])
    total, n = model.loss(Batch(tgt_in=tgt_in, tgt_out=tgt_out))
    assert int(n) == 4 + 2  # three symbols + EOS, one symbol + EOS
    alone_in, alone_out = target_pair([[7]])
    short, _ = model.loss(Batch(tgt_in=alone_in, tgt_out=alone_out))
    long_in, long_out = target_pair([[4, 5, 6]])
    long, _ = model.loss(Batch(tgt_in=long_in, tgt_out=long_out))
    assert torch.allclose(total, short + long, atol=1e-5)


def test_one_hot_input_and_weight_tying_options():
    one_hot = RecurrentDecoder(DecoderConfig(one_hot=True, hidden_dim=8), vocab_size=11)
    assert not one_hot.embed.weight.requires_grad and one_hot.embed.weight.shape == (11, 11)
    tied = RecurrentDecoder(DecoderConfig(emb_dim=6, hidden_dim=8, tie_weights=True), vocab_size=11)
    assert tied.output.weight is tied.embed.weight
    with pytest.raises(ValueError, match="attention needs an encoder memory"):
        RecurrentDecoder(DecoderConfig(attention="additive"), vocab_size=11)
    with pytest.raises(ValueError, match="lstm"):
        RecurrentDecoder(DecoderConfig(cell="rnn"), vocab_size=11)  # type: ignore[arg-type]


def test_bridge_initialises_state_from_context():
    model = tiny_model(encoder="rnn", cell="lstm", layers=2)
    batch = batch_for("rnn")
    state = model._encode(batch)
    h, c = state.hidden
    assert h.shape == (2, 2, 8) and c.shape == (2, 2, 8)
    assert float(h.detach().abs().sum()) > 0


@pytest.mark.parametrize("orders", [
    [[0, 0, 1, 1, 2, 2], [1, 0, 3, 2, 5, 4]],  # beams of each input stay together: shared memory
    [[0, 0, 0, 2, 2, 2], [3, 4, 5]],  # the first input finished and left the batch
    [[0, 1, 2, 0, 1, 2], [5, 0, 3]],  # rows of one input apart: each row gets its own copy
])
def test_beams_sharing_their_input_memory_step_like_separate_copies(orders):
    model = tiny_model(encoder="rnn", attention="general", vocab=12)
    src = torch.tensor([[4, 5, 6, 2], [7, 8, 2, 0], [9, 2, 0, 0]])
    first, _ = model.init_state(Batch(src=src, src_lengths=torch.tensor([4, 3, 2])))
    shared, rows = first, torch.arange(3)  # rows: the input each batch row belongs to
    for order in orders:
        shared, rows = shared.index_select(torch.tensor(order)), rows[torch.tensor(order)]
    copied = replace(shared, memory=first.memory[rows], keys=first.keys[rows],
                     mask=first.mask[rows], group=1)
    tokens = torch.arange(4, 4 + len(rows)) % 12
    logits_shared, after = model.step(tokens, shared)
    logits_copied, _ = model.step(tokens, copied)
    assert torch.allclose(logits_shared, logits_copied, atol=1e-6)
    assert after.attention.shape == (len(rows), 1, 4)
    if orders[0] == [0, 0, 1, 1, 2, 2]:
        assert shared.group == 2 and shared.memory.size(0) == 3  # no copy was made


# -- the copy mechanism (pointer-generator) -----------------------------------------------------
def copying_model(seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=6, hidden_dim=5),
        decoder=DecoderConfig(cell="gru", emb_dim=6, hidden_dim=8, attention="general",
                              copy=True))
    return EncoderDecoder(config, src_vocab_size=12, tgt_vocab_size=12).eval()


def copy_batch() -> Batch:
    src = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    tgt_in = torch.tensor([[1, 7, 6], [1, 9, 8]])
    return Batch(src=src, src_lengths=torch.tensor([3, 2]), tgt_in=tgt_in,
                 tgt_out=torch.tensor([[7, 6, 2], [9, 8, 2]]))


def test_copying_gives_log_probabilities_and_stepping_matches_forward():
    model, batch = copying_model(), copy_batch()
    state = model._encode(batch)
    logits, _ = model.decoder(batch.tgt_in, state)  # (B, T, V)
    assert torch.allclose(logits.exp().sum(-1), torch.ones(2, 3), atol=1e-4)
    stepped = state
    for t in range(batch.tgt_in.size(1)):
        step_logits, stepped = model.step(batch.tgt_in[:, t], stepped)
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5)
    # beams share the source with its memory: reordering keeps each row's own source
    beams = state.index_select(torch.tensor([0, 0, 1, 1]))
    assert beams.source.tolist() in ([[5, 6, 7, 0], [8, 9, 0, 0]],
                                     [[5, 6, 7, 0], [5, 6, 7, 0], [8, 9, 0, 0], [8, 9, 0, 0]])


def test_copying_learns_to_copy_unseen_source_tokens_quickly():
    """Reversing short sources: with the pointer path the loss falls to a third in 60 steps."""
    model, batch = copying_model(seed=1).train(), copy_batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss, n = model.loss(batch)
        first = first if first is not None else float(loss.detach() / n)
        optimiser.zero_grad()
        (loss / n).backward()
        optimiser.step()
    assert float(loss.detach() / n) < first / 3


def test_copying_needs_attention_and_one_vocabulary():
    with pytest.raises(ValueError, match="attention"):
        RecurrentDecoder(DecoderConfig(copy=True), vocab_size=10)
    config = ModelConfig(encoder=EncoderConfig(kind="rnn", emb_dim=6, hidden_dim=5),
                         decoder=DecoderConfig(attention="general", copy=True))
    with pytest.raises(ValueError, match="joint vocabulary"):
        EncoderDecoder(config, src_vocab_size=10, tgt_vocab_size=12)
