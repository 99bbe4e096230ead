"""Image captioning over the web app (``seqgen serve``) on a tiny untrained captioner: order kept
and bad files failed alone, uploads refused by type, size and origin, and no client file name
ever used on the server."""
from __future__ import annotations

import io

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from conftest import LOCAL  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from seqgen.serve import create_app  # noqa: E402


def png(size=(40, 30), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 40)).save(out, format="JPEG")
    return out.getvalue()


def bomb() -> bytes:
    """A small PNG whose header claims 8000 x 8000 pixels (over the 40M-pixel guard)."""
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")
    return out.getvalue()


def test_caption_keeps_order_and_fails_items_alone(serve_client):
    good = png()
    files = [("files", ("a.png", good, "image/png")), ("files", ("bomb.png", bomb(), "image/png")),
             ("files", ("cut.jpg", jpeg()[:300], "image/jpeg")),
             ("files", ("b.jpg", jpeg(), "image/jpeg"))]
    response = serve_client.post("/api/caption", files=files,
                                 data={"beam": "2", "attention": "true"})
    assert response.status_code == 200
    out = response.json()["results"]
    assert [c["filename"] for c in out] == ["a.png", "bomb.png", "cut.jpg", "b.jpg"]
    assert "pixel" in out[1]["error"] and out[1]["error"].startswith("bomb.png")
    assert "truncated" in out[2]["error"] and out[2]["error"].startswith("cut.jpg")
    for c in (out[0], out[3]):
        assert c["error"] is None and isinstance(c["text"], str) and c["grid"] == 3
        assert len(c["symbols"]) <= len(c["attention"]) <= len(c["symbols"]) + 1
        assert all(len(row) == 9 for row in c["attention"])
    alone = serve_client.post("/api/caption", files=[("files", ("a.png", good, "image/png"))],
                              data={"beam": "2"}).json()["results"][0]
    assert alone["text"] == out[0]["text"] and "attention" not in alone


def test_caption_refuses_non_images_oversized_uploads_and_bad_options(serve_client):
    files = [("files", ("a.png", png(), "image/png")),
             ("files", ("notes.txt", b"hello", "text/plain")),
             ("files", ("empty.jpg", b"", "image/jpeg")),
             ("files", ("x.svg", b"<svg/>", "image/svg"))]
    mixed = serve_client.post("/api/caption", files=files)
    assert mixed.status_code == 200  # the photo is captioned, each bad file named alone
    out = mixed.json()["results"]
    assert out[0]["error"] is None and isinstance(out[0]["text"], str)
    assert [c["error"].split(":")[0] for c in out[1:]] == ["notes.txt", "empty.jpg", "x.svg"]
    text = serve_client.post("/api/caption", files=files[1:])
    assert text.status_code == 415 and "none of the files" in text.json()["error"]
    huge = b"\x89PNG" + b"0" * 600_000  # over the 0.5 MB limit
    big = serve_client.post("/api/caption", files=[("files", ("big.png", huge, "image/png"))])
    assert big.status_code == 413 and "limit" in big.json()["error"]
    beam = serve_client.post("/api/caption", files=[("files", ("a.png", png(), "image/png"))],
                             data={"beam": "0"})
    assert beam.status_code == 422 and "beam" in beam.json()["error"]
    assert serve_client.post("/api/caption").status_code == 422  # no files
    assert serve_client.get("/healthz").status_code == 200  # still up


def test_uploads_never_use_the_client_file_name_and_leave_no_file(serve_client, tmp_path):
    import tempfile
    from pathlib import Path

    secret = tmp_path / "secret.png"
    secret.write_bytes(png(colour=(0, 0, 255)))
    name = str(secret)  # a path on the server named by the client: must not be read
    out = serve_client.post("/api/caption", files=[("files", (name, jpeg()[:300], "image/jpeg"))])
    [item] = out.json()["results"]
    assert item["filename"] == name and "truncated" in item["error"]  # its own bytes were used
    assert not list(Path(tempfile.gettempdir()).glob("seqgen-serve-*"))


def test_missing_model_is_404(tiny_checkpoints):
    app = create_app({"translation": tiny_checkpoints["translation"]})
    with TestClient(app, base_url=LOCAL) as client:
        response = client.post("/api/caption", files=[("files", ("x.png", png(), "image/png"))])
        assert response.status_code == 404 and "captioning" in response.json()["error"]
        assert [m["task"] for m in client.get("/api/models").json()["models"]] == ["translation"]


def test_other_hosts_and_cross_origin_posts_are_refused(serve_client):
    assert serve_client.get("/healthz", headers={"host": "evil.example"}).status_code == 400
    assert serve_client.get("/healthz", headers={"host": "127.0.0.1.nip.io"}).status_code == 400
    files = [("files", ("a.png", png(), "image/png"))]
    cross = serve_client.post("/api/caption", files=files,
                              headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    same = serve_client.post("/api/caption", files=files, headers={"origin": LOCAL})
    assert same.status_code == 200
