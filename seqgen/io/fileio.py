"""Low-level file helpers every layer may use: text reading (plain or gzipped), line splitting,
and atomic writes (a crash mid-write never leaves a truncated file behind).

Lines are split on "\\n" (and "\\r\\n") only. ``str.splitlines`` also splits on U+2028/U+2029,
form feeds, \\x1c-\\x1e, \\x85 and a bare "\\r", which would make outputs stop lining up with
inputs; nothing in seqgen uses it on user text.
"""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

BOM = "\ufeff"


def split_lines(text: str) -> list[str]:
    """One entry per "\\n"-terminated line; a final newline does not add an empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def decode_lines(raw: bytes) -> tuple[list[str], list[int]]:
    """UTF-8 lines from raw bytes, decoded one line at a time.

    A line that is not valid UTF-8 becomes "" so the others keep their places.

    Returns:
        The lines, and the 1-based numbers of the lines that could not be decoded.
    """
    if not raw:
        return [], []
    chunks = raw.split(b"\n")
    if chunks[-1] == b"":
        chunks.pop()
    lines, bad = [], []
    for number, chunk in enumerate(chunks, start=1):
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            line = ""
            bad.append(number)
        lines.append(line.removeprefix(BOM) if number == 1 else line)
    return lines, bad


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a plain or gzipped file; a one-line error names a missing or unreadable one."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path} is a damaged gzip file ({err})") from None
    return raw


def read_text(path: str | Path) -> str:
    """UTF-8 text from a plain or gzipped file (a leading byte-order mark is dropped)."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (plain or gzipped), split on "\\n" only."""
    return split_lines(read_text(path))


# ------------------------------------------------------------------------------------------------
def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_orphans(folder: str | Path, pattern: str = ".*.tmp") -> int:
    """Deletes the temporary files of atomic writes cut short by a kill; returns how many."""
    orphans = list(Path(folder).glob(pattern))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return len(orphans)


# ------------------------------------------------------------------------------------------------
class WriteFailed(OSError):
    """A file the system refused to write (disk full, over quota, read-only, no permission), as
    one line that names the file."""


def os_error_behind(err: BaseException) -> OSError | None:
    """The ``OSError`` behind ``err``: itself, or one it was raised from or during (torch's
    writer turns ``[Errno 28]`` into a ``RuntimeError`` about its zip container)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def write_failure(err: BaseException, path: str | Path) -> WriteFailed | None:
    """A one-line :class:`WriteFailed` naming ``path`` when ``err`` comes from the file system
    (see :func:`os_error_behind`); None for any other error (a bug keeps its traceback)."""
    cause = os_error_behind(err)
    if cause is None:
        return None
    if isinstance(cause, WriteFailed):
        return cause
    reason = os.strerror(cause.errno) if cause.errno else (str(cause) or type(cause).__name__)
    failed = WriteFailed(f"cannot write {path}: {reason.lower()}")
    failed.errno = cause.errno
    return failed
