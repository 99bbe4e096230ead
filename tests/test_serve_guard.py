"""The server's edges: Host and Origin checks, the body limit over a real uvicorn server, the
JSON error handlers, and the busy-port check of ``seqgen serve``."""
from __future__ import annotations

import socket

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")  # LiveServer runs it

import httpx  # noqa: E402
from conftest import LiveServer  # noqa: E402
from fastapi import FastAPI, File, UploadFile  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from seqgen.serve.batching import Busy  # noqa: E402
from seqgen.serve.errors import install_error_handlers  # noqa: E402
from seqgen.serve.limits import BodyLimit  # noqa: E402
from seqgen.serve.ports import port_problem  # noqa: E402
from seqgen.serve.security import HostGuard, allowed_hosts, exposure_warning  # noqa: E402

LIMIT = 1_000_000


def little_app(*, host: str = "127.0.0.1") -> FastAPI:
    app = FastAPI()

    @app.post("/up")
    async def up(files: list[UploadFile] = File(...)):
        return {"sizes": [len(await f.read()) for f in files]}

    @app.get("/busy")
    def busy():
        raise Busy("the server is busy", retry_after=7)

    @app.get("/boom")
    def boom():
        raise RuntimeError("bad \udc80 state")

    app.add_middleware(BodyLimit, limit=LIMIT)
    app.add_middleware(HostGuard, hosts=allowed_hosts(host))
    install_error_handlers(app)
    return app


# -- Host and Origin ---------------------------------------------------------------------------
@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:8000", True), ("localhost", True), ("LOCALHOST.:80", True), ("[::1]:8000", True),
    ("evil.example", False), ("127.0.0.1.nip.io:8000", False), ("localhost.evil.example", False),
    ("[::1", False), ("127.0.0.1:notaport", False),
])
def test_only_the_served_host_is_answered(host, ok):
    with TestClient(little_app(), base_url="http://127.0.0.1") as client:
        response = client.get("/nowhere", headers={"host": host})
    assert response.status_code == (404 if ok else 400)
    if not ok:
        assert "host" in response.json()["error"]


def test_cross_origin_posts_are_refused_and_same_origin_or_none_allowed():
    files = [("files", ("a.png", b"x" * 10, "image/png"))]
    with TestClient(little_app(), base_url="http://127.0.0.1:8000") as client:
        assert client.post("/up", files=files).status_code == 200  # no Origin: curl, scripts
        same = client.post("/up", files=files, headers={"origin": "http://127.0.0.1:8000"})
        assert same.status_code == 200
        for origin in ("http://evil.example", "http://127.0.0.1:9000", "null",
                       "http://localhost:8000", "file://"):
            response = client.post("/up", files=files, headers={"origin": origin})
            assert response.status_code == 403 and "cross-origin" in response.json()["error"]
        assert client.get("/nowhere", headers={"origin": "http://evil.example"}).status_code == 404


def test_the_named_host_is_accepted_and_every_address_accepts_any():
    with TestClient(little_app(host="box.lan"), base_url="http://box.lan") as client:
        assert client.get("/nowhere").status_code == 404
        assert client.get("/nowhere", headers={"host": "evil.example"}).status_code == 400
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("::") is None


def test_exposure_warning_only_off_loopback():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert exposure_warning(host) is None
    line = exposure_warning("0.0.0.0")
    assert "no authentication" in line and "\n" not in line
    assert "192.168.1.5" in exposure_warning("192.168.1.5")


# -- error handlers ----------------------------------------------------------------------------
def test_busy_is_503_with_retry_after_and_crashes_are_json():
    with TestClient(little_app(), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        busy = client.get("/busy")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
        assert busy.json() == {"error": "the server is busy"}
        boom = client.get("/boom")
        assert boom.status_code == 500
        assert boom.json()["error"].startswith("internal error: RuntimeError: bad ")


# -- the body limit over a real server ---------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    """The little app over uvicorn; its port listens before uvicorn starts, so the tests connect
    at once (the clients' timeouts only turn a hang into a failure)."""
    with LiveServer(little_app()) as live:
        yield live.url


def multipart(size: int):
    yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    for start in range(0, size, 1 << 16):
        yield b"0" * min(1 << 16, size - start)
    yield b"\r\n--b--\r\n"


def test_an_over_limit_upload_gets_a_readable_413_and_the_connection_lives_on(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        small = client.post("/up", files=[("files", ("a.png", b"0" * 1000))])
        assert small.json() == {"sizes": [1000]}
        big = client.post("/up", files=[("files", ("a.png", b"0" * 12_000_000))])
        assert big.status_code == 413 and "limit" in big.json()["error"]
        assert big.headers.get("connection") != "close"  # drained: the connection is reused
        chunked = client.post("/up", content=multipart(3_000_000),
                              headers={"content-type": "multipart/form-data; boundary=b"})
        assert chunked.status_code == 413 and "limit" in chunked.json()["detail"]
        assert client.post("/up", content=multipart(1000), headers={
            "content-type": "multipart/form-data; boundary=b"}).json() == {"sizes": [1000]}


def test_expect_100_continue_gets_the_413_before_sending_the_body(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12000000\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer


# -- the busy-port check -----------------------------------------------------------------------
def test_a_listening_port_is_busy_and_a_free_one_is_not():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        problem = port_problem("127.0.0.1", port)
        assert f"port {port}" in problem and "in use" in problem
    assert port_problem("127.0.0.1", port) is None
    assert "resolve" in port_problem("no-such-host.invalid", 8000)


def test_a_port_left_in_time_wait_is_not_busy():
    """A just-stopped server leaves its connections in TIME_WAIT; uvicorn (SO_REUSEADDR) can
    bind the port again, so the check must not call it busy (a bind without SO_REUSEADDR would)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end waits in TIME_WAIT on ``port``
    listener.close()
    client.settimeout(10)
    assert client.recv(1) == b""  # the server's FIN has arrived: now the client closes
    client.close()
    assert port_problem("127.0.0.1", port) is None
    with socket.socket() as plain, pytest.raises(OSError):  # what SO_REUSEADDR off would say
        plain.bind(("127.0.0.1", port))


def test_cli_serve_on_a_busy_port_says_so_in_one_line_and_exits_2(capsys):
    from seqgen.cli.main import main

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use" in err and "http://" not in err
