"""The decoder's state: what it carries between steps (hidden state, the memory it attends over,
the fed attentional vector), immutable, reordered by beam search with ``index_select``."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

Hidden = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class DecoderState:
    """What the decoder carries between steps. Immutable: every method returns a new state.

    Attributes:
        hidden: (L, B, H), or a (h, c) pair of those for an LSTM.
        memory: (B, S, M) encoder outputs to attend over, or None.
        keys: (B, S, K) attention keys precomputed from the memory, or None.
        mask: (B, S) bool, True at real memory positions, or None.
        attention: (B, T, S) attention weights of the last call, or None (for plotting).
        feed: (B, H) the last attentional vector, with input feeding; else None.
        source: (B, S) source token ids (in the output vocabulary) a copying decoder copies
            from, or None.
        group: each memory row serves this many consecutive batch rows, so memory, keys, mask
            and source have B / group rows. Beams and samples of one input share its memory instead of
            copying it at every reordering (the copies took a quarter of beam-search time).
    """

    hidden: Hidden
    memory: Tensor | None = None
    keys: Tensor | None = None
    mask: Tensor | None = None
    attention: Tensor | None = None
    feed: Tensor | None = None
    group: int = 1
    source: Tensor | None = None

    def index_select(self, index: Tensor) -> "DecoderState":
        """Reorders (or repeats) batch entries, as beam search and n-sample generation need."""
        hidden = (tuple(h.index_select(1, index) for h in self.hidden)
                  if isinstance(self.hidden, tuple) else self.hidden.index_select(1, index))
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        memory, keys, mask, source, group = self.memory, self.keys, self.mask, self.source, 1
        if memory is not None:
            owner = torch.div(index, self.group, rounding_mode="floor")  # memory row of each row
            rows, group = _runs(owner)
            if rows is None:  # rows of one memory are not together: give each its own copy
                rows, group = owner, 1
            if rows.numel() != memory.size(0) or not torch.equal(
                    rows, torch.arange(memory.size(0), device=rows.device)):
                memory, keys, mask = pick_rows(memory, rows), pick_rows(keys, rows), pick_rows(
                    mask, rows)
                source = pick_rows(source, rows)
        return DecoderState(hidden, memory, keys, mask, pick(self.attention), pick(self.feed),
                            group, source)

    def detached(self) -> "DecoderState":
        """The same state cut from the graph that made it: carried into the next window of a
        stream, gradients stop at the window's edge (truncated back-propagation through time)."""
        hidden = (tuple(h.detach() for h in self.hidden) if isinstance(self.hidden, tuple)
                  else self.hidden.detach())
        return DecoderState(hidden, self.memory, self.keys, self.mask, None,
                            None if self.feed is None else self.feed.detach(), self.group,
                            self.source)

    @property
    def batch_size(self) -> int:
        h = self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden
        return h.size(1)


def pick_rows(t: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if t is None else t.index_select(0, rows)


def _runs(owner: Tensor) -> tuple[Tensor | None, int]:
    """When ``owner`` (N,) is runs of one common length g, the value of each run and g."""
    n = owner.numel()
    if n == 0:
        return None, 1
    runs = int((owner[1:] != owner[:-1]).sum()) + 1
    if n % runs:
        return None, 1
    grid = owner.view(runs, n // runs)
    if not bool((grid == grid[:, :1]).all()):
        return None, 1
    return grid[:, 0], n // runs


def keep_where(use_new: Tensor, new: DecoderState, old: DecoderState, *,
               attention: Tensor | None = None) -> DecoderState:
    """Per batch row, ``new``'s hidden state and fed attentional vector where ``use_new`` (B,)
    is true, else ``old``'s (a row whose prompt has ended keeps what it had); memory, keys,
    mask, group and source are ``old``'s, which ``new`` shares."""
    def pick(n: Tensor, o: Tensor) -> Tensor:
        return torch.where(use_new.view(*([1] * (n.dim() - 2)), -1, 1), n, o)

    if isinstance(new.hidden, tuple):
        hidden: Hidden = tuple(pick(n, o) for n, o in zip(new.hidden, old.hidden))
    else:
        hidden = pick(new.hidden, old.hidden)
    feed = old.feed
    if new.feed is not None and old.feed is not None:
        feed = torch.where(use_new[:, None], new.feed, old.feed)  # (B, H)
    return DecoderState(hidden, old.memory, old.keys, old.mask, attention, feed, old.group,
                        old.source)
