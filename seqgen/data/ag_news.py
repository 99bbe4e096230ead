"""AG News as it is distributed: CSV rows of (class, title, description), plain or gzipped, whose
text lost the "&" of its HTML entities. Read by every task that trains on it (headlines from
titles, summaries from descriptions), with the same clean-up."""
from __future__ import annotations

import csv
import html
import re
from pathlib import Path
from typing import Iterator, Sequence

from .records import open_text

# AG News lost the "&" of its HTML entities to a space: "Kerry #39;s", "  #36;1.88M", " quot;".
_BROKEN_ENTITY = re.compile(r"(?<!&) ?(#\d+|quot|amp|lt|gt);")
_TAG = re.compile(r"<[^>]{0,40}>")


def clean_text(text: str) -> str:
    """Undoes AG News' damaged escapes (' #39;' -> "'", '&lt;b&gt;' tags, ' quot;', backslashes)."""
    text = html.unescape(_BROKEN_ENTITY.sub(r"&\1;", text))
    text = _TAG.sub("", html.unescape(text)).replace("\\", " ")
    return re.sub(r"\s+", " ", text).strip()


def find_split_file(folder: str | Path, split: str, suffixes: Sequence[str] = (".csv",)) -> Path:
    """``folder/split.csv`` or ``folder/split.csv.gz``; a one-line error names what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    for suffix in suffixes:
        for name in (f"{split}{suffix}", f"{split}{suffix}.gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no {split}{suffixes[0]} (or .gz) in {folder}")


def read_ag_news_csv(path: str | Path, *, field: str = "title", clean: bool = True) -> list[str]:
    """Texts from an AG News CSV (class, title, description); empty ones are dropped."""
    return [text for text, _ in read_ag_news_rows(path, field=field, clean=clean)]


def read_ag_news_rows(path: str | Path, *, field: str = "title", clean: bool = True
                      ) -> list[tuple[str, str]]:
    """(text, description) of every row whose text is not empty."""
    return list(iter_ag_news_rows(path, field=field, clean=clean))


def iter_ag_news_rows(path: str | Path, *, field: str = "title", clean: bool = True
                      ) -> Iterator[tuple[str, str]]:
    """:func:`read_ag_news_rows`, streamed."""
    with open_text(path, newline="") as handle:
        for row_no, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}: row {row_no} has {len(row)} column(s); expected "
                                 "class, title, description")
            title, description = row[1], row[2] if len(row) > 2 else ""
            text = (f"{title}. {description}" if field == "title+description" and len(row) > 2
                    else title)
            text = clean_text(text) if clean else text.strip()
            if text:
                yield text, clean_text(description) if clean else description.strip()
