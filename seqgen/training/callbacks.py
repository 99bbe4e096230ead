"""Trainer callbacks: progress and metrics log, a time estimate, task evaluation, samples during
training, and checkpointing. Each is small and optional; the schedule, early stopping and the
best value of the monitored metric are the trainer's own (:mod:`.monitor`).

A callback subclasses :class:`Callback` and overrides some of its events; each receives the
trainer first. A method named ``on_...`` that is not an event is refused when the class is
defined, so a misspelt event cannot be silently never called.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..io.checkpoint import save_checkpoint
from ..io.fileio import write_failure
from .runfiles import run_checkpoints

log = logging.getLogger(__name__)

Metrics = dict[str, float]
EVENTS = ("on_train_start", "on_epoch_start", "on_step_end", "on_evaluate", "on_evaluated",
          "on_epoch_end", "on_train_end", "on_interrupt")


def unknown_events(callback: Any) -> list[str]:
    """The ``on_*`` names of ``callback`` (a class or an object) that are not trainer events."""
    names = vars(callback) if isinstance(callback, type) else dir(callback)
    return sorted(n for n in names if n.startswith("on_") and n not in EVENTS)


def check_callbacks(callbacks: Sequence[Any]) -> None:
    """Raises TypeError naming a callback (a duck-typed one, too) that has an ``on_*`` method
    the trainer never calls."""
    for callback in callbacks:
        unknown = unknown_events(callback)
        if unknown:
            raise TypeError(f"{type(callback).__name__} has {', '.join(unknown)}, which the "
                            f"trainer never calls; its events are {', '.join(EVENTS)}")


class Callback:
    """The events of a training run, in order; each does nothing unless overridden.

    ``on_evaluate`` may add task metrics to ``metrics``; ``on_evaluated`` reacts to them (after
    the trainer has updated its monitored metric); ``on_interrupt`` runs after SIGINT/SIGTERM,
    once the step in progress is finished.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = unknown_events(cls)
        if unknown:
            raise TypeError(f"{cls.__name__} defines {', '.join(unknown)}, which the trainer "
                            f"never calls; its events are {', '.join(EVENTS)}")

    def on_train_start(self, trainer: Any) -> None: ...
    def on_epoch_start(self, trainer: Any, n_batches: int) -> None: ...
    def on_step_end(self, trainer: Any, *, loss: float, n_tokens: int, seconds: float,
                    grad_norm: float) -> None: ...
    def on_evaluate(self, trainer: Any, metrics: Metrics) -> None: ...
    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None: ...
    def on_epoch_end(self, trainer: Any) -> None: ...
    def on_train_end(self, trainer: Any) -> None: ...
    def on_interrupt(self, trainer: Any) -> None: ...


