"""The summarization task on tiny models: its data formats, the lead baseline, and the task end
to end through the runner, Pipeline, ``seqgen summarize`` / ``predict`` and the server."""
from __future__ import annotations

import gzip
import json

import pytest

from seqgen.cli import main as cli
from seqgen.pipeline import Pipeline
from seqgen.runs import run
from seqgen.tasks import registry
from seqgen.tasks.summarization.data import (SummarizationDataConfig, lead, read_rows,
                                             strip_dateline)

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
