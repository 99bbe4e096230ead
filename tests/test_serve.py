"""The web app and JSON API (``seqgen serve``) on tiny untrained models: the page and its small
endpoints, generation and streaming, translation with input/output alignment, batching of
requests that arrive together, and JSON errors. Image captioning is in test_serve_captions.py."""
from __future__ import annotations

import asyncio
import json
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from conftest import LOCAL, TITLES, queued_after  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

HANG = 120  # seconds after which a request that has not finished is taken to hang


# -- small endpoints and the page ---------------------------------------------------------------
def test_health_models_page_and_docs(serve_client):
    assert serve_client.get("/healthz").json() == {"status": "ok"}
    models = {m["task"]: m for m in serve_client.get("/api/models").json()["models"]}
    assert set(models) == {"headlines", "translation", "captioning"}
    for m in models.values():
        assert m["file_size"] > 0 and m["parameters"] > 0 and m["vocab_size"] > 4
    assert models["translation"]["src_vocab_size"] > 4
    assert "sacrebleu_signature" not in models["translation"]  # the tiny one has none
    page = serve_client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "pictures.js", "style.css"):
        static = serve_client.get(f"/static/{name}")
        assert static.status_code == 200
        assert not any(task in static.text for task in models)  # panels come from /api/models
    assert "/api/{name}" in serve_client.get("/openapi.json").json()["paths"]
    assert [m["inputs"] for m in models.values()] == ["prompt", "text", "image"]
    assert models["translation"]["verb"] == "translate"
    assert models["translation"]["panel"]["attention"] == "heatmap"
    assert models["translation"]["generation"]["beam"] == 5  # the task's default, resolved
    assert serve_client.get("/docs").status_code == 200
    assert serve_client.get("/nowhere").json() == {"error": "Not Found"}


