"""The Hugging Face ``datasets`` paths of the three data modules, offline: ``load_dataset`` is
replaced by a function that serves small in-memory datasets by split name."""
from __future__ import annotations

from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
from PIL import Image  # noqa: E402

from seqgen.tasks.captioning.data import CaptionData, CaptionDataConfig, load_split  # noqa: E402
from seqgen.tasks.headlines.data import HeadlineData, HeadlineDataConfig, load_texts  # noqa: E402
from seqgen.tasks.translation.data import TranslationData, TranslationDataConfig  # noqa: E402
from seqgen.tasks.translation.splits import load_pairs  # noqa: E402


def serve(monkeypatch, name: str, splits: dict[str, "datasets.Dataset"]) -> list[str]:
    """Patches ``datasets.load_dataset`` to serve ``splits`` of ``name``; returns the split log."""
    asked: list[str] = []

    def load_dataset(path, *_, split=None, **__):
        assert path == name, f"asked for dataset {path!r}"
        asked.append(split)
        if split not in splits:
            raise ValueError(f'Unknown split "{split}". Should be one of {list(splits)}.')
        return splits[split]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return asked


# -- headlines ------------------------------------------------------------------------------------
TITLES = ["Stocks rise as oil falls", "Kerry #39;s plan &lt;b&gt;wins&lt;/b&gt;",
          "Team wins the cup", "New chip speeds up phones", "  ", "Rain delays the final"]
DESCRIPTIONS = [f"About item {i}." for i in range(len(TITLES))]


def test_headlines_from_a_title_and_description_dataset(monkeypatch):
    table = datasets.Dataset.from_dict({"label": [1] * 6, "title": TITLES,
                                        "description": DESCRIPTIONS})
    asked = serve(monkeypatch, "x/ag_news", {"train": table, "test": table.select(range(2))})
    config = HeadlineDataConfig(dataset="x/ag_news", val_fraction=0.2)
    texts = load_texts(config, "train")
    assert texts == ["Stocks rise as oil falls", "Kerry's plan wins", "Team wins the cup",
                     "New chip speeds up phones", "Rain delays the final"]  # cleaned, blank dropped
    assert load_texts(config, "test") == texts[:2]
    both = load_texts(HeadlineDataConfig(dataset="x/ag_news", field="title+description"), "train")
    assert both[0] == "Stocks rise as oil falls. About item 0."
    data = HeadlineData(config)
    assert sorted(data.train_texts + data.val_texts) == sorted(texts) and len(data.val_texts) == 1
    assert set("Kerry's") <= set(data.vocab.itos)
    assert asked == ["train", "test", "train", "train"]


def test_headlines_from_a_text_only_dataset_and_a_wrong_one(monkeypatch):
    table = datasets.Dataset.from_dict({"text": ["first line", "", "second line"]})
    serve(monkeypatch, "x/ag_news", {"train": table})
    data = HeadlineData(HeadlineDataConfig(dataset="x/ag_news", level="word", val_fraction=0.0))
    assert data.train_texts == ["first line", "second line"]
    assert {"first", "second", "line"} <= set(data.vocab.itos)

    serve(monkeypatch, "x/ag_news", {"train": datasets.Dataset.from_dict({"body": ["x"]})})
    with pytest.raises(ValueError, match="neither a 'title' nor a 'text' column"):
        load_texts(HeadlineDataConfig(dataset="x/ag_news"), "train")


# -- translation ----------------------------------------------------------------------------------
DE = ["Ein Hund läuft .", "Zwei Männer spielen .", "Eine Frau liest .", "Ein Kind isst ."]
EN = ["A dog runs .", "Two men play .", "A woman reads .", "A child eats ."]


def m30k_splits(layout: str) -> dict[str, "datasets.Dataset"]:
    def table(de: list[str], en: list[str]) -> "datasets.Dataset":
        if layout == "columns":
            return datasets.Dataset.from_dict({"de": de, "en": en})
        return datasets.Dataset.from_dict({"translation": [{"de": d, "en": e}
                                                           for d, e in zip(de, en)]})
    return {"train": table(DE, EN), "validation": table(DE[:2], EN[:2]),
            "test": table(DE[2:], EN[2:])}


