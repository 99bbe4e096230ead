"""Trainer callbacks: progress and metrics log, task evaluation, samples during training, metric
monitoring (best / early stop / plateau), and checkpointing. Each is small and optional.

A callback is any object with some of the methods ``on_train_start``, ``on_epoch_start``,
``on_step_end``, ``on_evaluate`` (add metrics), ``on_evaluated`` (react to them), ``on_epoch_end``,
``on_train_end``; each receives the trainer first.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from .checkpoint import atomic_save

Metrics = dict[str, float]


class ProgressLog:
    """tqdm bar with loss and tokens/s; every record also goes to ``metrics.jsonl`` in the run."""

    def __init__(self, run_dir: str | Path, *, quiet: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.quiet = quiet
        self.bar: tqdm | None = None
        self._loss = self._tokens = self._seconds = 0.0
        self._count = 0

    def write(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_epoch_start(self, trainer: Any, n_batches: int) -> None:
        if trainer.is_main and not self.quiet:
            self.bar = tqdm(total=n_batches, initial=trainer.state.batch_in_epoch, file=sys.stderr,
                            desc=f"epoch {trainer.state.epoch + 1}", dynamic_ncols=True, leave=False)

    def on_step_end(self, trainer: Any, *, loss: float, n_tokens: int, seconds: float,
                    grad_norm: float) -> None:
        self._loss += loss
        self._tokens += n_tokens
        self._seconds += seconds
        self._count += 1
        if self.bar is not None:
            self.bar.update(1)
        if trainer.state.step % trainer.config.log_every == 0 and self._count:
            avg, rate = self._loss / self._count, self._tokens / max(self._seconds, 1e-9)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{avg:.3f}", tok_s=f"{rate * trainer.world:,.0f}")
            if trainer.is_main:
                self.write({"step": trainer.state.step, "epoch": trainer.state.epoch,
                            "loss": avg, "tokens_per_s": rate * trainer.world,
                            "lr": trainer.current_lr(), "grad_norm": grad_norm,
                            "elapsed_s": trainer.state.elapsed, "time": time.time()})
            self._loss = self._tokens = self._seconds = 0.0
            self._count = 0

    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None:
        if not trainer.is_main:
            return
        self.write({"step": trainer.state.step, "epoch": trainer.state.epoch, **metrics,
                    "elapsed_s": trainer.state.elapsed})
        if not self.quiet:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            tqdm.write(f"step {trainer.state.step}: {shown}", file=sys.stderr)

    def on_epoch_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    on_train_end = on_epoch_end


class EvaluateMetrics:
    """Adds task metrics (BLEU, bits/char, ...) computed by ``metric_fn(model)`` on rank 0."""

    def __init__(self, metric_fn: Callable[[Any], Metrics]) -> None:
        self.metric_fn = metric_fn

    def on_evaluate(self, trainer: Any, metrics: Metrics) -> None:
        if trainer.is_main:
            metrics.update(self.metric_fn(trainer.model))


class SampleText:
    """The lesson's callback: shows generated text at every evaluation, since loss alone says
    little about what the model writes. ``sample_fn(model)`` returns the lines to show."""

    def __init__(self, sample_fn: Callable[[Any], list[str]], *, every: int = 1) -> None:
        self.sample_fn = sample_fn
        self.every = max(int(every), 1)
        self._count = 0

    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None:
        self._count += 1
        if trainer.is_main and self._count % self.every == 0:
            for line in self.sample_fn(trainer.model):
                tqdm.write(line, file=sys.stderr)


class MonitorMetric:
    """Tracks the best value of one metric; early stopping and the plateau schedule use it."""

    def __init__(self, metric: str = "val_loss", *, mode: str = "min", patience: int = 0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"monitor mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.mode, self.patience = metric, mode, patience
        self.improved = False

    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None:
        value = metrics.get(self.metric)
        if value is None:
            self.improved = False
            return
        state = trainer.state
        better = state.best is None or (value < state.best if self.mode == "min" else value > state.best)
        self.improved = better
        if better:
            state.best, state.bad_evals = value, 0
            return
        state.bad_evals += 1
        if trainer.config.schedule == "plateau" and state.bad_evals % trainer.config.plateau_patience == 0:
            state.lr_scale *= trainer.config.plateau_factor
        if self.patience and state.bad_evals >= self.patience:
            trainer.should_stop = True


class Checkpoint:
    """Saves ``last.pt`` after every evaluation (and every ``every_minutes``), ``best.pt`` when the
    monitored metric improves, and optionally the last ``keep`` numbered ones for averaging."""

    def __init__(self, run_dir: str | Path, payload: Callable[[Any, dict | None], dict], *,
                 monitor: MonitorMetric | None = None, keep: int = 0,
                 every_minutes: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.payload = payload  # (model, trainer_state) -> checkpoint dict
        self.monitor, self.keep, self.every = monitor, keep, every_minutes * 60
        self._last_save = time.monotonic()

    def save(self, trainer: Any, *, evaluated: bool = True) -> None:
        if not trainer.is_main:
            return
        ckpt = self.payload(trainer.model, trainer.state_dict())
        atomic_save(ckpt, self.run_dir / "last.pt")
        self._last_save = time.monotonic()
        if not evaluated:
            return
        if self.monitor is not None and self.monitor.improved:
            atomic_save({**ckpt, "trainer": None}, self.run_dir / "best.pt")
        if self.keep:
            atomic_save({**ckpt, "trainer": None}, self.run_dir / f"step-{trainer.state.step:08d}.pt")
            for old in sorted(self.run_dir.glob("step-*.pt"))[: -self.keep]:
                old.unlink()

    def on_step_end(self, trainer: Any, **_: Any) -> None:
        if self.every and time.monotonic() - self._last_save > self.every:
            self.save(trainer, evaluated=False)

    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None:
        self.save(trainer)
