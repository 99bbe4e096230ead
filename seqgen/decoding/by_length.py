"""Decoding many source texts at once: rows sorted by length so a batch pads little, results
scattered back to input order, and empty inputs answered without touching the model (one blank
line must not break a batch). Shared by every task whose inputs are source texts."""
from __future__ import annotations

from typing import Callable, Sequence

from .search import Hypothesis

Decode = Callable[[list[Sequence[int]]], list[list[Hypothesis]]]


def decode_by_length(rows: Sequence[Sequence[int] | None], decode: Decode, *,
                     batch_size: int) -> list[list[Hypothesis]]:
    """Hypotheses per row, in input order.

    Args:
        rows: each input's source ids, or None for an empty input (it gets one empty
            hypothesis, and the model never sees it).
        decode: hypotheses for one batch of rows (the caller pads, moves and searches).
        batch_size: rows per call of ``decode``.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1 (got {batch_size})")
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in rows]
    todo = sorted((i for i, row in enumerate(rows) if row is not None),
                  key=lambda i: len(rows[i]))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        for i, hyps in zip(chunk, decode([rows[i] for i in chunk])):
            results[i] = hyps
    return results
