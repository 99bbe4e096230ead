"""Benchmark: ``seqgen serve`` under load, and what batching concurrent requests gains.

    python tests/bench/bench_serve.py                # 200 mixed requests, 20 concurrent clients
    python tests/bench/bench_serve.py --dry-run      # 20 requests, 4 clients: checks it runs

Starts the server (bundled models) on 127.0.0.1 on a free port, sends a fixed mix of requests
(60% translations, 20% sampled headlines, 10% streamed headlines, 10% photo captions) first from
``--clients`` concurrent clients, then the same requests one at a time, each phase bounded by
``--time-limit`` seconds. Prints errors, p50/p95 latency and requests/s of both phases; the
batching gain is the concurrent requests/s over the one-at-a-time requests/s (the server runs one
search at a time per model, so the gain comes from requests sharing batched searches, and from the
three models working side by side). The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from machine import describe_cpu
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
             "Eine Frau liest ein Buch im Park.", "Kinder spielen Fußball auf einer Wiese.",
             "Ein Mann in einem roten Hemd kocht.", "Eine Gruppe von Menschen steht vor einem Gebäude."]
PROMPTS = ["Today ", "Moscow, ", "President ", "Oil prices ", "On Sunday "]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (40 * i % 255, 90, 200 - 30 * i % 200)).save(out, format="JPEG")
    return out.getvalue()


def requests(n: int) -> list[tuple[str, dict]]:
    """A fixed mix: (kind, arguments for httpx) per request."""
    out = []
    for i in range(n):
        slot = i % 10
        if slot < 6:
            out.append(("translate", dict(method="POST", url="/api/translate",
                                          json={"texts": [SENTENCES[i % len(SENTENCES)]]})))
        elif slot < 8:
            out.append(("generate", dict(method="POST", url="/api/generate", json={
                "prompt": PROMPTS[i % len(PROMPTS)], "temperature": 0.8, "seed": i, "max_len": 60})))
        elif slot == 8:
            out.append(("stream", dict(method="GET", url="/api/generate/stream", params={
                "prompt": PROMPTS[i % len(PROMPTS)], "temperature": 0.8, "seed": i, "max_len": 60})))
        else:
            out.append(("caption", dict(method="POST", url="/api/caption",
                                        files=[("files", (f"{i}.jpg", photo(i), "image/jpeg"))])))
    return out


# ------------------------------------------------------------------------------------------------
def run_phase(base: str, todo: list[tuple[str, dict]], clients: int, limit: float) -> dict:
    """Sends every request from ``clients`` threads; latencies of those that finished in time."""
    deadline = time.monotonic() + limit
    latencies, errors = [], []

    def send(http: httpx.Client, kind: str, args: dict) -> None:
        if time.monotonic() > deadline:
            return
        start = time.monotonic()
        try:
            response = http.request(**args)
            ok = response.status_code == 200 and (kind != "stream" or "event: end" in response.text)
        except httpx.HTTPError as err:
            errors.append(f"{kind}: {type(err).__name__}: {err}")
            return
        if not ok:
            errors.append(f"{kind}: HTTP {response.status_code} {response.text[:120]}")
        else:
            latencies.append(time.monotonic() - start)

    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=limit) as http, ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda item: send(http, *item), todo))
    seconds = time.monotonic() - start
    latencies.sort()
    pick = lambda q: round(latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000, 1)  # noqa: E731
    return {"clients": clients, "done": len(latencies), "errors": len(errors),
            "not_sent": len(todo) - len(latencies) - len(errors), "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 2),
            "p50_ms": pick(0.5) if latencies else None, "p95_ms": pick(0.95) if latencies else None,
            "first_errors": errors[:5]}


def start_server(port: int, log: Path, wait: float = 180.0) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "seqgen.cli.main", "serve", "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}): {log.read_text()[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the server did not answer within {wait:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--dry-run", action="store_true", help="20 requests, 4 clients")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.requests, args.clients, args.time_limit = 20, 4, 60.0
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(port, Path(folder) / "server.log")
        try:
            base, todo = f"http://127.0.0.1:{port}", requests(args.requests)
            run_phase(base, todo[:10], 1, args.time_limit)  # warm-up (first calls, caches)
            together = run_phase(base, todo, args.clients, args.time_limit)
            alone = run_phase(base, todo, 1, args.time_limit)
        finally:
            server.terminate()
            server.wait(timeout=30)
    for name, phase in (("concurrent", together), ("one at a time", alone)):
        print(f"{name:>14}: {phase['done']} done, {phase['errors']} errors, "
              f"{phase['not_sent']} not sent in time; {phase['requests_per_s']} requests/s, "
              f"p50 {phase['p50_ms']} ms, p95 {phase['p95_ms']} ms")
        for line in phase["first_errors"]:
            print(f"{'':>16}{line}")
    gain = (round(together["requests_per_s"] / alone["requests_per_s"], 2)
            if alone["requests_per_s"] else None)
    print(f"batching gain (concurrent / one at a time requests/s): {gain}")
    print(json.dumps({"concurrent": together, "one_at_a_time": alone, "gain": gain,
                      "machine": describe_cpu()}))
    return 1 if together["errors"] or alone["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
