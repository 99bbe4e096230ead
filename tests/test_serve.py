"""The web app and JSON API (``seqgen serve``) on tiny untrained models: every endpoint, bad input,
input/output alignment and batching of requests that arrive together."""
from __future__ import annotations

import asyncio
import io
import json
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from conftest import TITLES, tiny_captioner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from seqgen.nn.backbones import build_backbone
from seqgen.serve import create_app  # noqa: E402
from seqgen.serve.batching import Batcher  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return tiny_captioner(tmp_path_factory.mktemp("captioner"), seed=3)


@pytest.fixture(scope="module")
def app(tiny_checkpoints, captioner):
    return create_app({"headlines": tiny_checkpoints["headlines"],
                       "translation": tiny_checkpoints["translation"], "captioning": captioner},
                      max_upload_mb=0.5, max_text_chars=40)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL) as client:  # the Host guard answers only the local host
        yield client


def png(size=(40, 30), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 40)).save(out, format="JPEG")
    return out.getvalue()


# -- small endpoints and the page -------------------------------------------------------------
def test_health_models_page_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    models = {m["task"]: m for m in client.get("/api/models").json()["models"]}
    assert set(models) == {"headlines", "translation", "captioning"}
    for m in models.values():
        assert m["file_size"] > 0 and m["parameters"] > 0 and m["vocab_size"] > 4
    assert models["translation"]["src_vocab_size"] > 4
    assert "sacrebleu_signature" not in models["translation"]  # the tiny one has none
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "pictures.js", "style.css"):
        static = client.get(f"/static/{name}")
        assert static.status_code == 200
        assert not any(task in static.text for task in models)  # panels come from /api/models
    assert "/api/{name}" in client.get("/openapi.json").json()["paths"]
    assert [m["inputs"] for m in models.values()] == ["prompt", "text", "image"]
    assert models["translation"]["verb"] == "translate"
    assert models["translation"]["panel"]["attention"] == "heatmap"
    assert models["translation"]["generation"]["beam"] == 5  # the task's default, resolved
    assert client.get("/docs").status_code == 200
    assert client.get("/nowhere").json() == {"error": "Not Found"}


# -- generation --------------------------------------------------------------------------------
def test_generate_samples_are_seeded_and_checked(client):
    body = {"prompt": "Oil ", "temperature": 0.8, "top_k": 5, "n": 3, "max_len": 20, "seed": 1}
    first = client.post("/api/generate", json=body).json()
    samples = first["results"][0]["outputs"]
    assert len(samples) == 3
    assert all(s["text"].startswith("Oil ") for s in samples)
    assert client.post("/api/generate", json=body).json() == first
    greedy = client.post("/api/generate", json={"prompt": "Oil ", "max_len": 10}).json()
    assert len(greedy["results"][0]["outputs"]) == 1


@pytest.mark.parametrize("body, words", [
    ({"temperature": 0}, "greedy"), ({"top_p": 1.5}, "top_p"), ({"top_k": 0}, "top_k"),
    ({"max_len": 0}, "max_len"), ({"n": 0}, "n must"), ({"n": 2}, "sampling"),
    ({"n": 10_000, "temperature": 1}, "at most"), ({"temperature": "hot"}, "temperature"),
])
def test_generate_bad_parameters_are_422_naming_the_problem(client, body, words):
    response = client.post("/api/generate", json={"prompt": "x", **body})
    assert response.status_code == 422 and words in response.json()["error"]


def test_stream_sends_pieces_then_end(client):
    params = {"prompt": "Oil ", "temperature": 0.9, "seed": 0, "max_len": 15}
    with client.stream("GET", "/api/generate/stream", params=params) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [e for e in text.split("\n\n") if e]
    pieces = [json.loads(e[len("data: "):])["text"] for e in events if e.startswith("data: ")]
    assert pieces[0] == "Oil " and events[-1].startswith("event: end")
    sample = client.post("/api/generate", json={**params, "n": 1}).json()["results"][0]["text"]
    assert "".join(pieces) == sample  # streaming gives the same text as generating
    bad = client.get("/api/generate/stream", params={"temperature": -1})
    assert bad.status_code == 422 and "temperature" in bad.json()["error"]


# -- translation -------------------------------------------------------------------------------
def test_translate_keeps_order_and_marks_bad_items(client):
    texts = ["Ein Hund läuft .", "", "   ", "Team wins the cup final", "x" * 100]
    body = {"inputs": texts, "beam": 3, "n_best": 2, "attention": True}
    out = client.post("/api/translate", json=body).json()["results"]
    assert len(out) == len(texts)
    assert [t["error"] for t in out[1:3]] == ["empty text", "empty text"]
    for t in (out[0], out[3], out[4]):
        assert t["error"] is None and len(t["outputs"]) == 2 and t["text"] == t["outputs"][0]["text"]
        # a row per symbol (and the end, if chosen), a column per source symbol and its end
        assert len(t["symbols"]) <= len(t["attention"]) <= len(t["symbols"]) + 1
        assert all(len(row) == len(t["source"]) + 1 for row in t["attention"])
    assert out[0]["source"] == ["Ein", "Hund", "läuft", "."]
    assert out[4]["warnings"] == ["text of 100 characters cut to the first 40"]
    # alone, each sentence gives the same translation as in the batch
    for text, t in zip(texts, out):
        if text.strip():
            alone = client.post("/api/translation", json={**body, "inputs": [text]}).json()
            assert alone["results"][0]["text"] == t["text"]
    assert client.post("/api/translate", json={"inputs": []}).json() == {"results": []}


