"""The server's request queue: jobs of one key share a call, cancelled jobs are never run, the
worker survives cancellation at any moment, and a full queue refuses new work with Busy. Order
comes from events (a gate the call blocks on, a count of queued jobs), never from sleeping."""
from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from conftest import queued_after

from seqgen.serve.batching import Batcher, Busy, ClientGone


class Gate:
    """A call that blocks on its first batch (key "slow") until released, and records items."""

    def __init__(self) -> None:
        self.started, self.release, self.calls = threading.Event(), threading.Event(), []

    def __call__(self, key, items):
        self.calls.append(list(items))
        if key == "slow":
            self.started.set()
            assert self.release.wait(10)
        return [f"{key}:{i}" for i in items]


async def cancel(task: asyncio.Future) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_cancelled_requests_are_skipped_and_the_worker_keeps_serving(caplog, monkeypatch):
    gate = Gate()
    batcher = Batcher(gate, wait_ms=1)

    async def scenario():
        queued_all = queued_after(batcher, 3, monkeypatch)
        running = asyncio.ensure_future(batcher.run("slow", [1]))
        await asyncio.to_thread(gate.started.wait, 10)
        queued = [asyncio.ensure_future(batcher.run("a", [i])) for i in (2, 3)]
        await asyncio.wait_for(queued_all.wait(), 10)  # both waiting behind the running batch
        await cancel(queued[0])
        await cancel(running)  # already running: it finishes, its result is dropped
        gate.release.set()
        return await asyncio.wait_for(queued[1], 10), await asyncio.wait_for(
            batcher.run("a", [4]), 10)

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(scenario()) == (["a:3"], ["a:4"])
    assert [2] not in gate.calls and [1] in gate.calls  # the cancelled queued job never ran
    assert batcher.stats.skipped == 1 and not caplog.records  # no InvalidStateError anywhere
    batcher.close()


def test_a_client_that_leaves_cancels_its_queued_job(monkeypatch):
    gate = Gate()
    batcher = Batcher(gate, wait_ms=1)
    left = asyncio.Event()

    async def gone() -> bool:
        return left.is_set()

    async def scenario():
        queued_both = queued_after(batcher, 2, monkeypatch)
        first = asyncio.ensure_future(batcher.run("slow", [1]))
        await asyncio.to_thread(gate.started.wait, 10)
        abandoned = asyncio.ensure_future(batcher.run("a", [2], gone=gone, poll_s=0.01))
        await asyncio.wait_for(queued_both.wait(), 10)  # queued behind the running batch
        left.set()
        with pytest.raises(ClientGone):
            await asyncio.wait_for(abandoned, 10)
        gate.release.set()
        return await first, await asyncio.wait_for(batcher.run("a", [3], gone=gone), 10)

    assert asyncio.run(scenario()) == (["slow:1"], ["a:3"])
    assert gate.calls == [[1], [3]]
    batcher.close()


def test_batcher_merges_same_key_and_splits_results_back():
    """Jobs queued while the worker is busy are all waiting when it next collects, so they are
    merged by key whatever the machine's speed (``wait_ms`` only matters for jobs yet to come)."""
    gate = Gate()
    batcher = Batcher(gate, wait_ms=1)
    busy = batcher.submit("slow", [0])
    assert gate.started.wait(10)
    futures = [batcher.submit("a", [1, 2]), batcher.submit("b", [3]), batcher.submit("a", [4])]
    gate.release.set()
    results = [f.result(timeout=10) for f in futures]
    assert busy.result(timeout=10) == ["slow:0"]
    assert results == [["a:1", "a:2"], ["b:3"], ["a:4"]]
    assert gate.calls == [[0], [1, 2, 4], [3]]  # one call per key, in order of first arrival
    failing = Batcher(lambda key, items: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.submit("a", [1]).result(timeout=10)
    batcher.close(), failing.close()


def test_a_full_queue_refuses_with_busy_and_a_retry_time():
    gate = Gate()
    batcher = Batcher(gate, wait_ms=1, max_queued_items=3)
    running = batcher.submit("slow", [1])
    assert gate.started.wait(10)
    waiting = batcher.submit("a", [2, 3])
    with pytest.raises(Busy) as busy:
        batcher.submit("a", [4, 5])
    assert busy.value.retry_after >= 1 and "busy" in str(busy.value)
    assert batcher.submit("a", [6]).cancel()  # fits exactly; cancelled, it frees nothing yet
    gate.release.set()
    assert running.result(10) == ["slow:1"] and waiting.result(10) == ["a:2", "a:3"]
    assert batcher.submit("a", [7, 8, 9]).result(10) == ["a:7", "a:8", "a:9"]  # room again
    assert batcher.stats.refused == 1
    alone = Batcher(lambda key, items: list(items), max_queued_items=1)
    assert alone.submit("a", [1, 2, 3]).result(10) == [1, 2, 3]  # an empty queue takes any job
    batcher.close(), alone.close()


def test_a_failing_call_fails_its_jobs_only():
    def call(key, items):
        if key == "bad":
            raise ValueError("bad batch")
        return list(items)

    batcher = Batcher(call, wait_ms=20)
    bad, good = batcher.submit("bad", [1]), batcher.submit("good", [2])
    with pytest.raises(ValueError, match="bad batch"):
        bad.result(10)
    assert good.result(10) == [2] and batcher.submit("good", [3]).result(10) == [3]
    batcher.close()
