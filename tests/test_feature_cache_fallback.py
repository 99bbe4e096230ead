"""A feature cache that cannot be written (read-only home, full disk) costs its speed, never the
scores: features are computed, used and not stored, with one warning."""
from __future__ import annotations

import logging

from PIL import Image

from seqgen.nn.backbones import build_backbone
from seqgen.tasks.captioning.features import FeatureCache


def test_an_unwritable_cache_warns_once_and_still_gives_features(tmp_path, caplog):
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"{i}.png")
        Image.new("RGB", (50, 40), (40 * i, 90, 200)).save(photos[-1])
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    cache = FeatureCache(blocked / "cache", build_backbone("pixels", image_size=48))
    with caplog.at_level(logging.WARNING, logger="seqgen.tasks.captioning.features"):
        features, kept, errors = cache.stack(photos)
    assert features.shape[0] == 3 and not errors and cache.unwritable
    assert sum("cannot be written" in r.message for r in caplog.records) == 1
    fresh = FeatureCache(tmp_path / "ok", build_backbone("pixels", image_size=48))
    assert (fresh.stack(photos)[0] == features).all()  # the same features as a working cache
