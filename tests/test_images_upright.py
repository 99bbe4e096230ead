"""Photos stored sideways with an EXIF Orientation are turned upright wherever images enter
(:func:`seqgen.tasks.captioning.features.load_image`), and the feature cache never serves a sideways entry."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from seqgen.nn.backbones import build_backbone
from seqgen.tasks.captioning.features import FeatureCache, load_image

ROTATE_CW = 6  # "rotate 90 degrees clockwise to show": the stored pixels are turned the other way


def upright_photo() -> Image.Image:
    """48 x 32, different in every corner, so any turn or mirroring shows."""
    y, x = np.mgrid[0:32, 0:48]
    pixels = np.stack([x * 5, y * 7, (x + 2 * y) % 255], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


def save(image: Image.Image, path, *, orientation: int | None = None, **options):
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), **options)
    return path


def sideways(tmp_path, suffix: str, **options):
    """The upright photo and the same photo stored turned, with Orientation=6."""
    photo = upright_photo()
    straight = save(photo, tmp_path / f"upright.{suffix}", **options)
    turned = save(photo.transpose(Image.Transpose.ROTATE_90), tmp_path / f"turned.{suffix}",
                  orientation=ROTATE_CW, **options)
    with Image.open(turned) as raw:
        assert raw.size == (32, 48) and raw.getexif()[0x0112] == ROTATE_CW
    return straight, turned


def test_a_sideways_png_loads_exactly_as_the_upright_one(tmp_path):
    straight, turned = sideways(tmp_path, "png")
    a, b = load_image(straight), load_image(turned)
    assert a.size == b.size == (48, 32)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_sideways_jpeg_gives_the_same_tensor_and_features(tmp_path):
    straight, turned = sideways(tmp_path, "jpg", quality=95)
    backbone = build_backbone("pixels", image_size=48)
    transform = backbone.transform()
    a, b = transform(load_image(straight)), transform(load_image(turned))
    assert a.shape == b.shape
    assert (a - b).abs().mean() < 0.05  # JPEG noise only; a sideways load differs by ~0.5
    with Image.open(turned) as raw:  # what the old loading saw: the stored, sideways pixels
        wrong = transform(raw.convert("RGB").resize((48, 32)))
    assert (a - wrong).abs().mean() > 0.2
    grids, errors = FeatureCache(tmp_path / "cache", backbone).get([straight, turned])
    assert not errors
    assert (grids[str(straight)].float() - grids[str(turned)].float()).abs().mean() < 0.05


def test_cache_entries_of_oriented_files_are_new_and_plain_files_keep_theirs(tmp_path):
    straight, turned = sideways(tmp_path, "png")
    cache = FeatureCache(tmp_path / "cache", build_backbone("pixels", image_size=48))
    plain_digest = hashlib.sha1(straight.read_bytes()).hexdigest()
    assert cache.key(straight).stem == plain_digest  # unchanged: old entries stay valid
    old_digest = hashlib.sha1(turned.read_bytes()).hexdigest()
    assert cache.key(turned).stem != old_digest  # a pre-fix (sideways) entry is a miss
    first = cache.get([turned])[0][str(turned)]
    again = FeatureCache(tmp_path / "cache", cache.backbone)
    assert torch.equal(again.get([turned])[0][str(turned)], first) and again.hits == 1


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 7, 8])
def test_every_orientation_is_undone(tmp_path, orientation):
    photo = upright_photo()
    stored = {1: photo, 2: photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
              3: photo.transpose(Image.Transpose.ROTATE_180),
              4: photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
              5: photo.transpose(Image.Transpose.TRANSPOSE),
              7: photo.transpose(Image.Transpose.TRANSVERSE),
              8: photo.transpose(Image.Transpose.ROTATE_270)}[orientation]
    path = save(stored, tmp_path / "p.png", orientation=orientation)
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(photo))


def test_a_damaged_orientation_value_is_ignored(tmp_path):
    path = save(upright_photo(), tmp_path / "odd.png", orientation=42)
    assert load_image(path).size == (48, 32)
