"""``seqgen evaluate`` and a run's own scores search with every setting of the one resolved
GenerationConfig: max_len, min_length and repetition_penalty reach the searcher for every task
(they were silently dropped when each adapter passed on only a few of them), and the CLI builds
the settings through the same ``config_from`` as every other verb."""
from __future__ import annotations

import json

import pytest
from conftest import TITLES, tiny_captioner, tiny_summarizer, write_ag_news, write_ramp_flickr

from seqgen.cli import main as cli
from seqgen.decoding.generation import GenerationConfig
from seqgen.pipeline import Pipeline

ASKED = ["--max-len", "3", "--min-length", "1", "--repetition-penalty", "1.7"]


@pytest.fixture
def searched(monkeypatch) -> list[tuple]:
    """(max_len, min_length, repetition_penalty) of every searcher built from a config."""
    seen: list[tuple] = []
    real = GenerationConfig.searcher

    def spy(self, **kwargs):
        seen.append((self.value("max_len"), self.value("min_length"),
                     self.value("repetition_penalty")))
        return real(self, **kwargs)

    monkeypatch.setattr(GenerationConfig, "searcher", spy)
    return seen


def data_folder(task: str, tmp_path) -> tuple[str, str]:
    """A folder in ``task``'s standard layout, and the split to score."""
    if task in ("headlines", "summarization"):
        write_ag_news(tmp_path / "ag", TITLES[:4], split="test")
        return str(tmp_path / "ag"), "test"
    if task == "translation":
        folder = tmp_path / "m30k"
        folder.mkdir()
        (folder / "test.de").write_text("".join(f"{t}\n" for t in TITLES[:3]))
        (folder / "test.en").write_text("".join(f"{t}\n" for t in TITLES[3:6]))
        return str(folder), "test"
    folder = write_ramp_flickr(tmp_path / "flickr", [TITLES[:2], TITLES[2:4], TITLES[4:6]],
                               n_train=1)
    return str(folder), "dev"


@pytest.mark.parametrize("task", ["headlines", "translation", "summarization", "captioning"])
def test_evaluate_honours_max_len_min_length_and_repetition_penalty(
        task, tiny_checkpoints, tmp_path, searched, capsys):
    made = {"summarization": tiny_summarizer, "captioning": tiny_captioner}
    ckpt = made[task](tmp_path) if task in made else tiny_checkpoints[task]
    folder, split = data_folder(task, tmp_path)
    code = cli(["evaluate", "--ckpt", str(ckpt), "--data-dir", folder, "--split", split,
                "--cache-dir", str(tmp_path / "cache"), *ASKED])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)
    assert searched and set(searched) == {(3, 1, 1.7)}


def test_evaluate_uses_the_models_settings_when_none_are_given(tiny_checkpoints, tmp_path,
                                                              searched):
    pipe = Pipeline.load(tiny_checkpoints["translation"])
    folder, split = data_folder("translation", tmp_path)
    pipe.evaluate(folder, split)
    assert set(searched) == {(120, 0, 1.0)}  # the task's max_len, no penalty
    searched.clear()
    pipe.evaluate(folder, split, GenerationConfig(max_len=2))
    assert set(searched) == {(2, 0, 1.0)}


def test_export_records_max_len_and_refuses_nothing_else_silently(tiny_checkpoints, tmp_path,
                                                                 capsys):
    out = tmp_path / "small.pt"
    assert cli(["export", "--ckpt", str(tiny_checkpoints["translation"]), "--out", str(out),
                "--beam", "3", "--max-len", "7"]) == 0
    assert Pipeline.load(out).generation_config().max_len == 7
    assert cli(["export", "--ckpt", str(tiny_checkpoints["translation"]), "--out", str(out),
                "--temperature", "0.5"]) == 2  # not something a model records
    assert "--temperature" in capsys.readouterr().err
