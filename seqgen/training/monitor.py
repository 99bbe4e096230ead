"""The metric a run is judged by: its best value so far, the evaluations since it last improved,
and what follows from them, the plateau schedule's rate and early stopping. The trainer owns it,
so a Trainer built without any callback still follows ``schedule="plateau"`` and ``patience``."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Monitor:
    """Tracks one validation metric (``mode`` "min" or "max") in the trainer's state."""

    def __init__(self, metric: str = "val_loss", mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"monitor mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.mode = metric, mode

    def update(self, trainer: Any, metrics: dict[str, float]) -> bool:
        """Records an evaluation's ``metrics``; returns whether the metric improved. After
        ``plateau_patience`` evaluations without progress the plateau schedule lowers the rate,
        after ``patience`` of them the run stops (``trainer.should_stop``)."""
        value = metrics.get(self.metric)
        if value is None:
            return False
        state, config = trainer.state, trainer.config
        if state.monitored and state.monitored != self.metric:
            log.warning("best.pt was kept by %s so far; from now on by %s (its best starts anew)",
                        state.monitored, self.metric)
            state.best, state.bad_evals = None, 0
        state.monitored = self.metric
        if state.best is None or (value < state.best if self.mode == "min" else value > state.best):
            state.best, state.bad_evals = value, 0
            return True
        state.bad_evals += 1
        if config.schedule == "plateau" and state.bad_evals % config.plateau_patience == 0:
            state.lr_scale *= config.plateau_factor
        if config.patience and state.bad_evals >= config.patience:
            trainer.should_stop = True
        return False
