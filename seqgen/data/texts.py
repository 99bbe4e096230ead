"""One text per example from a file: plain text (one example per non-empty line), or one field
of a JSONL / CSV file (``--field NAME``: a key, a CSV header or a 0-based index). Streamed, plain
or gzipped; task-agnostic (headlines reads its ``--text-file`` through it)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .records import FORMATS, fields, open_text

TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def text_format(path: str | Path, declared: str = "") -> str:
    """``text`` (plain lines), ``csv`` or ``jsonl``: ``declared``, else by extension."""
    if declared:
        if declared not in ("text", *FORMATS):
            raise ValueError(f"unknown text format {declared!r}; expected text, csv or jsonl")
        return declared
    name = Path(path).name.lower().removesuffix(".gz")
    return TABLE_SUFFIXES.get(Path(name).suffix, "text")


def iter_texts(path: str | Path, *, fmt: str = "", field: str = "") -> Iterator[str]:
    """The stripped, non-empty texts of a file (plain lines, or ``field`` of each row;
    ``field`` defaults to ``text``)."""
    fmt = text_format(path, fmt)
    if fmt == "text":
        with open_text(path) as handle:
            number = 0
            try:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield line.strip()
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}: line {number + 1} is not UTF-8 ({err.reason})") from None
        return
    for (text,) in fields(path, fmt, [field or "text"]):
        if text:
            yield text
