"""Streaming readers for the table files users already have: TSV (no header; extra columns
ignored, as in the Tatoeba/Anki files), CSV (a header row), JSONL (one object per line), plain
or gzipped, and line-aligned text files. Task-agnostic: translation reads pairs with them,
summarisation and headlines read fields.

A field is named by its 0-based column index (``"1"``) or by its header / key (``"fra"``).
Bad input is one line naming the file and row, never a traceback.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import IO, Iterator

FORMATS = ("tsv", "csv", "jsonl")
_SUFFIXES = {".tsv": "tsv", ".txt": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".json": "jsonl"}


def detect_format(path: str | Path, declared: str = "") -> str:
    """``declared`` when given, else the format the file's extension (before .gz) says."""
    if declared:
        if declared not in FORMATS:
            raise ValueError(f"unknown format {declared!r}; expected one of {', '.join(FORMATS)}")
        return declared
    name = Path(path).name.lower().removesuffix(".gz")
    fmt = _SUFFIXES.get(Path(name).suffix)
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path} from its extension; pass the format "
                         f"(tsv, csv or jsonl), e.g. --pairs-format tsv")
    return fmt


def open_text(path: str | Path, *, newline: str = "\n") -> IO[str]:
    """A UTF-8 text stream of a plain or gzipped file (a byte-order mark is dropped); lines end
    at "\n" only (``newline=""`` for the csv module)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline=newline)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based number, line without its ending), a one-line error on bad bytes."""
    with open_text(path) as handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: line {number + 1} is not UTF-8 ({err.reason})") from None
        except (OSError, EOFError) as err:
            raise ValueError(f"{path} is a damaged gzip file ({err})") from None


def header(path: str | Path, fmt: str) -> list[str] | None:
    """A CSV's column names (None for TSV and JSONL)."""
    if fmt != "csv":
        return None
    with open_text(path, newline="") as handle:
        return next(csv.reader(handle), [])


def records(path: str | Path, fmt: str) -> Iterator[tuple[int, list[str] | dict]]:
    """(row number, row) of every non-blank row: a list of columns (TSV, CSV without its
    header row) or a dict (JSONL)."""
    path = Path(path)
    if fmt == "csv":
        with open_text(path, newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            try:
                for row in reader:
                    if row:
                        yield reader.line_num, row
            except csv.Error as err:
                raise ValueError(f"{path}: line {reader.line_num}: {err}") from None
        return
    for number, line in _lines(path):
        if not line.strip():
            continue
        if fmt == "tsv":
            yield number, line.split("\t")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {number} is not JSON ({err.msg})") from None
        if not isinstance(row, (dict, list)):
            raise ValueError(f"{path}: line {number} is not a JSON object")
        yield number, row


def resolve_field(path: str | Path, fmt: str, field: str, columns: list[str] | None) -> int | str:
    """A column index, or a JSONL key, for ``field`` (an index, a header or a key)."""
    if str(field).lstrip("-").isdigit():
        return int(field)
    if fmt == "tsv":
        raise ValueError(f"{path} is TSV without a header: name its columns by 0-based index "
                         f"(e.g. --src-field 1 --tgt-field 0), not {field!r}")
    if fmt == "csv":
        if field not in (columns or []):
            raise ValueError(f"{path} has no column {field!r} (columns: {', '.join(columns or [])})")
        return columns.index(field)
    return field


def pick(path: str | Path, number: int, row: list[str] | dict, field: int | str) -> str:
    """The text of one field of one row, or a one-line error."""
    try:
        if isinstance(row, dict):
            value = row[field] if isinstance(field, str) else list(row.values())[field]
        else:
            value = row[field]
    except (KeyError, IndexError, TypeError):
        name = f"key {field!r}" if isinstance(field, str) else f"column {field} (0-based)"
        raise ValueError(f"{path}: row {number} has no {name}") from None
    return "" if value is None else str(value).strip()


def fields(path: str | Path, fmt: str, names: list[str]) -> Iterator[tuple[str, ...]]:
    """The named fields of every row, stripped, e.g. ``fields(p, "tsv", ["1", "0"])``."""
    columns = header(path, fmt)
    keys = [resolve_field(path, fmt, name, columns) for name in names]
    for number, row in records(path, fmt):
        yield tuple(pick(path, number, row, key) for key in keys)


# ------------------------------------------------------------------------------------------------
def count_lines(path: str | Path) -> int:
    """Lines of a plain or gzipped text file, streamed ("\\n"-terminated; a last line without
    one counts)."""
    count = 0
    for count, _ in _lines(Path(path)):
        pass
    return count


def aligned(src: str | Path, tgt: str | Path) -> Iterator[tuple[str, str]]:
    """Stripped line pairs of two line-aligned files; a one-line error when their line counts
    differ (checked before anything is yielded)."""
    n_src, n_tgt = count_lines(src), count_lines(tgt)
    if n_src != n_tgt:
        raise ValueError(f"{Path(src).name} has {n_src} lines but {Path(tgt).name} has {n_tgt}; "
                         "the files must be line-aligned")
    for (_, s), (_, t) in zip(_lines(Path(src)), _lines(Path(tgt))):
        yield s.strip(), t.strip()
