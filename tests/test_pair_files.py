"""Pair files in the formats users have (TSV / CSV / JSONL), carving held-out rows, the token
cache, and the headlines text file formats: tiny files written here, no trained models."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqgen.data.carve import carve
from seqgen.data.pairs import read_pairs
from seqgen.data.records import aligned
from seqgen.tasks.headlines.data import HeadlineData, HeadlineDataConfig
from seqgen.tasks.translation.data import TranslationData, TranslationDataConfig

ROOT = Path(__file__).resolve().parents[1]
EN = ["Go.", "Run!", "Who?", "Wow!", "Fire!", "Help!", "Jump.", "Stop!", "Wait!", "Hello!",
      "I try.", "I won!", "Oh no!", "Attack!", "Cheers!", "Get up.", "Got it!", "Hop in.",
      "Hug me.", "I fell.", "I know.", "I left.", "I lied.", "I lost.", "I'm 19.", "I'm OK."]
FR = ["Va !", "Cours !", "Qui ?", "Ça alors !", "Au feu !", "À l'aide !", "Saute.", "Stop !",
      "Attends !", "Bonjour !", "J'essaye.", "J'ai gagné !", "Oh non !", "Attaque !", "Santé !",
      "Lève-toi.", "Compris !", "Monte.", "Serre-moi.", "Je suis tombé.", "Je sais.",
      "Je suis parti.", "J'ai menti.", "J'ai perdu.", "J'ai 19 ans.", "Je vais bien."]


def write_tutorial_tsv(path: Path, *, gz: bool = False) -> Path:
    """The PyTorch seq2seq tutorial's Tatoeba file: English<TAB>French<TAB>attribution."""
    text = "".join(f"{e}\t{f}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}\n"
                   for i, (e, f) in enumerate(zip(EN, FR)))
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def config(tmp_path: Path, **kw) -> TranslationDataConfig:
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return TranslationDataConfig(tokenizer="word", min_freq=1, val_fraction=0.1,
                                 test_fraction=0.1, **kw)


# ------------------------------------------------------------------------------------------------
def test_tsv_csv_and_jsonl_give_the_same_pairs_by_index_or_name(tmp_path):
    tsv = write_tutorial_tsv(tmp_path / "fra.txt.gz", gz=True)
    with (tmp_path / "p.csv").open("w", encoding="utf-8") as handle:
        handle.write("eng,fra\n" + "".join(f'"{e}","{f}"\n' for e, f in zip(EN, FR)))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"en": e, "fr": f}) + "\n"
                                              for e, f in zip(EN, FR)), encoding="utf-8")
    expected = list(zip(FR, EN))
    assert list(read_pairs(tsv, src_field="1", tgt_field="0")) == expected
    assert list(read_pairs(tmp_path / "p.csv", src_field="fra", tgt_field="eng")) == expected
    assert list(read_pairs(tmp_path / "p.csv", src_field="1", tgt_field="0")) == expected
    assert list(read_pairs(tmp_path / "p.jsonl", src_field="fr", tgt_field="en")) == expected
    with pytest.raises(ValueError, match="no column 'de'"):
        list(read_pairs(tmp_path / "p.csv", src_field="de", tgt_field="eng"))
    with pytest.raises(ValueError, match="0-based index"):
        list(read_pairs(tsv, src_field="fra", tgt_field="0"))
    with pytest.raises(ValueError, match="--pairs-format"):
        list(read_pairs(tmp_path / "p.dat"))


def test_carving_is_reproducible_recorded_and_disjoint(tmp_path):
    tsv = write_tutorial_tsv(tmp_path / "fra.tsv")
    data = TranslationData(config(tmp_path, pairs=str(tsv), src_field="1", tgt_field="0"))
    again = TranslationData(config(tmp_path, pairs=str(tsv), src_field="1", tgt_field="0",
                                   cache_dir=str(tmp_path / "other")))
    assert data.val_src == again.val_src and data.test_src == again.test_src
    assert data.carve == again.carve and data.carve["rows"] == len(EN)
    assert len(data.val_src) == data.carve["val"] >= 1 and len(data.test_src) >= 1
    assert len(data) + len(data.val_src) + len(data.test_src) == len(EN)
    assert set(data.val_tgt + data.test_tgt).isdisjoint(data.train_tgt)
    split, record = carve(100_000, val_fraction=0.02, val_max=5000, seed=3, test_fraction=0.02)
    assert record["val"] == record["test"] == 2000 and split.sum() == 2000 * 1 + 2000 * 2
    assert carve(10**6, val_fraction=0.02, val_max=5000, seed=0)[1]["val"] == 5000


