"""Ensembles: members decode as one stepper (the log of their mean probability), every searcher
works on them unchanged, and ``seqgen export --ensemble`` writes one file that loads back as one."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_captioner, tiny_model
from PIL import Image

from seqgen.cli.main import main
from seqgen.data.batch import Batch
from seqgen.decoding.generation import GenerationConfig
from seqgen.decoding.search import build_searcher, generate
from seqgen.io.checkpoint import CheckpointError, load_checkpoint, load_trainable, make_checkpoint
from seqgen.io.export import export_checkpoint
from seqgen.io.fileio import atomic_save
from seqgen.io.loaded import LoadedModel
from seqgen.nn.ensemble import Ensemble
from seqgen.pipeline import Pipeline
from seqgen.tokenizers import CharTokenizer
from seqgen.vocab import Vocab

VOCAB = Vocab(list("abcdefgh"))


def translator(folder, seed: int, *, vocab: Vocab = VOCAB, config: dict | None = None):
    model = tiny_model(encoder="rnn", attention="additive", vocab=len(vocab), seed=seed)
    path = folder / f"member{seed}.pt"
    atomic_save(make_checkpoint(model, task="translation", tgt_vocab=vocab, src_vocab=vocab,
                                tgt_tokenizer=CharTokenizer(), src_tokenizer=CharTokenizer(),
                                task_config=config or {"data": {"seed": seed}}), path)
    return path


def source(n: int = 3) -> Batch:
    src = torch.tensor([[5, 6, 7, 2], [4, 9, 2, 0], [8, 2, 0, 0]])[:n]
    return Batch(src=src, src_lengths=(src != 0).sum(1))


# ------------------------------------------------------------------------------------------------
def test_a_step_is_the_log_of_the_members_mean_probability():
    a, b = (tiny_model(encoder="rnn", attention="additive", vocab=len(VOCAB), seed=s)
            for s in (0, 1))
    ensemble = Ensemble([a, b])
    state, first = ensemble.init_state(source())
    (sa, fa), (sb, _) = a.init_state(source()), b.init_state(source())
    assert torch.equal(first, fa)
    for tokens in (first, torch.tensor([4, 5, 6]), torch.tensor([7, 3, 4])):
        mixed, state = ensemble.step(tokens, state)
        la, sa = a.step(tokens, sa)
        lb, sb = b.step(tokens, sb)
        expected = ((la.softmax(-1) + lb.softmax(-1)) / 2).log()
        assert torch.allclose(mixed, expected, atol=1e-6)
        assert torch.allclose(mixed.exp().sum(-1), torch.ones(3), atol=1e-5)  # a distribution
        assert state.attention.shape == sa.attention.shape
        assert torch.allclose(state.attention, (sa.attention + sb.attention) / 2)


def test_an_ensemble_of_one_model_twice_searches_like_the_model():
    model = tiny_model(encoder="rnn", attention="general", vocab=len(VOCAB), seed=3)
    twice = Ensemble([model, model])
    for searcher in (build_searcher(max_len=8), build_searcher(beam=3, max_len=8, n_best=2)):
        alone, both = generate(model, source(), searcher), generate(twice, source(), searcher)
        assert [[h.tokens for h in r] for r in both] == [[h.tokens for h in r] for r in alone]
        assert [h.score for r in both for h in r] == pytest.approx(
            [h.score for r in alone for h in r], abs=1e-5)


def test_beam_one_equals_greedy_on_an_ensemble():
    ensemble = Ensemble([tiny_model(encoder="rnn", attention="additive", vocab=len(VOCAB),
                                    seed=s) for s in (4, 5, 6)])
    greedy = generate(ensemble, source(), build_searcher(max_len=8))
    beam = generate(ensemble, source(), build_searcher(beam=1, n_best=1, max_len=8))
    assert [r[0].tokens for r in greedy] == [r[0].tokens for r in beam]


def test_the_loss_is_the_cross_entropy_of_the_mean_distribution():
    a, b = (tiny_model(vocab=len(VOCAB), seed=s) for s in (0, 1))
    tokens = torch.tensor([[1, 4, 5, 6, 2], [1, 7, 2, 0, 0]])
    batch = Batch(tgt_in=tokens[:, :-1], tgt_out=tokens[:, 1:])
    with torch.no_grad():
        total, n = Ensemble([a, b]).loss(batch)
        probs = (a.teacher_forced_logits(batch).softmax(-1)
                 + b.teacher_forced_logits(batch).softmax(-1)) / 2
    real = batch.tgt_out != 0
    expected = -probs.gather(-1, batch.tgt_out[..., None]).squeeze(-1).log()[real].sum()
    assert int(n) == int(real.sum()) and float(total) == pytest.approx(float(expected), rel=1e-5)
    with torch.no_grad():
        single, _ = Ensemble([a, a]).loss(batch)
        assert float(single) == pytest.approx(float(a.loss(batch)[0]), rel=1e-5)


def test_members_must_share_the_output_vocabulary_and_the_kind_of_input():
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([tiny_model(seed=0)])
    with pytest.raises(ValueError, match="one output vocabulary"):
        Ensemble([tiny_model(vocab=8), tiny_model(vocab=9)])
    with pytest.raises(ValueError, match="same inputs"):
        Ensemble([tiny_model(vocab=8, encoder="rnn"), tiny_model(vocab=8)])


# ------------------------------------------------------------------------------------------------
def test_export_writes_one_file_that_loads_back_as_the_ensemble(tmp_path):
    paths = [translator(tmp_path, seed) for seed in (0, 1)]
    out = tmp_path / "ensemble.pt"
    assert main(["export", "--ckpt", str(paths[0]), "--ensemble", str(paths[1]), "--out", str(out),
                 "--beam", "3"]) == 0
    saved = load_checkpoint(out)
    assert saved["version"] == 2 and len(saved["ensemble"]) == 1
    assert saved["task_config"]["decoding"] == {"beam": 3}
    loaded = LoadedModel.from_file(out)
    assert isinstance(loaded.model, Ensemble) and len(loaded.model.members) == 2
    members = [LoadedModel.from_file(p).model for p in paths]
    state, first = loaded.model.init_state(source())
    mixed, _ = loaded.model.step(first, state)
    expected = Ensemble(members).step(first, Ensemble(members).init_state(source())[0])[0]
    assert torch.allclose(mixed, expected, atol=5e-3)  # half-precision weights: close, not equal
    with pytest.raises(CheckpointError, match="cannot train"):
        load_trainable(out, "translation")


def test_an_int8_ensemble_is_int8_in_every_member_and_stays_close(tmp_path):
    paths = [translator(tmp_path, seed) for seed in (0, 1, 2)]
    half, int8 = tmp_path / "half.pt", tmp_path / "int8.pt"
    export_checkpoint(paths[0], half, ensemble=paths[1:])
    export_checkpoint(paths[0], int8, ensemble=paths[1:], int8=True)
    saved = load_checkpoint(int8)
    assert saved["quantized"] == "int8-rows"
    for part in [saved, *saved["ensemble"]]:
        assert any(v.dtype == torch.int8 for v in part["model"].values())
    steps = []
    for path in (half, int8):
        model = LoadedModel.from_file(path).model
        state, first = model.init_state(source())
        steps.append(model.step(first, state)[0])
    assert torch.allclose(steps[0], steps[1], atol=0.05)


def test_members_that_do_not_fit_are_refused_in_one_line(tmp_path, capsys):
    first = translator(tmp_path, 0)
    other_vocab = translator(tmp_path, 1, vocab=Vocab(list("abcdefgi")))
    other_setting = translator(tmp_path, 2, config={"carve": 7})
    out = tmp_path / "e.pt"
    for bad, reason in ((other_vocab, "tgt_vocab, src_vocab"), (other_setting, "'carve'")):
        assert main(["export", "--ckpt", str(first), "--ensemble", str(bad), "--out",
                     str(out)]) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and bad.name in err and reason in err, err
    export_checkpoint(first, out, ensemble=[translator(tmp_path, 3)])
    with pytest.raises(CheckpointError, match="already an ensemble"):
        export_checkpoint(first, tmp_path / "again.pt", ensemble=[out])
    assert main(["export", "--ckpt", str(first), "--ensemble", str(out), "--shortlist-data",
                 str(tmp_path), "--out", str(tmp_path / "x.pt")]) != 0
    assert "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "again.pt").exists()


def test_a_captioning_ensemble_captions_photos_through_the_pipeline(tmp_path):
    members = []
    for seed in (5, 6):
        (tmp_path / str(seed)).mkdir()
        members.append(tiny_captioner(tmp_path / str(seed), seed=seed, decoding={"beam": 2}))
    out = tmp_path / "captioners.pt"
    export_checkpoint(members[0], out, ensemble=members[1:])
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)).save(photo)
    ensemble = Pipeline.load(out)
    assert ensemble.task == "captioning" and isinstance(ensemble.loaded.model, Ensemble)
    config = GenerationConfig(max_len=6)
    result = ensemble.predict([str(photo), str(tmp_path / "missing.png")], config,
                              attention=True)
    assert result[0].error is None and result[0].outputs and result[1].error
    assert result[0].outputs[0].attention is not None
    words = result[0].outputs[0].text.split()
    assert len(words) <= 6 and math.isfinite(result[0].outputs[0].score)