@pytest.mark.parametrize("body, words", [
    ({"inputs": ["a"], "beam": 0}, "beam"), ({"inputs": ["a"], "beam": 2, "n_best": 3}, "n-best"),
    ({"inputs": "not a list"}, "inputs"), ({"inputs": ["a"], "texts": ["a"]}, "texts"),
    ({"inputs": ["a"] * 1000}, "at most"), ({"inputs": ["a"], "beam": True}, "beam"),
    ({"inputs": ["a"], "seed": 2 ** 64}, "seed"), ({"inputs": [1]}, "inputs"),
    ({"inputs": ["a"], "beam": 2, "temperature": 0.5}, "not both"),
])
def test_translate_bad_parameters_are_422(client, body, words):
    response = client.post("/api/translate", json=body)
    assert response.status_code == 422 and words in response.json()["error"]


def test_concurrent_translations_share_one_batched_search(app):
    stats = app.state.models["translation"].batcher.stats
    before = stats.calls

    async def together():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as c:
            return await asyncio.gather(*[
                c.post("/api/translate", json={"inputs": [t, "Ein Hund läuft ."], "beam": 2})
                for t in TITLES[:6]])

    responses = asyncio.run(together())
    assert stats.calls - before < 6  # fewer searches than requests
    for title, response in zip(TITLES, responses):
        [first, second] = response.json()["results"]
        assert first["source"] == title.split() and second["source"][0] == "Ein"


