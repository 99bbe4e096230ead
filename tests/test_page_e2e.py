"""The page of ``seqgen serve`` driven in a real headless Chromium, on tiny untrained models: one
panel per served model, titled from ``/api/models``; a prompt continued with streamed text; two
lines translated with their attention heatmap drawn; a phone-sized photo (4000x3000, EXIF
Orientation=6) downsized and turned upright in the browser before upload and captioned, beside a
small photo, while a 0-byte .jpg and an .svg each show their own error. Skips cleanly without
Chromium, chromedriver or selenium.

    SEQGEN_SCREENSHOTS=1 pytest tests/test_page_e2e.py   # also screenshots (tiny models' gibberish)
    python tests/test_page_e2e.py                        # the bundled models: the committed
                                                         # assets/screenshots/serve-*.png
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
from conftest import LiveServer, tiny_captioner, tiny_summarizer
from page_driver import CHROMIUM, DRIVER, drive_page

pytestmark = pytest.mark.slow  # a real browser against a live server

# set by .ci/run when it could not install the browser, so the skip says so in CI's summary
MISSING = os.environ.get("SEQGEN_BROWSER_MISSING") or "Chromium or chromedriver not installed"
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "assets" / "screenshots"


def skip_unless_browser() -> None:
    """Skips the test where the browser or its driver is missing."""
    if not (CHROMIUM and DRIVER):
        pytest.skip(MISSING)
    pytest.importorskip("selenium")
    pytest.importorskip("uvicorn")


# -- the model, watched -------------------------------------------------------------------------
def image_sizes_seen(app) -> list[tuple[int, int]]:
    """(width, height) of every image the image model is given, appended as it is given them;
    its captions are made at least two words long (an untrained model may stop at once)."""
    from dataclasses import replace

    from PIL import Image

    seen: list[tuple[int, int]] = []
    for served in app.state.models.values():
        if served.pipe.adapter.inputs == "image":
            predict = served.pipe.predict

            def spy(items, config, _predict=predict, **kwargs):
                for path in items:
                    with Image.open(path) as image:
                        seen.append(image.size)
                return _predict(items, replace(config, min_length=2), **kwargs)

            served.pipe.predict = spy  # the queue calls pipe.predict at each batch
    return seen


# -- the photos ----------------------------------------------------------------------------------
def phone_photo(path: Path) -> Path:
    """A 4000x3000 noisy JPEG (several MB) stored sideways: EXIF Orientation=6 says to turn it
    90 degrees clockwise, so it is shown 3000 wide and 4000 tall."""
    from PIL import Image, ImageDraw

    size = (4000, 3000)
    image = Image.merge("RGB", [Image.linear_gradient("L").resize(size),
                                Image.effect_noise(size, 40), Image.new("L", size, 120)])
    ImageDraw.Draw(image).ellipse((1200, 700, 2800, 2300), fill=(230, 60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, quality=90, exif=exif.tobytes())
    return path


def small_photo(path: Path) -> Path:
    """A real photo when ../shared/data is there, else a drawn one."""
    shared = ROOT.parent / "shared" / "data" / "flickr8k" / "images"
    photos = sorted(shared.glob("*.jpg"))[:1] if shared.is_dir() else []
    if photos:
        return photos[0]
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 240), (90, 140, 200))
    ImageDraw.Draw(image).ellipse((100, 60, 220, 180), fill=(200, 60, 40))
    image.save(path)
    return path


def bad_files(folder: Path) -> list[Path]:
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" '
                                        'height="9"><rect width="9" height="9"/></svg>')
    return [folder / "empty.jpg", folder / "drawing.svg"]


# ------------------------------------------------------------------------------------------------
def test_the_page_draws_a_panel_per_model_and_runs_each_in_a_real_browser(
        tiny_checkpoints, tmp_path):
    skip_unless_browser()
    from seqgen.serve import create_app

    app = create_app({"headlines": tiny_checkpoints["headlines"],
                      "translation": tiny_checkpoints["translation"],
                      "captioning": tiny_captioner(tmp_path, seed=3),
                      "summarization": tiny_summarizer(tmp_path)},
                     max_upload_mb=3)  # the phone photo itself would be refused
    phone = phone_photo(tmp_path / "phone.jpg")
    assert phone.stat().st_size > 3 * 1024 * 1024
    photos = [phone, small_photo(tmp_path / "small.png"), *bad_files(tmp_path)]
    seen = image_sizes_seen(app)
    out = SCREENSHOTS if os.environ.get("SEQGEN_SCREENSHOTS") == "1" else None
    with LiveServer(app) as server:
        shown = drive_page(server.url + "/", photos, out)

    models = shown["models"]
    assert len(shown["titles"]) == len(models) == 4
    for model, title in zip(models, shown["titles"]):
        assert title.startswith(model["panel"]["title"])
    assert "(de \u2192 en)" in " ".join(shown["titles"])
    assert not shown["console"], shown["console"]  # no script errors, no failed requests
    assert shown["prompt"].startswith("Oil prices ")
    assert set(shown["texts"]) == {"translation", "summarization"}  # both text panels ran
    for task, texts in shown["texts"].items():
        assert len(texts) == 2 and all(texts), texts
        assert shown["inked"][task] > 500  # the heatmap canvas was drawn on

    cards = {c["name"]: c for c in shown["cards"]}
    assert list(cards) == [p.name for p in photos]
    for good in photos[:2]:
        assert len(cards[good.name]["caption"].split()) >= 2 and not cards[good.name]["error"]
        assert cards[good.name]["thumbnail"]
    for bad in photos[2:]:
        assert cards[bad.name]["error"].startswith(f"{bad.name}: not an image file")
        assert not cards[bad.name]["caption"]
    assert shown["overlay"] > 0  # a clicked word's attention is laid over its photo
    phone_seen = seen[0]  # uploaded in order: the phone photo first, upright and downsized
    assert max(phone_seen) <= 1024 and phone_seen[0] < phone_seen[1], seen


def main() -> int:
    """Screenshots of the page with the bundled models."""
    parser = argparse.ArgumentParser(description="screenshots of the page, bundled models")
    parser.add_argument("--out", default=str(SCREENSHOTS), help="folder for the screenshots")
    args = parser.parse_args()
    if not (CHROMIUM and DRIVER):
        print("error: needs Debian's chromium and chromium-driver", file=sys.stderr)
        return 2
    from seqgen.pipeline import bundled_model
    from seqgen.serve import create_app
    from seqgen.tasks import registry

    app = create_app({t.name: bundled_model(t.name) for t in registry.tasks()
                      if t.adapter.bundled and bundled_model(t.name).is_file()})
    folder = Path(args.out)
    photos = sorted((ROOT.parent / "shared" / "data" / "flickr8k" / "images").glob("*.jpg"))[:2]
    with LiveServer(app) as server:
        shown = drive_page(server.url + "/", photos or [small_photo(folder / "drawn.png")],
                           folder)
    for key in ("titles", "prompt", "texts", "cards", "overlay", "console"):
        print(f"{key}: {shown[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
