"""The runner's checks: each stops a run that cannot go well with a :class:`RunError` (one line
and an exit code: 2), before anything is written where possible (a folder another training holds,
a different model in the folder, no validation data, an unreadable checkpoint, a write the disk
refuses). Only :func:`seqgen.training.runner.run` and the CLI turn a RunError into an exit
code, so the runner can be called from Python."""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ..data.batch import DataModule
from ..io.checkpoint import CheckpointError, load_checkpoint
from ..io.config import to_dict
from ..io.fileio import WriteFailed, os_error_behind
from .distributed import is_rank0
from .runfolder import RunFolderBusy, RunLock

NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


class RunError(Exception):
    """A run cannot go on: ``str(err)`` is the one line to show (empty on the ranks that stay
    silent under torchrun), ``code`` the exit code (2: bad input or a full disk, 130: stopped
    by Ctrl-C or SIGTERM, resumable)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def locked(run_dir: str | Path) -> Iterator[None]:
    """Holds the run folder's lock (rank 0 only, under torchrun); a folder another training
    holds exits 2 with one line naming that process."""
    if not is_rank0():
        yield
        return
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunFolderBusy as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot use {run_dir} as the run folder: {os.strerror(err.errno or 0).lower()}")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def write_errors() -> Iterator[None]:
    """Turns a write the file system refuses (disk full, no permission) into one line and exit
    2; the checkpoint it would have replaced is intact, so a rerun resumes from it."""
    try:
        yield
    except WriteFailed as err:
        fail(f"{err}{_space_hint(err.errno)}")
    except (OSError, RuntimeError) as err:  # a write outside the checkpoint code
        cause = os_error_behind(err)
        if cause is None or cause.errno not in NO_SPACE:
            raise
        where = f" {cause.filename}" if cause.filename else " in the run folder"
        fail(f"cannot write{where}: {os.strerror(cause.errno).lower()}"
             f"{_space_hint(cause.errno)}")


def _space_hint(code: int | None) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "; free some space and rerun the same command to resume"
    return ""


def check_validation(data: DataModule) -> None:
    """Exits 2 (one line) when the data has no validation batch: the run could neither be
    evaluated nor keep a best checkpoint, and would fail only at the very end."""
    if next(iter(data.val_batches()), None) is None:
        fail("the data has no validation examples, so training could not be evaluated; give "
             "more examples or a validation file")


def previous_run(run_dir: str | Path, *, resume: bool) -> dict | None:
    """The checkpoint to resume from, if the run folder has one and resuming is wanted."""
    path = Path(run_dir) / "last.pt"
    if not resume or not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        fail(f"{err}; delete it or pass --no-resume")
    return ckpt if ckpt.get("trainer") else None


def fail(message: str, code: int = 2) -> None:
    """Stops the run with ``error: message`` (a :class:`RunError`; never a traceback)."""
    raise RunError(f"error: {message}", code)


def config_changes(saved: dict, current: dict, prefix: str) -> list[str]:
    """``key=old (now new)`` for every leaf that differs between two nested config dicts."""
    changes = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{prefix}{key}.")
        elif json.dumps(old) != json.dumps(new):
            changes.append(f"{prefix}{key}={old} (now {new})")
    return changes


def check_same_model(run_dir: Path, previous: dict, model: torch.nn.Module) -> None:
    """Exits 2 before anything is written when the run folder holds a different model."""
    changes = config_changes(previous.get("model_config") or {}, to_dict(model.config), "model.")
    if changes:
        fail(f"{run_dir} was trained with {', '.join(changes)}; pass --no-resume to start over "
             "or choose a new --run-dir")
