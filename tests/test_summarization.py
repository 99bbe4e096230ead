"""The summarization task on tiny models: its data formats, the lead baseline, and the task end
to end through the runner, Pipeline, ``seqgen summarize`` / ``predict`` and the server."""
from __future__ import annotations

import gzip
import json

import pytest

from seqgen.cli.main import main as cli
from seqgen.pipeline import Pipeline
from seqgen.tasks import registry
from seqgen.tasks.summarization.data import SummarizationDataConfig, lead, read_rows, strip_dateline
from seqgen.training.runner import run

ARTICLES = [
    ("NEW YORK (Reuters) - Oil prices rose on Monday as supplies tightened.", "Oil prices rise"),
    ("AP - The home team won the cup final after a late goal.", "Home team wins cup final"),
    ("LONDON (AFP) -- Shares fell sharply in London trading today.", "London shares fall"),
    ("A storm hit the coast and closed the port for two days.", "Storm closes port"),
    ("The chip maker said its new chip speeds up phones.", "New chip speeds up phones"),
    ("The court ruled on the merger of the two phone makers.", "Court rules on merger"),
] * 4


def write_ag_news(folder, rows=ARTICLES):
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "train.csv.gz", "wt") as f:
        for doc, title in rows:
            f.write(f'"2","{title}","{doc}"\n')
    return folder


def test_datelines_are_stripped_for_the_lead_baseline():
    assert strip_dateline("NEW YORK (Reuters) - Oil rose.") == "Oil rose."
    assert strip_dateline("AP - The team won.") == "The team won."
    assert strip_dateline("SAN FRANCISCO (CBS.MW) -- Shares fell.") == "Shares fell."
    assert strip_dateline("Oil rose on Monday.") == "Oil rose on Monday."
    assert lead("Reuters - " + " ".join(f"w{i}" for i in range(20))) == " ".join(
        f"w{i}" for i in range(12))


def test_pairs_come_from_ag_news_files_and_line_aligned_files(tmp_path):
    folder = write_ag_news(tmp_path / "ag")
    rows = list(read_rows(SummarizationDataConfig(data_dir=str(folder))))
    assert rows[0] == ARTICLES[0]  # description -> title
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{t}\t{d}\tsource\n" for d, t in ARTICLES[:3]))
    from_tsv = list(read_rows(SummarizationDataConfig(pairs=str(tsv), src_field="1",
                                                      tgt_field="0")))
    assert from_tsv == ARTICLES[:3]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d, "title": t}) + "\n" for d, t in ARTICLES[:2]))
    assert list(read_rows(SummarizationDataConfig(pairs=str(jsonl), src_field="text",
                                                  tgt_field="title"))) == ARTICLES[:2]
    (tmp_path / "a.doc").write_text("one\ntwo\n")
    (tmp_path / "a.title").write_text("only one\n")
    with pytest.raises(ValueError, match="line-aligned"):
        list(read_rows(SummarizationDataConfig(src_file=str(tmp_path / "a.doc"),
                                               tgt_file=str(tmp_path / "a.title"))))


TINY = ["--model.encoder.emb_dim=16", "--model.encoder.hidden_dim=16",
        "--model.decoder.emb_dim=16", "--model.decoder.hidden_dim=24", "--data.vocab_size=60",
        "--train.max_steps=8", "--train.eval_every=4", "--train.precision=fp32"]


@pytest.fixture(scope="module")
def summarizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("summ")
    folder = write_ag_news(root / "ag")
    code = run(registry.get("summarization"), argv=["--data-dir", str(folder), "--run-dir",
                                                   str(root / "run"), "--quiet", *TINY])
    assert code == 0
    return str(root / "run" / "model.pt"), str(folder)


def test_the_task_runs_through_pipeline_cli_server_and_evaluate(summarizer, capsys):
    from fastapi.testclient import TestClient

    from seqgen.serve import create_app

    ckpt, folder = summarizer
    docs = [ARTICLES[0][0], "", ARTICLES[1][0]]
    pipe = Pipeline.load(ckpt)
    assert pipe.task == "summarization" and pipe.generation_config().beam == 4
    assert pipe.generation_config().no_repeat_ngram == 3  # chosen in the config, recorded
    texts = [r.text for r in pipe.predict(docs)]
    assert len(texts) == 3 and texts[1] == ""
    assert cli(["summarize", "--ckpt", ckpt, *docs]) == 0
    assert capsys.readouterr().out.splitlines() == texts
    assert cli(["predict", "--model", ckpt, *docs]) == 0
    assert capsys.readouterr().out.splitlines() == texts
    with TestClient(create_app({"summarization": ckpt}), base_url="http://127.0.0.1") as client:
        out = client.post("/api/summarize", json={"inputs": docs, "attention": True}).json()
    assert [r["text"] for r in out["results"]] == [texts[0], None, texts[2]]
    assert out["results"][0]["attention"]
    scores = pipe.evaluate(folder, "heldout")
    assert scores["documents"] >= 1 and "lead_rougeL" in scores and "rougeL" in scores


