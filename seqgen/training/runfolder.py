"""A run folder's housekeeping: its lock, so that while a training writes into a folder a second
one is refused, and :func:`set_aside`, which moves an earlier run's files out of a new run's way.

The lock is an advisory ``fcntl.flock`` on ``RUN_DIR/.lock``; the kernel drops it when the holder
exits or crashes, so a stale lock never blocks a rerun. The holder writes its pid, host and start
time into the file, so the refusal can say who holds the folder.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
RUN_FILES = ("*.pt", "metrics.jsonl", "config.json")  # what a run writes into its folder


class RunFolderBusy(RuntimeError):
    """Another process is training in the run folder (one line naming it)."""


class RunLock:
    """The lock on one run folder; use as a context manager, or :meth:`acquire` and
    :meth:`release`. The folder is created if needed, and removed again on release if the lock
    file is all it ever held (a run refused before it wrote anything leaves no trace)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> "RunLock":
        """Takes the lock.

        Raises:
            RunFolderBusy: another process holds it.
        """
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                log.warning("cannot lock %s (%s); two runs could write into it", self.path, err)
                self._fd = fd
                return self
            os.close(fd)
            raise RunFolderBusy(f"{self.run_dir} is in use by another training "
                                f"({holder(self.path)}); wait for it to end, or choose another "
                                "--run-dir") from None
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(fd, (json.dumps(record) + "\n").encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Gives the lock back (the kernel would on exit anyway)."""
        if self._fd is None:
            return
        if self._created and [p.name for p in self.run_dir.iterdir()] == [LOCK_NAME]:
            self.path.unlink(missing_ok=True)
            try:
                self.run_dir.rmdir()
            except OSError:
                pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: str | Path) -> str:
    """Who holds a lock, as the holder recorded it: "pid 4242 on host gpu1, started ..."."""
    try:
        record = json.loads(Path(path).read_text())
        return f"pid {record['pid']} on host {record['host']}, started {record['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


# ------------------------------------------------------------------------------------------------
def set_aside(run_dir: str | Path) -> Path | None:
    """Moves the files of an earlier run (checkpoints, metrics log, config) into a dated
    subfolder such as ``previous-20261130-181500``, so a new run never mixes with them.

    Returns:
        The subfolder, or None when there was nothing to move.
    """
    run_dir = Path(run_dir)
    files = sorted({p for pattern in RUN_FILES for p in run_dir.glob(pattern) if p.is_file()})
    if not files:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest, n = run_dir / f"previous-{stamp}", 1
    while dest.exists():
        n += 1
        dest = run_dir / f"previous-{stamp}-{n}"
    dest.mkdir()
    for path in files:
        os.replace(path, dest / path.name)
    return dest
