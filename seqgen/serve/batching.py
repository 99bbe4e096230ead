"""The small request queue behind the server: jobs that arrive within a few milliseconds of each
other and ask for the same search share one batched call, and each gets its own slice back.

    batcher = Batcher(lambda key, items: pipe.translate(items, key), wait_ms=5)
    results = await batcher.run(options, ["Ein Hund .", "Eine Katze ."])

One worker thread per model runs the calls, so a model never decodes two batches at once; the
event loop only waits on futures. ``lock`` is shared with anything else that uses the same model
(the streaming endpoint takes it around each step).
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence


@dataclass
class Job:
    key: Hashable  # jobs with equal keys may be merged (e.g. the same search options)
    items: list
    future: Future = field(default_factory=Future)


@dataclass
class Stats:
    jobs: int = 0
    calls: int = 0
    items: int = 0


class Batcher:
    """Collects jobs for up to ``wait_ms``, merges those with equal keys, runs ``call(key, items)``
    once per key and splits the results back (``call`` returns one result per item, in order)."""

    def __init__(self, call: Callable[[Hashable, list], Sequence], *, wait_ms: float = 5.0,
                 max_items: int = 256, lock: threading.Lock | None = None,
                 name: str = "batcher") -> None:
        self.call, self.wait, self.max_items = call, wait_ms / 1000, max_items
        self.lock = lock or threading.Lock()
        self.stats = Stats()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, items: Sequence) -> Future:
        """Queues one job; its future gets the list of results (or the call's exception)."""
        job = Job(key, list(items))
        self._queue.put(job)
        return job.future

    async def run(self, key: Hashable, items: Sequence) -> list:
        return await asyncio.wrap_future(self.submit(key, items))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # --------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, total = [first], len(first.items)
            deadline = time.monotonic() + self.wait
            while total < self.max_items:
                try:
                    job = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this round
                    break
                jobs.append(job)
                total += len(job.items)
            for group in _by_key(jobs):
                self._run_group(group)

    def _run_group(self, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            with self.lock:
                results = list(self.call(jobs[0].key, items)) if items else []
            if len(results) != len(items):
                raise RuntimeError(f"batched call gave {len(results)} results for {len(items)}")
        except BaseException as err:  # noqa: BLE001 - handed to every waiting request
            for job in jobs:
                job.future.set_exception(err)
            return
        self.stats.jobs += len(jobs)
        self.stats.calls += 1
        self.stats.items += len(items)
        start = 0
        for job in jobs:
            job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)


def _by_key(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by key, groups in order of their first job, jobs in arrival order."""
    groups: dict[Hashable, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return list(groups.values())
