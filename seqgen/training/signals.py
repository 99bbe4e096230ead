"""Stopping a training run cleanly on a signal: the first Ctrl-C (or SIGTERM) lets the current step
finish, the checkpoint callback save ``last.pt``, and the run exit to be resumed; a second one,
later, aborts at once."""
from __future__ import annotations

import signal
import threading
import time
from typing import Any


class TrainingInterrupted(Exception):
    """Raised by :meth:`Trainer.fit` after a SIGINT/SIGTERM, once ``on_interrupt`` has run (the
    Checkpoint callback saves ``last.pt`` there), so the caller can exit and resume later."""

    def __init__(self, step: int, signal_name: str) -> None:
        super().__init__(f"{signal_name} at step {step}")
        self.step, self.signal_name = step, signal_name


class StopOnSignal:
    """During ``Trainer.fit``: the first SIGINT/SIGTERM sets ``trainer.interrupted``, and the
    trainer stops after the current step; a second one more than a second later aborts at once
    (KeyboardInterrupt). The grace second absorbs the copy of Ctrl-C that torchrun forwards right
    after the terminal's own. The previous handlers come back on exit. Outside the main thread
    signals are left alone."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}
        self.first_at = 0.0

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.trainer.interrupted is None:
            self.trainer.interrupted = signal.Signals(signum).name
            self.first_at = now
        elif now - self.first_at > 1.0:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