def test_export_int8_keeps_the_task(summarizer, tmp_path):
    ckpt, _ = summarizer
    assert cli(["export", "--ckpt", ckpt, "--out", str(tmp_path / "small.pt"), "--int8"]) == 0
    assert len(Pipeline.load(tmp_path / "small.pt").predict([ARTICLES[2][0]])) == 1


def test_span_deletion_removes_about_the_ratio_and_keeps_order():
    import random

    from seqgen.tasks.summarization.denoising import delete_spans

    words = [f"w{i}" for i in range(40)]
    damaged = delete_spans(words, random.Random(0), ratio=0.3)
    assert len(damaged) == 28 and damaged == [w for w in words if w in set(damaged)]
    assert delete_spans(["only"], random.Random(0)) == ["only"]  # one word always stays
    assert delete_spans(words, random.Random(1)) != delete_spans(words, random.Random(2))


def test_denoising_uses_training_rows_only_and_is_the_same_on_resume(tmp_path):
    from seqgen.tasks.summarization.data import SummarizationData
    from seqgen.tasks.summarization.denoising import DenoisingData

    rows = [(f"Doc {i} says the team {i} won the cup final after a late goal.", f"Team {i} wins")
            for i in range(40)]
    data = SummarizationData(SummarizationDataConfig(
        data_dir=str(write_ag_news(tmp_path / "ag", rows)), vocab_size=60, val_fraction=0.1))
    pre = DenoisingData(data, seed=3)
    held_out = {d for d, _ in data.val} | {s for _, s in data.val}
    assert len(pre) == 2 * len(data) and not held_out & set(pre.texts)
    plan = pre.train_plan(epoch=2)
    first, again = pre.make_batch(plan[0]), DenoisingData(data, seed=3).make_batch(plan[0])
    assert first.src.equal(again.src) and first.tgt_out.equal(again.tgt_out)
    row = 0  # a document: damaged differently each epoch, always shorter than itself
    one, two = (pre.make_batch([epoch * len(pre) + row]) for epoch in (2, 3))
    whole = data.vocab.encode(data.encode_text(pre.texts[row]))
    assert not one.src.equal(two.src) and int(one.src_lengths[0]) < len(whole)
    assert one.tgt_out[0].tolist()[:-1] == whole[:data.config.max_tgt_len]  # then EOS


def test_pretraining_then_init_then_self_critical_share_one_vocabulary(summarizer, tmp_path):
    import torch

    from seqgen.io.checkpoint import load_checkpoint
    from seqgen.tasks.summarization.inference import rouge_reward

    ckpt, folder = summarizer
    task = registry.get("summarization")
    common = ["--data-dir", folder, "--quiet", *TINY]
    assert run(task, argv=[*common, "--pretrain=true", "--run-dir", str(tmp_path / "pre")]) == 0
    pre = str(tmp_path / "pre" / "model.pt")
    assert run(task, argv=[*common, "--init", pre, "--run-dir", str(tmp_path / "fine")]) == 0
    fine = str(tmp_path / "fine" / "model.pt")
    assert run(task, argv=[*common, "--self-critical", fine, "--run-dir",
                           str(tmp_path / "scst")]) == 0
    started, tuned = load_checkpoint(pre), load_checkpoint(str(tmp_path / "scst" / "model.pt"))
    assert started["tgt_vocab"] == tuned["tgt_vocab"]
    assert any(not torch.equal(a, tuned["model"][k]) for k, a in started["model"].items())
    loaded = Pipeline.load(fine).loaded
    reward = rouge_reward(["oil prices rise", "storm closes port"], loaded.tgt_vocab,
                          loaded.tgt_tokenizer)
    ids = loaded.tgt_vocab.encode(loaded.tgt_tokenizer.tokenize("Oil prices rise"))
    assert reward([0, 1], [ids, ids]) == pytest.approx([1.0, 0.0])
