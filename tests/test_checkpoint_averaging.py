"""Checkpoint averaging: the element-wise mean of different checkpoints' float weights; other
tensors are kept as they are."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_model

from seqgen.io.checkpoint import load_checkpoint, make_checkpoint
from seqgen.io.export import export_checkpoint
from seqgen.io.fileio import atomic_save
from seqgen.tokenizers import CharTokenizer
from seqgen.training.runfiles import average_weights
from seqgen.vocab import Vocab

VOCAB = Vocab(list("abcdefgh"))


def save(folder: Path, seed: int, *, extra: dict[str, torch.Tensor] | None = None) -> Path:
    model = tiny_model(encoder="rnn", attention="additive", vocab=len(VOCAB), seed=seed)
    ckpt = make_checkpoint(model, task="translation", tgt_vocab=VOCAB, src_vocab=VOCAB,
                           tgt_tokenizer=CharTokenizer(), src_tokenizer=CharTokenizer())
    ckpt["model"].update(extra or {})
    path = folder / f"seed{seed}.pt"
    atomic_save(ckpt, path)
    return path


def test_the_average_of_two_different_checkpoints_is_their_element_wise_mean(tmp_path):
    a, b = save(tmp_path, 0), save(tmp_path, 1)
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    avg = average_weights([a, b])
    assert avg.keys() == wa.keys()
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # the two really differ
    for name in wa:
        assert avg[name].dtype == torch.float32
        assert torch.equal(avg[name], (wa[name] + wb[name]) / 2), name
    swapped = average_weights([b, a])
    assert all(torch.equal(avg[k], v) for k, v in swapped.items())  # the order does not matter
    model = tiny_model(encoder="rnn", attention="additive", vocab=len(VOCAB), seed=7)
    model.load_state_dict(avg)  # loads into the same architecture


def test_three_checkpoints_and_half_precision_ones_average_in_float32(tmp_path):
    paths = [save(tmp_path, seed) for seed in (0, 1, 2)]
    weights = [load_checkpoint(p)["model"] for p in paths]
    avg = average_weights(paths)
    for name in weights[0]:
        assert torch.allclose(avg[name], sum(w[name] for w in weights) / 3, atol=1e-7), name
    halves = []
    for p in paths[:2]:
        halves.append(tmp_path / f"half-{p.name}")
        export_checkpoint(p, halves[-1])
    avg_half = average_weights(halves)
    for name in weights[0]:
        expected = (weights[0][name].half().float() + weights[1][name].half().float()) / 2
        assert avg_half[name].dtype == torch.float32 and torch.equal(avg_half[name], expected)


def test_non_float_tensors_are_kept_not_averaged(tmp_path):
    steps = torch.tensor(7, dtype=torch.long)
    flags = torch.tensor([True, False, True])
    a = save(tmp_path, 0, extra={"bn.num_batches_tracked": steps, "mask": flags})
    b = save(tmp_path, 1, extra={"bn.num_batches_tracked": steps.clone(), "mask": flags.clone()})
    avg = average_weights([a, b])
    assert avg["bn.num_batches_tracked"].dtype == torch.long
    assert torch.equal(avg["bn.num_batches_tracked"], steps)
    assert avg["mask"].dtype == torch.bool and torch.equal(avg["mask"], flags)


def test_averaging_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        average_weights([])
