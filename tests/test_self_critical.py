"""Self-critical training: the objective, its photo-level data and its CIDEr-D reward."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_ramp_flickr

from seqgen.data.batch import Batch
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.encoders import EncoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.tasks.captioning.cider import CiderD, cider_d
from seqgen.tasks.captioning.data import CaptionData, CaptionDataConfig
from seqgen.tasks.captioning.inference import cider_reward
from seqgen.tasks.captioning.photos import CaptionImages
from seqgen.training.self_critical import SelfCritical, SelfCriticalConfig

FAVOURITE = 7  # the token the scripted reward likes


def tiny_captioner() -> EncoderDecoder:
    torch.manual_seed(0)
    return EncoderDecoder(ModelConfig(
        encoder=EncoderConfig(kind="features", hidden_dim=16, feature_dim=8),
        decoder=DecoderConfig(cell="gru", emb_dim=8, hidden_dim=16, attention="general",
                              bridge=True)), src_vocab_size=12, tgt_vocab_size=12)


def photos(n: int = 6) -> Batch:
    return Batch(features=torch.randn(n, 4, 8, generator=torch.Generator().manual_seed(1)),
                 ids=torch.arange(n))


def share_of_favourite(ids, samples) -> list[float]:
    return [sum(t == FAVOURITE for t in s) / max(len(s), 1) for s in samples]


def test_the_policy_gradient_raises_the_reward():
    model = tiny_captioner()
    objective = SelfCritical(share_of_favourite, SelfCriticalConfig(samples=4, max_len=6))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    rewards = []
    for _ in range(40):
        total, n_tokens = objective(model, photos())
        optimizer.zero_grad()
        (total / n_tokens).backward()
        optimizer.step()
        rewards.append(objective.last_reward)
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.3, rewards


def test_samples_that_score_alike_teach_nothing():
    model = tiny_captioner()
    objective = SelfCritical(lambda ids, samples: [1.0] * len(samples),
                             SelfCriticalConfig(samples=3, max_len=5))
    total, n_tokens = objective(model, photos())
    total.backward()
    assert float(total.detach()) == 0.0 and int(n_tokens) > 0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_bad_setups_are_named():
    with pytest.raises(ValueError, match="at least 2 samples"):
        SelfCritical(share_of_favourite, SelfCriticalConfig(samples=1))
    with pytest.raises(ValueError, match="ids"):
        SelfCritical(share_of_favourite)(tiny_captioner(), Batch(features=torch.randn(2, 4, 8)))


def test_sequence_nll_adds_up_to_the_unsmoothed_loss():
    model = tiny_captioner().eval()
    batch = Batch(features=torch.randn(3, 4, 8), tgt_in=torch.tensor([[1, 5, 6], [1, 7, 0],
                                                                       [1, 0, 0]]),
                  tgt_out=torch.tensor([[5, 6, 2], [7, 2, 0], [2, 0, 0]]))
    with torch.no_grad():
        nll, lengths = model(batch, per_sequence=True)
        total, n_tokens = model.loss(batch)
    assert lengths.tolist() == [3, 2, 1] and int(n_tokens) == 6
    assert float(nll.sum()) == pytest.approx(float(total), rel=1e-5)


def test_tokens_the_sampler_never_emits_leave_the_softmax():
    model = tiny_captioner().eval()
    batch = Batch(features=torch.randn(2, 4, 8), tgt_in=torch.tensor([[1, 5], [1, 7]]),
                  tgt_out=torch.tensor([[5, 2], [7, 2]]))
    with torch.no_grad():
        full, _ = model(batch, per_sequence=True)
        masked, _ = model(batch, per_sequence=True, banned=[0, 1, 3])
        logits, _ = model.decoder(batch.tgt_in, model._encode(batch))
    banned = torch.zeros(12, dtype=torch.bool)
    banned[[0, 1, 3]] = True
    log_probs = logits.masked_fill(banned, float("-inf")).log_softmax(-1)
    expected = -log_probs.gather(-1, batch.tgt_out[..., None]).squeeze(-1)
    assert torch.allclose(masked, expected.sum(1), atol=1e-5)
    assert (masked < full).all()


def test_cider_scores_one_caption_as_the_corpus_score_averages_them():
    refs = [["a dog runs on grass", "a brown dog is running"], ["two men stand outside"],
            ["a child plays with a ball", "a kid with a red ball"]]
    hyps = ["a dog runs", "two men are outside", "a child with a ball"]
    scorer = CiderD(refs)
    assert np.mean([scorer.score(h, i) for i, h in enumerate(hyps)]) == pytest.approx(
        cider_d(hyps, refs))
    assert scorer.score(refs[0][0], 0) > scorer.score("two men stand outside", 0)


@pytest.fixture
def mirrored_data(tmp_path) -> CaptionData:
    folder = write_ramp_flickr(tmp_path / "flickr", [
        [f"A dog on the left of tree {i} {'runs' if n else 'sits'} ." for n in range(2)]
        for i in range(6)], n_train=5)
    return CaptionData(CaptionDataConfig(data_dir=str(folder), backbone="pixels", image_size=48,
                                         cache_dir=str(tmp_path / "cache"), batch_size=4,
                                         mirror=True, min_freq=1))


def test_photo_rows_cover_every_photo_and_mirror_once_per_epoch(mirrored_data):
    images = CaptionImages(mirrored_data, batch_size=4)
    assert len(images) == 10  # five photos, then their mirror images
    plan = images.train_plan(0)
    assert sorted(i for batch in plan for i in batch) == list(range(10))
    assert plan != images.train_plan(1) and plan == images.train_plan(0)
    batch = images.make_batch([1, 6])
    assert batch.ids.tolist() == [1, 6]
    assert torch.equal(batch.features[1], mirrored_data.train_features[6].float())
    assert images.references[1] == ["a dog on the left of tree 1 sits .",
                                     "a dog on the left of tree 1 runs ."]
    assert images.references[6] == [r.replace("left", "right") for r in images.references[1]]
    assert batch.tgt_out is not None and len(list(images.val_batches())) == 1


def test_the_cider_reward_prefers_the_photos_own_caption(mirrored_data):
    images = CaptionImages(mirrored_data, batch_size=4)
    reward = cider_reward(images, mirrored_data.vocab)
    own = mirrored_data.vocab.encode("a dog on the left of tree 1 sits".split())
    mirrored = mirrored_data.vocab.encode("a dog on the right of tree 1 sits".split())
    scores = reward([1, 1, 6, 6], [own, mirrored, own, mirrored])
    assert scores[0] > scores[1] and scores[3] > scores[2]


def test_a_caption_other_photos_also_get_loses_the_shared_penalty(mirrored_data):
    images = CaptionImages(mirrored_data, batch_size=4)
    plain = cider_reward(images, mirrored_data.vocab)
    varied = cider_reward(images, mirrored_data.vocab, shared_penalty=0.25)
    own = mirrored_data.vocab.encode("a dog on the left of tree 1 sits".split())
    other = mirrored_data.vocab.encode("a dog on the right of tree 1 sits".split())
    ids, samples = [1, 1, 6, 6], [own, other, own, own]  # photo 6 also says photo 1's caption
    penalised = [p - v for p, v in zip(plain(ids, samples), varied(ids, samples))]
    assert penalised == pytest.approx([0.25, 0.0, 0.25, 0.25])  # repeats within a photo: free
    # later batches remember: photo 6 now says what photo 1 said a batch ago
    assert plain([6], [other])[0] - varied([6], [other])[0] == pytest.approx(0.25)
    forgetful = cider_reward(images, mirrored_data.vocab, shared_penalty=0.25, memory=1)
    forgetful([1], [other])
    forgetful([1], [own])  # pushes photo 1's "other" out of a one-sample memory
    assert plain([6], [other])[0] - forgetful([6], [other])[0] == pytest.approx(0.0)