def test_the_docs_show_the_predict_request_and_answer_schemas(serve_client):
    """/docs is drawn from the OpenAPI schema: the predict endpoint declares its JSON and
    multipart bodies (every generation setting, typed) and its answer."""
    schema = serve_client.get("/openapi.json").json()
    post = schema["paths"]["/api/{name}"]["post"]
    body = post["requestBody"]["content"]
    fields = body["application/json"]["schema"]["properties"]
    assert {"inputs", "prompt", "n", "attention", "beam", "temperature", "top_k", "max_len",
            "repetition_penalty", "seed"} <= set(fields)
    assert fields["inputs"]["type"] == "array" and fields["attention"]["type"] == "boolean"
    assert body["multipart/form-data"]["schema"]["required"] == ["files"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/PredictResponse")
    entry = schema["components"]["schemas"]["ResultEntry"]["properties"]
    assert {"text", "score", "outputs", "error", "attention"} <= set(entry)


def test_cli_serve_parses_its_options():
    from seqgen.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123", "--translation", "t.pt"])
    assert (args.host, args.port, args.translation, args.headlines, args.max_upload_mb) == (
        "127.0.0.1", 8123, "t.pt", None, 10.0)


# -- generation ---------------------------------------------------------------------------------
def test_generate_samples_are_seeded_and_checked(serve_client):
    body = {"prompt": "Oil ", "temperature": 0.8, "top_k": 5, "n": 3, "max_len": 20, "seed": 1}
    first = serve_client.post("/api/generate", json=body).json()
    samples = first["results"][0]["outputs"]
    assert len(samples) == 3
    assert all(s["text"].startswith("Oil ") for s in samples)
    assert serve_client.post("/api/generate", json=body).json() == first
    greedy = serve_client.post("/api/generate", json={"prompt": "Oil ", "max_len": 10}).json()
    assert len(greedy["results"][0]["outputs"]) == 1


@pytest.mark.parametrize("body, words", [
    ({"temperature": 0}, "greedy"), ({"top_p": 1.5}, "top_p"), ({"top_k": 0}, "top_k"),
    ({"max_len": 0}, "max_len"), ({"n": 0}, "n must"), ({"n": 2}, "sampling"),
    ({"n": 10_000, "temperature": 1}, "at most"), ({"temperature": "hot"}, "temperature"),
])
def test_generate_bad_parameters_are_422_naming_the_problem(serve_client, body, words):
    response = serve_client.post("/api/generate", json={"prompt": "x", **body})
    assert response.status_code == 422 and words in response.json()["error"]


@pytest.mark.parametrize("body, field", [
    ({"seed": 2**64, "temperature": 1}, "seed"), ({"seed": -1, "temperature": 1}, "seed"),
    ({"n": True}, "n"), ({"max_len": 2.5}, "max_len"), ({"temperature": True}, "temperature"),
])
def test_generate_types_are_strict_and_named(serve_client, body, field):
    response = serve_client.post("/api/generate", json={"prompt": "x", **body})
    assert response.status_code == 422 and response.json()["error"].startswith(field)


def test_a_query_seed_out_of_range_names_the_seed(serve_client):
    seed = serve_client.get("/api/generate/stream", params={"seed": 2**64})
    assert seed.status_code == 422 and "seed" in seed.json()["error"]


def test_stream_sends_pieces_then_end(serve_client):
    params = {"prompt": "Oil ", "temperature": 0.9, "seed": 0, "max_len": 15}
    with serve_client.stream("GET", "/api/generate/stream", params=params) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [e for e in text.split("\n\n") if e]
    pieces = [json.loads(e[len("data: "):])["text"] for e in events if e.startswith("data: ")]
    assert pieces[0] == "Oil " and events[-1].startswith("event: end")
    sample = serve_client.post("/api/generate", json={**params, "n": 1}).json()
    sample = sample["results"][0]["text"]
    assert "".join(pieces) == sample  # streaming gives the same text as generating
    bad = serve_client.get("/api/generate/stream", params={"temperature": -1})
    assert bad.status_code == 422 and "temperature" in bad.json()["error"]


# -- translation --------------------------------------------------------------------------------
def test_translate_keeps_order_and_marks_bad_items(serve_client):
    texts = ["Ein Hund läuft .", "", "   ", "Team wins the cup final", "x" * 100]
    body = {"inputs": texts, "beam": 3, "n_best": 2, "attention": True}
    out = serve_client.post("/api/translate", json=body).json()["results"]
    assert len(out) == len(texts)
    assert [t["error"] for t in out[1:3]] == ["empty text", "empty text"]
    for t in (out[0], out[3], out[4]):
        assert t["error"] is None and len(t["outputs"]) == 2
        assert t["text"] == t["outputs"][0]["text"]
        # a row per symbol (and the end, if chosen), a column per source symbol and its end
        assert len(t["symbols"]) <= len(t["attention"]) <= len(t["symbols"]) + 1
        assert all(len(row) == len(t["source"]) + 1 for row in t["attention"])
    assert out[0]["source"] == ["Ein", "Hund", "läuft", "."]
    assert out[4]["warnings"] == ["text of 100 characters cut to the first 40"]
    # alone, each sentence gives the same translation as in the batch
    for text, t in zip(texts, out):
        if text.strip():
            alone = serve_client.post("/api/translation", json={**body, "inputs": [text]}).json()
            assert alone["results"][0]["text"] == t["text"]
    assert serve_client.post("/api/translate", json={"inputs": []}).json() == {"results": []}


@pytest.mark.parametrize("body, words", [
    ({"inputs": ["a"], "beam": 0}, "beam"), ({"inputs": ["a"], "beam": 2, "n_best": 3}, "n-best"),
    ({"inputs": "not a list"}, "inputs"), ({"inputs": ["a"], "texts": ["a"]}, "texts"),
    ({"inputs": ["a"] * 1000}, "at most"), ({"inputs": ["a"], "beam": True}, "beam"),
    ({"inputs": ["a"], "seed": 2 ** 64}, "seed"), ({"inputs": [1]}, "inputs"),
    ({"inputs": ["a"], "beam": 2, "temperature": 0.5}, "not both"),
])
def test_translate_bad_parameters_are_422(serve_client, body, words):
    response = serve_client.post("/api/translate", json=body)
    assert response.status_code == 422 and words in response.json()["error"]


def test_lone_surrogates_are_per_item_errors_never_a_500(serve_client):
    body = json.dumps({"inputs": ["Ein Hund .", "Ein \udc80 Hund ."]})
    out = serve_client.post("/api/translate", content=body,
                            headers={"content-type": "application/json"})
    assert out.status_code == 200
    first, second = out.json()["results"]
    assert first["error"] is None and "surrogate" in second["error"]
    prompt = serve_client.post("/api/generate", content=json.dumps({"prompt": "\ud800abc"}),
                               headers={"content-type": "application/json"})
    assert prompt.status_code == 200 and "surrogate" in prompt.json()["results"][0]["error"]
    stream = serve_client.get("/api/generate/stream", params={"prompt": "x", "beam": "3"})
    assert stream.status_code == 422 and "stream" in stream.json()["error"]


# -- one model, many requests -------------------------------------------------------------------
def test_concurrent_translations_share_one_batched_search(serve_app, monkeypatch):
    """Six requests at once share fewer than six searches. The model's lock is held until all
    six jobs are queued, so they wait together whatever the machine's speed: the worker may
    take one round before the lock is released, the rest are all waiting for its next."""
    batcher = serve_app.state.models["translation"].batcher
    before = batcher.stats.calls

    async def together():
        queued = queued_after(batcher, 6, monkeypatch)
        transport = httpx.ASGITransport(app=serve_app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as c:
            with batcher.lock:  # the worker cannot search until every request has queued
                requests = asyncio.gather(*[
                    c.post("/api/translate", json={"inputs": [t, "Ein Hund läuft ."], "beam": 2})
                    for t in TITLES[:6]])
                await asyncio.wait_for(queued.wait(), HANG)
            return await asyncio.wait_for(requests, HANG)

    responses = asyncio.run(together())
    assert batcher.stats.calls - before <= 2  # one search at most before the lock, one after
    for title, response in zip(TITLES, responses):
        [first, second] = response.json()["results"]
        assert first["source"] == title.split() and second["source"][0] == "Ein"


def test_stream_and_batches_share_the_model_safely(serve_client):
    """A stream running while translations are batched: both finish, nothing is a 500. Each runs
    in its own thread, joined with a bound that turns a deadlock into a failure; how long they
    take decides nothing (the test client runs the app in-process and ignores client timeouts)."""
    errors, streamed = [], []

    def translate():
        for _ in range(3):
            r = serve_client.post("/api/translate", json={"inputs": ["Ein Hund ."], "beam": 2})
            if r.status_code != 200:
                errors.append(r.status_code)

    def stream():
        streamed.append(serve_client.get("/api/generate/stream", params={"max_len": 30}).text)

    threads = [threading.Thread(target=job, daemon=True) for job in (translate, stream)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG)
    assert not any(thread.is_alive() for thread in threads), "a request hangs: a deadlock?"
    assert not errors and "event: end" in streamed[0]


def test_a_full_queue_is_503_and_a_crash_is_json(serve_app, monkeypatch):
    from seqgen.serve.batching import Busy

    served = serve_app.state.models["translation"]

    def full(key, items, **kwargs):
        raise Busy("the server is busy (300 items queued); try again later", retry_after=4)

    monkeypatch.setattr(served.batcher, "submit", full)
    with TestClient(serve_app, base_url=LOCAL, raise_server_exceptions=False) as client:
        busy = client.post("/api/translate", json={"inputs": ["Ein Hund ."]})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "4"
        monkeypatch.setattr(served.batcher, "submit", lambda key, items, **kwargs: 1 / 0)
        crash = client.post("/api/translate", json={"inputs": ["Ein Hund ."]})
        assert crash.status_code == 500
        assert crash.json() == {"error": "internal error: ZeroDivisionError: division by zero"}
