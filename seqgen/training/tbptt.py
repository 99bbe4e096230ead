"""Truncated back-propagation through time over a continuous text: the recurrent state a window
ends in is carried into the next window of the same streams, detached, so the model learns across
window edges (the RNN's advantage over a fixed-context transformer) while each step's gradient
stays one window long. The state is part of a resumable run: a run resumed mid-stream carries on
from exactly the state it stopped with.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..data.batch import Batch
from ..nn.state import DecoderState


class CarriedState:
    """A trainer objective, ``(net, batch) -> (summed loss, tokens)``, for batches that are
    consecutive windows of parallel streams (``batch.window``: 0 where the streams start)."""

    def __init__(self) -> None:
        self.state: Any = None  # the model's DecoderState after the last window, detached

    def __call__(self, net: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        if batch.window is None:
            raise ValueError("carried-state training needs stream batches (batch.window)")
        model = getattr(net, "module", net)
        start = None if batch.window == 0 else self.state
        total, n_tokens, end = model.stream_loss(batch, start)
        self.state = end.detached()
        return total, n_tokens

    def state_dict(self) -> dict:
        """The carried hidden state (None at a stream's start), for the run's checkpoint."""
        if self.state is None:
            return {"hidden": None}
        hidden = self.state.hidden
        return {"hidden": [h.cpu() for h in hidden] if isinstance(hidden, tuple)
                else [hidden.cpu()], "lstm": isinstance(hidden, tuple)}

    def load_state_dict(self, saved: dict, *, device: torch.device | str = "cpu") -> None:
        if not saved or saved.get("hidden") is None:
            self.state = None
            return
        parts = [h.to(device) for h in saved["hidden"]]
        self.state = DecoderState(tuple(parts) if saved.get("lstm") else parts[0])