def test_batcher_merges_same_key_and_splits_results_back():
    calls = []
    batcher = Batcher(lambda key, items: calls.append((key, list(items))) or
                      [f"{key}:{i}" for i in items], wait_ms=50)
    futures = [batcher.submit("a", [1, 2]), batcher.submit("b", [3]), batcher.submit("a", [4])]
    results = [f.result(timeout=5) for f in futures]
    assert results == [["a:1", "a:2"], ["b:3"], ["a:4"]]
    assert calls == [("a", [1, 2, 4]), ("b", [3])]
    failing = Batcher(lambda key, items: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.submit("a", [1]).result(timeout=5)
    batcher.close(), failing.close()


# -- captioning --------------------------------------------------------------------------------
def bomb() -> bytes:
    """A small PNG whose header claims 8000 x 8000 pixels (over the 40M-pixel guard)."""
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")
    return out.getvalue()


def test_caption_keeps_order_and_fails_items_alone(client):
    good = png()
    files = [("files", ("a.png", good, "image/png")), ("files", ("bomb.png", bomb(), "image/png")),
             ("files", ("cut.jpg", jpeg()[:300], "image/jpeg")),
             ("files", ("b.jpg", jpeg(), "image/jpeg"))]
    response = client.post("/api/caption", files=files, data={"beam": "2", "attention": "true"})
    assert response.status_code == 200
    out = response.json()["results"]
    assert [c["filename"] for c in out] == ["a.png", "bomb.png", "cut.jpg", "b.jpg"]
    assert "pixel" in out[1]["error"] and out[1]["error"].startswith("bomb.png")
    assert "truncated" in out[2]["error"] and out[2]["error"].startswith("cut.jpg")
    for c in (out[0], out[3]):
        assert c["error"] is None and isinstance(c["text"], str) and c["grid"] == 3
        assert len(c["symbols"]) <= len(c["attention"]) <= len(c["symbols"]) + 1
        assert all(len(row) == 9 for row in c["attention"])
    alone = client.post("/api/caption", files=[("files", ("a.png", good, "image/png"))],
                        data={"beam": "2"}).json()["results"][0]
    assert alone["text"] == out[0]["text"] and "attention" not in alone


def test_caption_refuses_non_images_oversized_uploads_and_bad_options(client):
    files = [("files", ("a.png", png(), "image/png")), ("files", ("notes.txt", b"hello", "text/plain")),
             ("files", ("empty.jpg", b"", "image/jpeg")), ("files", ("x.svg", b"<svg/>", "image/svg"))]
    mixed = client.post("/api/caption", files=files)
    assert mixed.status_code == 200  # the photo is captioned, each bad file named alone
    out = mixed.json()["results"]
    assert out[0]["error"] is None and isinstance(out[0]["text"], str)
    assert [c["error"].split(":")[0] for c in out[1:]] == ["notes.txt", "empty.jpg", "x.svg"]
    text = client.post("/api/caption", files=files[1:])
    assert text.status_code == 415 and "none of the files" in text.json()["error"]
    big = client.post("/api/caption", files=[("files", ("big.png", b"\x89PNG" + b"0" * 600_000,
                                                        "image/png"))])
    assert big.status_code == 413 and "limit" in big.json()["error"]
    beam = client.post("/api/caption", files=[("files", ("a.png", png(), "image/png"))],
                       data={"beam": "0"})
    assert beam.status_code == 422 and "beam" in beam.json()["error"]
    assert client.post("/api/caption").status_code == 422  # no files
    assert client.get("/healthz").status_code == 200  # still up


def test_uploads_never_use_the_client_file_name_and_leave_no_file(client, tmp_path):
    import tempfile
    from pathlib import Path

    secret = tmp_path / "secret.png"
    secret.write_bytes(png(colour=(0, 0, 255)))
    name = str(secret)  # a path on the server named by the client: must not be read
    out = client.post("/api/caption", files=[("files", (name, jpeg()[:300], "image/jpeg"))])
    [item] = out.json()["results"]
    assert item["filename"] == name and "truncated" in item["error"]  # its own bytes were used
    assert not list(Path(tempfile.gettempdir()).glob("seqgen-serve-*"))


def test_missing_model_is_404(tiny_checkpoints):
    app = create_app({"translation": tiny_checkpoints["translation"]})
    with TestClient(app, base_url=LOCAL) as client:
        response = client.post("/api/caption", files=[("files", ("x.png", png(), "image/png"))])
        assert response.status_code == 404 and "captioning" in response.json()["error"]
        assert [m["task"] for m in client.get("/api/models").json()["models"]] == ["translation"]


def test_cli_serve_parses_its_options():
    from seqgen.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123", "--translation", "t.pt"])
    assert (args.host, args.port, args.translation, args.headlines, args.max_upload_mb) == (
        "127.0.0.1", 8123, "t.pt", None, 10.0)


def test_stream_and_batches_share_the_model_safely(client):
    """A stream running while translations are batched: both finish, nothing is a 500."""
    errors = []

    def translate():
        for _ in range(3):
            r = client.post("/api/translate", json={"inputs": ["Ein Hund ."], "beam": 2})
            if r.status_code != 200:
                errors.append(r.status_code)

    thread = threading.Thread(target=translate)
    thread.start()
    start = time.monotonic()
    text = client.get("/api/generate/stream", params={"max_len": 30}).text
    thread.join(timeout=30)
    assert not errors and "event: end" in text and time.monotonic() - start < 30


def test_lone_surrogates_are_per_item_errors_never_a_500(client):
    body = json.dumps({"inputs": ["Ein Hund .", "Ein \udc80 Hund ."]})
    out = client.post("/api/translate", content=body,
                      headers={"content-type": "application/json"})
    assert out.status_code == 200
    first, second = out.json()["results"]
    assert first["error"] is None and "surrogate" in second["error"]
    prompt = client.post("/api/generate", content=json.dumps({"prompt": "\ud800abc"}),
                         headers={"content-type": "application/json"})
    assert prompt.status_code == 200 and "surrogate" in prompt.json()["results"][0]["error"]
    stream = client.get("/api/generate/stream", params={"prompt": "x", "beam": "3"})
    assert stream.status_code == 422 and "stream" in stream.json()["error"]


@pytest.mark.parametrize("body, field", [
    ({"seed": 2**64, "temperature": 1}, "seed"), ({"seed": -1, "temperature": 1}, "seed"),
    ({"n": True}, "n"), ({"max_len": 2.5}, "max_len"), ({"temperature": True}, "temperature"),
])
def test_generate_types_are_strict_and_named(client, body, field):
    response = client.post("/api/generate", json={"prompt": "x", **body})
    assert response.status_code == 422 and response.json()["error"].startswith(field)


def test_a_query_seed_out_of_range_names_the_seed(client):
    seed = client.get("/api/generate/stream", params={"seed": 2**64})
    assert seed.status_code == 422 and "seed" in seed.json()["error"]


def test_other_hosts_and_cross_origin_posts_are_refused(client):
    assert client.get("/healthz", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/healthz", headers={"host": "127.0.0.1.nip.io"}).status_code == 400
    files = [("files", ("a.png", png(), "image/png"))]
    cross = client.post("/api/caption", files=files, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    same = client.post("/api/caption", files=files, headers={"origin": LOCAL})
    assert same.status_code == 200


def test_a_full_queue_is_503_and_a_crash_is_json(app, monkeypatch):
    from seqgen.serve.batching import Busy

    served = app.state.models["translation"]

    def full(key, items, **kwargs):
        raise Busy("the server is busy (300 items queued); try again later", retry_after=4)

    monkeypatch.setattr(served.batcher, "submit", full)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        busy = client.post("/api/translate", json={"inputs": ["Ein Hund ."]})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "4"
        monkeypatch.setattr(served.batcher, "submit", lambda key, items, **kwargs: 1 / 0)
        crash = client.post("/api/translate", json={"inputs": ["Ein Hund ."]})
        assert crash.status_code == 500
        assert crash.json() == {"error": "internal error: ZeroDivisionError: division by zero"}
