"""Where the CLI's inputs come from: the command line, ``--input FILE``, or stdin, read like
``fairseq-interactive``: lines that are already waiting are batched together, and a line typed at
a terminal (or sent down a slow pipe) is answered as soon as it arrives, not at end of input."""
from __future__ import annotations

import os
import select
import sys
from pathlib import Path
from typing import Iterator, Sequence

from ..io.fileio import decode_lines, read_bytes

CHUNK = 1024  # lines answered together at most (a piped file keeps its batched speed)


class UsageError(Exception):
    """A problem with what the user asked for; shown as one line."""


def argv_texts(positional: Sequence[str]) -> tuple[list[str], list[int]]:
    """Command-line texts, and the 1-based numbers of those that are not valid UTF-8 (undecodable
    bytes reach argv as lone surrogates)."""
    texts, bad = [], []
    for number, text in enumerate(positional, start=1):
        try:
            texts.append(text.encode("utf-8", "surrogateescape").decode("utf-8"))
        except UnicodeError:
            texts.append("")
            bad.append(number)
    return texts, bad


def input_chunks(positional: Sequence[str], input_file: str | None
                 ) -> Iterator[tuple[list[str], list[int]]]:
    """Chunks of (lines, 1-based numbers of undecodable lines within the chunk), from the command
    line, else ``--input FILE``, else stdin as it arrives."""
    if positional:
        yield argv_texts(positional)
        return
    if input_file:
        if not Path(input_file).exists():
            raise UsageError(f"input file not found: {input_file}")
        lines, bad = decode_lines(read_bytes(input_file))
        for start in range(0, len(lines), CHUNK):
            yield lines[start:start + CHUNK], [b - start for b in bad
                                               if start < b <= start + CHUNK]
        return
    if sys.stdin is None:
        raise UsageError("give the inputs as arguments, with --input FILE, or on stdin")
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a file (embedding, tests)
        lines, bad = decode_lines(sys.stdin.buffer.read())
        yield lines, bad
        return
    yield from stdin_chunks(fd)


def stdin_chunks(fd: int, *, limit: int = CHUNK) -> Iterator[tuple[list[str], list[int]]]:
    """Complete lines from ``fd`` as they arrive: everything already waiting is one chunk (up to
    ``limit`` lines); when nothing more is waiting, what has come is answered at once."""
    pending, lines = b"", []
    while True:
        waiting = bool(select.select([fd], [], [], 0 if lines else None)[0])
        if lines and (not waiting or len(lines) >= limit):
            yield _decode(lines[:limit])
            lines = lines[limit:]
            continue
        data = os.read(fd, 1 << 16)
        if not data:
            break
        pending += data
        *complete, pending = pending.split(b"\n")
        lines += complete
    if pending:
        lines.append(pending)
    for start in range(0, len(lines), limit):
        yield _decode(lines[start:start + limit])


def _decode(raw: list[bytes]) -> tuple[list[str], list[int]]:
    texts, bad = decode_lines(b"\n".join(raw) + b"\n")
    return texts + [""] * (len(raw) - len(texts)), bad