def test_token_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path, caplog):
    tsv = write_tutorial_tsv(tmp_path / "fra.tsv")
    cfg = config(tmp_path, pairs=str(tsv), src_field="1", tgt_field="0")
    first = TranslationData(cfg)
    caplog.set_level("INFO", logger="seqgen.data.token_cache")
    second = TranslationData(cfg)
    assert "token cache hit" in caplog.text and second.cache == first.cache
    assert list(second.train_src_ids) == list(first.train_src_ids)
    assert list(second.train_tgt) == list(first.train_tgt)
    with tsv.open("a", encoding="utf-8") as handle:
        handle.write("Smile.\tSouris.\tx\n")
    assert TranslationData(cfg).cache != first.cache
    assert len(list((tmp_path / "cache").iterdir())) == 2  # no half-written entries left


def test_arrays_are_compact_and_batches_come_from_them(tmp_path):
    tsv = write_tutorial_tsv(tmp_path / "fra.tsv")
    data = TranslationData(config(tmp_path, pairs=str(tsv), src_field="1", tgt_field="0"))
    assert data.train_src_ids.values.dtype.name == "uint16"  # 2 bytes per token
    batch = data.make_batch(data.train_plan(0)[0])
    assert batch.src.size(0) == batch.tgt_in.size(0) == len(batch.ids)


def test_line_aligned_files_of_different_lengths_are_one_line_naming_both_counts(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\nc\n")
    (tmp_path / "train.en").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"train.de has 3 lines but train.en has 2"):
        list(aligned(tmp_path / "train.de", tmp_path / "train.en"))
    with pytest.raises(ValueError, match=r"has 3 lines but .* has 2") as err:
        TranslationData(TranslationDataConfig(data_dir=str(tmp_path),
                                              cache_dir=str(tmp_path / "cache")))
    assert "\n" not in str(err.value)


@pytest.mark.slow  # the recipe in a subprocess
def test_tutorial_tsv_trains_a_french_to_english_translator_with_one_command(tmp_path):
    tsv = write_tutorial_tsv(tmp_path / "fra.txt")
    result = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "translation.py"), "--pairs", str(tsv),
         "--pairs-format", "tsv", "--src-field", "1", "--tgt-field", "0", "--dry-run", "--quiet",
         "--cache-dir", str(tmp_path / "cache"), "--run-dir", str(tmp_path / "run"),
         "--model.decoder.hidden_dim=16", "--model.encoder.hidden_dim=8",
         "--model.decoder.emb_dim=8", "--model.encoder.emb_dim=8", "--data.vocab_size=60"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "model.pt").is_file()
    assert '"split": "test"' in result.stdout  # the carved test rows are scored


# ------------------------------------------------------------------------------------------------
def test_headlines_text_file_as_jsonl_or_csv_with_a_field(tmp_path):
    titles = [f"Headline number {i}" for i in range(10)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"id": i, "headline": t}) + "\n"
                                              for i, t in enumerate(titles)))
    (tmp_path / "t.csv").write_text("id,headline\n" + "".join(f"{i},{t}\n"
                                                             for i, t in enumerate(titles)))
    for name in ("t.jsonl", "t.csv"):
        data = HeadlineData(HeadlineDataConfig(text_file=str(tmp_path / name), text_field="headline",
                                               cache_dir=str(tmp_path / "cache")))
        assert sorted(data.train_texts + data.val_texts) == sorted(titles)
    with pytest.raises(ValueError, match="no key 'text'"):
        HeadlineData(HeadlineDataConfig(text_file=str(tmp_path / "t.jsonl"),
                                        cache_dir=str(tmp_path / "cache")))


def test_headlines_two_examples_keep_one_for_validation_and_one_is_an_error(tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("First headline\n\nSecond headline\n")
    data = HeadlineData(HeadlineDataConfig(text_file=str(two), val_fraction=0.02,
                                           cache_dir=str(tmp_path / "cache")))
    assert len(data.train_texts) == 1 and len(data.val_texts) == 1
    one = tmp_path / "one.txt"
    one.write_text("Only headline\n")
    with pytest.raises(ValueError, match="single example") as err:
        HeadlineData(HeadlineDataConfig(text_file=str(one), cache_dir=str(tmp_path / "cache")))
    assert "\n" not in str(err.value)


def test_headlines_cache_is_reused_and_validation_is_capped(tmp_path, caplog):
    text = tmp_path / "many.txt"
    text.write_text("".join(f"Title {i}\n" for i in range(200)))
    cfg = HeadlineDataConfig(text_file=str(text), val_fraction=0.5, val_max=7,
                             cache_dir=str(tmp_path / "cache"))
    first = HeadlineData(cfg)
    assert len(first.val_texts) == 7 and len(first.train_texts) == 100  # the rest stays held out
    caplog.set_level("INFO", logger="seqgen.data.token_cache")
    second = HeadlineData(cfg)
    assert "token cache hit" in caplog.text
    assert second.train_ids[3] == first.train_ids[3] and second.val_texts == first.val_texts