class ProgressLog(Callback):
    """tqdm bar with loss and tokens/s; every record also goes to ``metrics.jsonl`` in the run."""

    def __init__(self, run_dir: str | Path, *, quiet: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.quiet = quiet
        self.bar: tqdm | None = None
        self._loss = self._tokens = self._seconds = 0.0
        self._count = 0

    def write(self, record: dict) -> None:
        """Appends one record; a full disk is a one-line :class:`seqgen.io.fileio.WriteFailed`."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as err:
            raise write_failure(err, self.path) from None

    def forget_after(self, step: int) -> None:
        """Drops records of steps after ``step``: a resumed run redoes them, and a fresh run
        (step 0) starts an empty log, so no step is ever logged twice."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue  # a line cut short by a crash
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise write_failure(err, self.path) from None

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

    def report(self, trainer: Any, metrics: Metrics) -> None:
        """Scores computed outside an evaluation (choosing the checkpoint to ship) go where
        every metric goes: ``metrics.jsonl`` and one line on stderr."""
        self.on_evaluated(trainer, metrics)

    def on_epoch_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    on_train_end = on_interrupt = on_epoch_end


class EstimateTime(Callback):
    """One line on stderr after the first steps: how long the run will take at the speed seen
    (the first ``skip`` steps, slower while kernels warm up, are not counted)."""

    def __init__(self, *, steps: int = 20, skip: int = 3) -> None:
        self.steps, self.skip = steps, skip
        self._first = 0
        self._start = 0.0

    def on_train_start(self, trainer: Any) -> None:
        self._first = trainer.state.step

    def on_step_end(self, trainer: Any, **_: Any) -> None:
        done = trainer.state.step - self._first
        if done == self.skip:
            self._start = time.perf_counter()
        elif done == self.skip + self.steps and trainer.is_main:
            rate = self.steps / max(time.perf_counter() - self._start, 1e-9)
            tqdm.write(estimate_line(trainer, rate, first_step=self._first), file=sys.stderr)


def estimate_line(trainer: Any, rate: float, *, first_step: int = 0) -> str:
    """The estimate, e.g. "about 3.1 min for 1,400 steps at 7.5 steps/s" (evaluations not
    included), or where a time cap will cut the run short."""
    total, step = trainer.total_steps(), trainer.state.step
    minutes = trainer.config.max_minutes
    cap = max(minutes * 60 - trainer.state.elapsed, 0.0) if minutes else None
    if total is not None and (cap is None or (total - step) / rate <= cap):
        todo = total - first_step
        what = f"{todo:,} steps" if first_step == 0 else f"the {todo:,} steps left"
        return f"about {todo / rate / 60:.1f} min for {what} at {rate:.1f} steps/s"
    return (f"the {minutes:g}-minute cap stops it after about "
            f"{int(step + cap * rate):,} steps at {rate:.1f} steps/s")


class EvaluateMetrics(Callback):
    """Adds task metrics (BLEU, bits/char, ...) computed by ``metric_fn(model)`` on rank 0."""

    def __init__(self, metric_fn: Callable[[Any], Metrics]) -> None:
        self.metric_fn = metric_fn

    def on_evaluate(self, trainer: Any, metrics: Metrics) -> None:
        if trainer.is_main:
            metrics.update(self.metric_fn(trainer.model))


class SampleText(Callback):
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


class Checkpoint(Callback):
    """Saves ``last.pt`` after every evaluation (and every ``every_minutes``), ``best.pt`` when the
    trainer's monitored metric improves, and optionally the last ``keep`` numbered ones for averaging.

    Every file carries ``run_id``; pruning deletes only this run's numbered files (see
    :func:`seqgen.io.checkpoint.run_checkpoints`). A write the file system refuses raises a one-line
    :class:`seqgen.io.checkpoint.CheckpointWriteError`, and the file it would have replaced is intact.
    """

    def __init__(self, run_dir: str | Path, payload: Callable[[Any, dict | None], dict], *,
                 keep: int = 0, every_minutes: float = 10.0, run_id: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.payload = payload  # (model, trainer_state) -> checkpoint dict
        self.keep, self.every = keep, every_minutes * 60
        self.run_id = run_id  # None: files without one (a run from before run ids resumed)
        self._last_save = time.monotonic()

    def save(self, trainer: Any, *, evaluated: bool = True) -> None:
        if not trainer.is_main:
            return
        ckpt = self.payload(trainer.model, trainer.state_dict())
        if self.run_id is not None:
            ckpt["run_id"] = self.run_id
        save_checkpoint(ckpt, self.run_dir / "last.pt")
        self._last_save = time.monotonic()
        if not evaluated:
            return
        if trainer.improved:
            save_checkpoint({**ckpt, "trainer": None}, self.run_dir / "best.pt")
        if self.keep:
            save_checkpoint({**ckpt, "trainer": None},
                            self.run_dir / f"step-{trainer.state.step:08d}.pt")
            for old in run_checkpoints(self.run_dir, self.run_id)[: -self.keep]:
                old.unlink()

    def on_step_end(self, trainer: Any, **_: Any) -> None:
        if self.every and time.monotonic() - self._last_save > self.every:
            self.save(trainer, evaluated=False)

    def on_evaluated(self, trainer: Any, metrics: Metrics) -> None:
        self.save(trainer)

    def on_interrupt(self, trainer: Any) -> None:
        self.save(trainer, evaluated=False)
