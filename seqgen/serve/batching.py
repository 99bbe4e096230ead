"""The small request queue behind the server: jobs that arrive within a few milliseconds of each
other and ask for the same search share one batched call, and each gets its own slice back.

    batcher = Batcher(lambda key, items: pipe.translate(items, key), wait_ms=5)
    results = await batcher.run(options, ["Ein Hund .", "Eine Katze ."], gone=request.is_disconnected)

One worker thread per model runs the calls, so a model never decodes two batches at once; the
event loop only waits on futures. ``lock`` is shared with anything else that uses the same model
(the streaming endpoint takes it around each step).

Abandoned work is dropped: a job whose future was cancelled (its request's task cancelled, or its
client gone, see :meth:`Batcher.run`) before its batch starts is never run; a batch already
running finishes (the pipeline cannot be interrupted) and its result for a gone client is thrown
away. The queue is bounded by the number of items waiting: past ``max_queued_items`` a new job is
refused with :class:`Busy` (the app's 503 with ``Retry-After``).
"""
from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Hashable, Sequence

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """The queue already holds too much work; try again in ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client of a job went away before its results came; the job was cancelled."""


@dataclass
class Job:
    key: Hashable  # jobs with equal keys may be merged (e.g. the same search options)
    items: list
    future: Future = field(default_factory=Future)


@dataclass
class Stats:
    jobs: int = 0  # jobs run (cancelled ones not counted)
    calls: int = 0
    items: int = 0
    seconds: float = 0.0  # spent in calls
    skipped: int = 0  # jobs cancelled before their batch started, never run
    refused: int = 0  # jobs refused with Busy


class Batcher:
    """Collects jobs for up to ``wait_ms``, merges those with equal keys, runs ``call(key, items)``
    once per key and splits the results back (``call`` returns one result per item, in order).

    Args:
        max_items: the most items one round of batching collects.
        max_queued_items: the most items waiting (not yet taken by the worker); a job that would
            go past it is refused with :class:`Busy`, unless the queue is empty (one job larger
            than the bound is still served, alone).
    """

    def __init__(self, call: Callable[[Hashable, list], Sequence], *, wait_ms: float = 5.0,
                 max_items: int = 256, max_queued_items: int = 1024,
                 lock: threading.Lock | None = None, name: str = "batcher") -> None:
        self.call, self.wait, self.max_items = call, wait_ms / 1000, max_items
        self.max_queued_items = max_queued_items
        self.lock = lock or threading.Lock()
        self.stats = Stats()
        self._queued = 0  # items in the queue, guarded by _count
        self._count = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, items: Sequence) -> Future:
        """Queues one job; its future gets the list of results (or the call's exception).

        Raises:
            Busy: the queue is full.
        """
        job = Job(key, list(items))
        with self._count:
            if self._queued and self._queued + len(job.items) > self.max_queued_items:
                self.stats.refused += 1
                raise Busy(f"the server is busy ({self._queued} items queued); try again later",
                           retry_after=self._retry_after())
            self._queued += len(job.items)
        self._queue.put(job)
        return job.future

    async def run(self, key: Hashable, items: Sequence, *,
                  gone: Callable[[], Awaitable[bool]] | None = None,
                  poll_s: float = 0.25) -> list:
        """The results of one job. Cancelling the awaiting task cancels the job; so does
        ``gone()`` turning true (e.g. ``request.is_disconnected``, polled every ``poll_s``).

        Raises:
            Busy: the queue is full.
            ClientGone: ``gone()`` said the client left; the job was cancelled.
        """
        job = self.submit(key, items)
        waiting = asyncio.wrap_future(job)  # its cancellation cancels ``job`` too, if not running
        try:
            if gone is None:
                return await waiting
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=poll_s)
                if done:
                    return waiting.result()
                if await gone():
                    raise ClientGone("the client disconnected")
        except BaseException:
            job.cancel()  # a no-op once its batch runs; then the result is dropped
            waiting.cancel()
            raise

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _retry_after(self) -> int:
        """Seconds until the queued items are likely done, from the calls so far (1 to 60)."""
        per_item = self.stats.seconds / self.stats.items if self.stats.items else 0.05
        return int(min(max(math.ceil(per_item * self._queued), 1), 60))

    # --------------------------------------------------------------------------------------------
    def _take(self, timeout: float | None = None) -> Job | None:
        job = self._queue.get(timeout=timeout)
        if job is not None:
            with self._count:
                self._queued -= len(job.items)
        return job

    def _loop(self) -> None:
        while True:
            first = self._take()
            if first is None:
                return
            jobs, total = [first], len(first.items)
            deadline = time.monotonic() + self.wait
            while total < self.max_items:
                try:
                    job = self._take(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this round
                    break
                if job.future.cancelled():  # takes no room in the batch
                    self.stats.skipped += 1
                    continue
                jobs.append(job)
                total += len(job.items)
            for group in _by_key(jobs):
                try:
                    self._run_group(group)
                except Exception:  # noqa: BLE001 - never stop serving the model
                    log.exception("batcher %s: a batch failed unexpectedly", self._thread.name)

    def _run_group(self, jobs: list[Job]) -> None:
        # from here on a job cannot be cancelled, so setting its result cannot fail
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        self.stats.skipped += len(jobs) - len(live)
        if not live:
            return
        items = [item for job in live for item in job.items]
        start_time = time.perf_counter()
        try:
            with self.lock:
                results = list(self.call(live[0].key, items)) if items else []
            if len(results) != len(items):
                raise RuntimeError(f"batched call gave {len(results)} results for {len(items)}")
        except BaseException as err:  # noqa: BLE001 - handed to every waiting request
            for job in live:
                job.future.set_exception(err)
            return
        finally:
            self.stats.seconds += time.perf_counter() - start_time
        self.stats.jobs += len(live)
        self.stats.calls += 1
        self.stats.items += len(items)
        start = 0
        for job in live:
            job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)


def _by_key(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by key, groups in order of their first job, jobs in arrival order."""
    groups: dict[Hashable, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return list(groups.values())