@pytest.mark.parametrize("layout", ["columns", "translation"])
def test_translation_from_either_dataset_layout_with_split_names_mapped(monkeypatch, layout):
    asked = serve(monkeypatch, "x/m30k", m30k_splits(layout))
    config = TranslationDataConfig(dataset="x/m30k", tokenizer="word", min_freq=1, batch_size=2)
    data = TranslationData(config)
    assert asked == ["train", "validation"]  # Multi30k's "val" is the hub's "validation"
    assert len(data) == 4 and (data.val_src, data.val_tgt) == (DE[:2], EN[:2])
    assert data.src_vocab.decode(data.train_src_ids[0]) == DE[0].split()
    assert data.tgt_vocab.decode(data.train_tgt_ids[1]) == EN[1].split()
    for split in ("test_2016_flickr", "test"):
        assert load_pairs(config, split) == (DE[2:], EN[2:])
    assert load_pairs(config, "dev") == (DE[:2], EN[:2])
    assert asked[2:] == ["test", "test", "validation"]
    reverse = load_pairs(TranslationDataConfig(dataset="x/m30k", src="en", tgt="de"), "train")
    assert reverse == (EN, DE)


def test_translation_dataset_without_the_language_says_which_columns_it_has(monkeypatch):
    serve(monkeypatch, "x/m30k", m30k_splits("columns"))
    with pytest.raises(ValueError, match=r"no 'fr' column \(columns: de, en\)"):
        load_pairs(TranslationDataConfig(dataset="x/m30k", src="de", tgt="fr"), "train")


# -- captioning -----------------------------------------------------------------------------------
COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}


def caption_table(names: list[str], layout: str) -> "datasets.Dataset":
    images = [Image.new("RGB", (20, 16), COLOURS[n]) for n in names]
    if layout == "numbered":  # jxie/flickr8k style: caption_0 ... caption_4
        columns = {"caption_0": [f"a {n} square" for n in names],
                   "caption_1": [f"the square is {n}" for n in names]}
        kinds = {k: datasets.Value("string") for k in columns}
    else:  # one list column
        columns = {"captions": [[f"a {n} square", f"the square is {n}"] for n in names]}
        kinds = {"captions": datasets.Sequence(datasets.Value("string"))}
    features = datasets.Features({"image": datasets.Image(), **kinds})
    return datasets.Dataset.from_dict({"image": images, **columns}, features=features)


@pytest.mark.parametrize("layout", ["numbered", "list"])
def test_captions_from_a_dataset_are_written_once_to_the_local_layout(monkeypatch, tmp_path, layout):
    asked = serve(monkeypatch, "x/flickr", {
        "train": caption_table(["red", "blue", "green", "red"], layout),
        "validation": caption_table(["blue", "green"], layout)})
    config = CaptionDataConfig(dataset="x/flickr", cache_dir=str(tmp_path), backbone="pixels",
                               image_size=12, min_freq=1, batch_size=4)
    data = CaptionData(config, progress=False)
    assert asked == ["train", "validation"]
    folder = tmp_path / "datasets" / "x--flickr"
    assert (folder / "captions.csv").is_file()
    assert [Path(p).name for p in data.train.paths] == [f"train-{i:06d}.jpg" for i in range(4)]
    assert [Path(p).name for p in data.val.paths] == ["val-000000.jpg", "val-000001.jpg"]
    assert data.train.refs[1] == ["a blue square", "the square is blue"]
    assert data.val.refs[1] == ["a green square", "the square is green"]
    assert len(data) == 8 and data.train_features.shape == (4, 9, 3 * 4 * 4 + 9)
    with Image.open(folder / "images" / "train-000001.jpg") as saved:  # the pixels were kept
        r, g, b = saved.convert("RGB").getpixel((10, 8))
    assert b > 150 and r < 80 and g < 80
    batch = data.make_batch(data.train_plan(0)[0])
    assert batch.features.shape[1:] == (9, 57) and batch.tgt_in.size(0) == batch.features.size(0)

    serve(monkeypatch, "x/flickr", {})  # the local copy is used from now on: no download
    again = load_split(config, "train")
    assert again.paths == data.train.paths and again.refs == data.train.refs
