"""Caption files as users have them (Karpathy split JSON, COCO captions JSON), told apart by
content, and images missing from the folder: tiny images written with PIL."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seqgen.data.captions import read_caption_file
from seqgen.tasks.captioning.data import CaptionDataConfig, load_split

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["a red square", "a blue circle", "a green ring", "two dogs run", "a cat sleeps",
         "a man rides", "a girl jumps", "a boy swims"]


def write_images(folder: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = np.full((24, 24, 3), 20 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


def karpathy(folder: Path, *, filepath: str = "") -> Path:
    splits = ["train", "train", "restval", "train", "val", "val", "test", "train"]
    images = [{"filename": f"{i}.jpg", "split": s, "sentences": [
        {"raw": f"{WORDS[i]} here", "tokens": []}, {"raw": WORDS[i], "tokens": []}],
        **({"filepath": filepath} if filepath else {})} for i, s in enumerate(splits)]
    path = folder / "dataset_flickr8k.json"
    path.write_text(json.dumps({"dataset": "flickr8k", "images": images}))
    return path


def coco(folder: Path, split: str, ids: range) -> Path:
    images = [{"id": 100 + i, "file_name": f"{split}/{i}.jpg"} for i in ids]
    notes = [{"image_id": 100 + i, "id": n, "caption": f"{WORDS[i]} {'again' if n % 2 else ''}"}
             for n, i in enumerate([*ids, *ids])]
    path = folder / f"captions_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": notes}))
    return path


# ------------------------------------------------------------------------------------------------
def test_karpathy_json_gives_its_splits_with_restval_in_train(tmp_path):
    path = karpathy(tmp_path, filepath="imgs")
    captions, splits = read_caption_file(path)
    assert captions["imgs/2.jpg"] == [f"{WORDS[2]} here", WORDS[2]]
    assert splits["imgs/2.jpg"] == "train" and splits["imgs/6.jpg"] == "test"
    write_images(tmp_path / "images", [f"imgs/{i}.jpg" for i in range(8)])
    config = CaptionDataConfig(captions=str(path), images=str(tmp_path / "images"))
    train, val = load_split(config, "train"), load_split(config, "val")
    assert [Path(p).name for p in train.paths] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "7.jpg"]
    assert [Path(p).name for p in val.paths] == ["4.jpg", "5.jpg"]


def test_coco_json_reads_captions_by_image_id_and_validation_from_its_own_file(tmp_path):
    train_file, val_file = coco(tmp_path, "train2014", range(6)), coco(tmp_path, "val2014",
                                                                      range(6, 8))
    captions, splits = read_caption_file(train_file)
    assert splits is None and len(captions["train2014/0.jpg"]) == 2
    write_images(tmp_path / "images", [f"train2014/{i}.jpg" for i in range(6)]
                 + [f"val2014/{i}.jpg" for i in range(6, 8)])
    config = CaptionDataConfig(captions=str(train_file), val_captions=str(val_file),
                               images=str(tmp_path / "images"))
    assert len(load_split(config, "train").paths) == 6
    assert [Path(p).name for p in load_split(config, "val").paths] == ["6.jpg", "7.jpg"]
    carved = CaptionDataConfig(captions=str(train_file), images=str(tmp_path / "images"))
    assert len(load_split(carved, "train").paths) == 5 and len(load_split(carved, "val").paths) == 1


def test_missing_images_are_counted_named_and_stop_the_run_past_the_share(tmp_path, caplog):
    path = karpathy(tmp_path)
    write_images(tmp_path / "images", [f"{i}.jpg" for i in range(8) if i != 3])
    config = CaptionDataConfig(captions=str(path), images=str(tmp_path / "images"))
    train = load_split(config, "train")
    assert len(train.paths) == 4 and "1 of 5 captioned images" in caplog.text
    assert "3.jpg" in caplog.text
    with pytest.raises(ValueError, match="4 of 5 captioned images are not in") as err:
        write_images(tmp_path / "few", ["0.jpg"])
        load_split(CaptionDataConfig(captions=str(path), images=str(tmp_path / "few")), "train")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not a Karpathy or COCO"):
        (tmp_path / "bad.json").write_text(json.dumps({"images": [{"name": "x"}]}))
        read_caption_file(tmp_path / "bad.json")


@pytest.mark.parametrize("layout", ["karpathy", "coco"])
@pytest.mark.slow  # the recipe in a subprocess
def test_a_caption_json_trains_a_captioner_with_one_command(tmp_path, layout):
    if layout == "karpathy":
        flags = ["--captions", str(karpathy(tmp_path))]
        write_images(tmp_path / "images", [f"{i}.jpg" for i in range(8)])
    else:
        flags = ["--captions", str(coco(tmp_path, "train2014", range(6))),
                 "--val-captions", str(coco(tmp_path, "val2014", range(6, 8)))]
        write_images(tmp_path / "images", [f"train2014/{i}.jpg" for i in range(6)]
                     + [f"val2014/{i}.jpg" for i in range(6, 8)])
    result = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "captioning.py"), *flags, "--images",
         str(tmp_path / "images"), "--backbone", "pixels", "--data.image_size=48",
         "--data.min_freq=1", "--dry-run", "--quiet", "--run-dir", str(tmp_path / "run"),
         "--model.decoder.hidden_dim=16", "--model.decoder.emb_dim=8",
         "--model.encoder.hidden_dim=8"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "model.pt").is_file()
