"""One generation config: the three layers resolve in one place, the user's explicit choice wins
over the model's, bans come before top-k/top-p, and the CLI, the Pipeline and the server give the
same output for the same input."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_captioner
from hypothesis import given, settings, strategies as st

from seqgen.cli.main import main as cli
from seqgen.decoding.generation import GenerationConfig, recorded_settings, resolve
from seqgen.decoding.search import build_searcher
from seqgen.pipeline import Pipeline
from seqgen.vocab import BOS, PAD, UNK

TASK = GenerationConfig(beam=3, max_len=40)
MODEL = GenerationConfig(beam=2, length_penalty=0.6)


def test_layers_resolve_task_then_model_then_caller():
    config = resolve(TASK, MODEL, GenerationConfig(max_len=10))
    assert (config.beam, config.length_penalty, config.max_len, config.n_best) == (2, 0.6, 10, 1)
    assert resolve(TASK).beam == 3 and resolve(TASK).length_penalty == 1.0


@pytest.mark.parametrize("caller", [GenerationConfig(top_k=5), GenerationConfig(temperature=0.8),
                                    GenerationConfig(top_p=0.9, seed=1)])
def test_explicit_sampling_turns_a_recorded_beam_off(caller):
    config = resolve(TASK, MODEL, caller)
    assert config.beam == 1 and config.sampling


def test_explicit_beam_turns_lower_sampling_off_and_a_typed_conflict_is_an_error():
    sampled = GenerationConfig(temperature=0.7)
    assert not resolve(sampled, None, GenerationConfig(beam=4)).sampling
    with pytest.raises(ValueError, match="not both"):
        resolve(TASK, MODEL, GenerationConfig(beam=4, temperature=0.7))
    config = resolve(TASK, MODEL, GenerationConfig(beam=1, top_k=1, temperature=1.0))
    assert config.beam == 1 and config.top_k == 1  # greedy beam + sampling typed together: fine


def test_checkpoints_record_only_search_settings():
    recorded = recorded_settings({"decoding": {"beam": 2, "length_penalty": 1.5, "bogus": 1}})
    assert recorded.given() == {"beam": 2, "length_penalty": 1.5}
    assert recorded_settings(None).given() == {}


# -- bans before top-k / top-p --------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(5, 12), top_k=st.none() | st.integers(1, 4),
       top_p=st.none() | st.floats(0.01, 1.0), temperature=st.floats(0.05, 3.0),
       favourite=st.sampled_from([PAD, BOS, UNK]))
def test_sampling_never_gives_nan_or_a_banned_id(seed, vocab, top_k, top_p, temperature,
                                                 favourite):
    """Random logits whose arg-max is a banned id (the captioner's UNK case): every draw is a
    real token, never NaN, whatever top-k and top-p keep."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, vocab, generator=generator)
    logits[:, favourite] = 50.0  # the banned token dominates every row
    searcher = build_searcher(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                              max_len=5)
    from seqgen.decoding.processors import apply_processors

    shaped = apply_processors(searcher.processors, logits, torch.zeros(6, 0, dtype=torch.long))
    assert not torch.isnan(shaped.softmax(-1)).any()
    chosen = searcher.choose(shaped)
    assert not bool(((chosen == PAD) | (chosen == BOS) | (chosen == UNK)).any())


# -- the same output through the CLI, the Pipeline and the server --------------------------------
def cli_lines(capsys, argv: list[str]) -> list[str]:
    assert cli(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_translation_is_the_same_through_cli_pipeline_and_server(tiny_checkpoints, capsys):
    from fastapi.testclient import TestClient

    from seqgen.serve import create_app

    ckpt = str(tiny_checkpoints["translation"])
    texts = ["Ein Hund läuft .", "Team wins the cup final"]
    pipe = Pipeline.load(ckpt)
    for caller in (GenerationConfig(), GenerationConfig(beam=3), GenerationConfig(
            temperature=0.8, seed=3, max_len=8)):
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in caller.given().items()]
        here = [r.text for r in pipe.predict(texts, caller)]
        assert cli_lines(capsys, ["translate", "--ckpt", ckpt, *flags, *texts]) == here
        with TestClient(create_app({"translation": ckpt}), base_url="http://127.0.0.1") as client:
            body = {"inputs": texts, **caller.given()}
            served = client.post("/api/translation", json=body).json()["results"]
        assert [r["text"] for r in served] == here


def test_captions_are_the_same_through_cli_pipeline_and_server(tmp_path, capsys):
    from fastapi.testclient import TestClient
    from PIL import Image

    from seqgen.serve import create_app

    ckpt = str(tiny_captioner(tmp_path, decoding={"beam": 2}))  # records a beam, as shipped
    photos = []
    for i, colour in enumerate([(200, 30, 30), (20, 160, 40)]):
        photos.append(tmp_path / f"p{i}.png")
        Image.new("RGB", (60, 50), colour).save(photos[-1])
    pipe = Pipeline.load(ckpt)
    for caller in (GenerationConfig(), GenerationConfig(top_k=5, seed=2)):
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in caller.given().items()]
        here = [r.text for r in pipe.predict([str(p) for p in photos], caller)]
        lines = cli_lines(capsys, ["caption", "--ckpt", ckpt, *flags, *map(str, photos)])
        assert [line.split("\t")[1] for line in lines] == here
        with TestClient(create_app({"captioning": ckpt}), base_url="http://127.0.0.1") as client:
            files = [("files", (p.name, p.read_bytes(), "image/png")) for p in photos]
            data = {k: str(v) for k, v in caller.given().items()}
            served = client.post("/api/caption", files=files, data=data).json()["results"]
        assert [r["text"] for r in served] == here


def test_headlines_are_the_same_through_cli_pipeline_and_server(tiny_checkpoints, capsys):
    from fastapi.testclient import TestClient

    from seqgen.serve import create_app

    ckpt = str(tiny_checkpoints["headlines"])
    caller = GenerationConfig(temperature=0.9, seed=4, max_len=20)
    here = Pipeline.load(ckpt).predict(["Oil "], caller)[0].text
    assert cli_lines(capsys, ["generate", "--ckpt", ckpt, "--prompt", "Oil ", "--temperature",
                              "0.9", "--seed", "4", "--max-len", "20"]) == [here]
    assert cli_lines(capsys, ["predict", "--model", ckpt, "--temperature", "0.9", "--seed", "4",
                              "--max-len", "20", "Oil "]) == [here]
    with TestClient(create_app({"headlines": ckpt}), base_url="http://127.0.0.1") as client:
        served = client.post("/api/headlines", json={"prompt": "Oil ", **caller.given()}).json()
    assert served["results"][0]["text"] == here
