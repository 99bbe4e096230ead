"""The bridge from the encoder's summary to the decoder's first state: a different source (sentence
or image features) must start the decoder elsewhere; without a bridge the state starts at zeros."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from seqgen.data.batch import Batch, pad
from seqgen.nn.model import EncoderDecoder
from seqgen.vocab import BOS


def sentences(*ids: list[int]) -> Batch:
    src, lengths = pad(list(ids))
    return Batch(src=src, src_lengths=lengths)


def images(seed: int) -> Batch:
    return Batch(features=torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(seed)))


def build(cell: str, encoder: str, *, bridge: bool = True, attention: str = "none", layers: int = 1):
    model = tiny_model(cell=cell, encoder=encoder, attention=attention, layers=layers, seed=4)
    if not bridge:  # the same model with the bridge switched off
        config = model.config
        config.decoder.bridge = False
        torch.manual_seed(4)
        model = EncoderDecoder(config, src_vocab_size=12, tgt_vocab_size=12).eval()
    return model


def hidden_parts(state) -> list[torch.Tensor]:
    return list(state.hidden) if isinstance(state.hidden, tuple) else [state.hidden]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("encoder", ["rnn", "features"])
def test_with_a_bridge_a_different_source_gives_a_different_first_state(cell, encoder):
    model = build(cell, encoder)
    assert model.decoder.bridge is not None
    a, b = ((sentences([5, 6, 7], [8, 9]), sentences([9, 4, 10], [8, 9])) if encoder == "rnn"
            else (images(0), images(1)))
    with torch.no_grad():
        first, second, again = model._encode(a), model._encode(b), model._encode(a)
    for x, y, z in zip(hidden_parts(first), hidden_parts(second), hidden_parts(again)):
        assert torch.equal(x, z)  # deterministic
        if encoder == "rnn":  # only sentence 0 changed: its state moves, sentence 1's does not
            assert not torch.allclose(x[:, 0], y[:, 0]) and torch.allclose(x[:, 1], y[:, 1])
        else:
            assert not torch.allclose(x, y)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_bridge_is_tanh_of_a_linear_map_of_the_context_split_into_layers(cell):
    model = build(cell, "rnn", layers=2)
    batch = sentences([5, 6, 7], [8])
    with torch.no_grad():
        context = model.encoder(batch).context  # (B, C)
        flat = torch.tanh(model.decoder.bridge(context)).view(2, -1, 2, 8)  # (B, n, L, H)
        parts = hidden_parts(model._encode(batch))
    assert len(parts) == (2 if cell == "lstm" else 1)
    for n, part in enumerate(parts):
        assert part.shape == (2, 2, 8)  # (L, B, H)
        assert torch.allclose(part, flat[:, n].transpose(0, 1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_without_a_bridge_the_first_state_is_zeros_whatever_the_source(cell):
    model = build(cell, "rnn", bridge=False)
    assert model.decoder.bridge is None
    with torch.no_grad():
        for batch in (sentences([5, 6, 7], [8, 9]), sentences([10], [4, 4, 4, 4])):
            for part in hidden_parts(model._encode(batch)):
                assert part.shape == (1, 2, 8) and not part.any()


def first_logits(model, batch: Batch) -> torch.Tensor:
    with torch.no_grad():
        state = model._encode(batch)
        return model.step(torch.full((batch.size,), BOS), state)[0]


def test_without_a_bridge_attention_is_the_only_way_the_source_reaches_the_decoder():
    a, b = sentences([5, 6, 7], [8, 9]), sentences([9, 4, 10], [8, 9])
    attending = build("gru", "rnn", bridge=False, attention="general")
    assert not torch.allclose(first_logits(attending, a)[0], first_logits(attending, b)[0])
    # no bridge and no attention: the encoder runs but nothing of it reaches the output
    blind = build("gru", "rnn", bridge=False)
    assert torch.equal(first_logits(blind, a), first_logits(blind, b))
    bridged = build("gru", "rnn")
    assert not torch.allclose(first_logits(bridged, a)[0], first_logits(bridged, b)[0])
