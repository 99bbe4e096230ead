"""Headless matplotlib figures for the attention pictures, saved and always closed, and the
source x output heatmap every task with a text source draws."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence


@contextmanager
def figure(path: str | Path, *, dpi: int, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    """``plt.subplots(**subplots)`` for the caller to draw on; saved to ``path`` (folders made)
    when the block ends, and closed even when drawing or saving fails."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def save_attention_heatmap(source: Sequence[str], target: Sequence[str], attention: Any,
                           path: str | Path, *, xlabel: str = "source",
                           ylabel: str = "output") -> None:
    """Source symbols along x, generated symbols along y, one cell per attention weight.

    Args:
        source: the source symbols (the encoder also saw an end marker after them).
        target: the generated symbols (the decoder also attended when it chose the end).
        attention: (len(target) + 1, S) weights (a tensor).
        xlabel, ylabel: the axes' names (``source`` / ``translation``, ``article`` / ...).
    """
    src_labels = [*readable(source), "</s>"]
    weights = attention.float().cpu()[: len(target) + 1, : len(src_labels)]
    tgt_labels = [*readable(target), "</s>"][: weights.size(0)]
    size = (max(4.0, 0.4 * len(src_labels) + 1.5), max(3.0, 0.35 * len(tgt_labels) + 1.5))
    with figure(path, dpi=120, figsize=size) as (_, ax):
        ax.imshow(weights.numpy(), cmap="viridis", aspect="auto", vmin=0.0)
        ax.set_xticks(range(len(src_labels)), src_labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(tgt_labels)), tgt_labels, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)


def readable(pieces: Sequence[str]) -> list[str]:
    """Labels for subword pieces: a word's first piece without SentencePiece's "▁" marker, the
    letters that continue a word after a hyphen ("fähr", "-t"), attached punctuation as it is."""
    if not any(p.startswith("\u2581") for p in pieces):
        return list(pieces)  # words, not pieces
    return [p[1:] or "_" if p.startswith("\u2581") else f"-{p}" if p[:1].isalnum() else p
            for p in pieces]
