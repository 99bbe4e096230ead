"""A task-agnostic trainer: AdamW, clipping, warm-up + cosine/plateau schedule, step and time
limits, exact resume, measured mixed precision, DDP under ``torchrun`` (every rank follows rank
0's clock and decisions; the replicas' weights are compared at the end), and a clean stop on
SIGINT/SIGTERM. The trainer owns its schedule (warm-up, cosine or plateau) and early stopping,
with the monitored metric they follow (:mod:`.monitor`); everything task-specific is a callback.

The trainer only needs a model with ``loss(batch) -> (summed loss, n_tokens)`` and a data module
with ``train_plan(epoch) -> list[list[int]]``, ``make_batch(indices) -> Batch`` and
``val_batches()``. Batch plans are deterministic per epoch, so resuming skips to the exact batch,
and the schedule follows steps whenever there is a step limit, so a busy machine changes how long
a run takes but not its numbers.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data.batch import Batch, DataModule
from ..device import pick_device
from ..precision import DTYPES, PrecisionChoice, choose_precision
from .callbacks import check_callbacks
from .config import TrainConfig, TrainState, python_rng_from, python_rng_state
from .distributed import (agree_to_stop, compare_replicas, follow_rank0, join_group,
                          local_device_index)
from .monitor import Monitor
from .signals import StopOnSignal, TrainingInterrupted

log = logging.getLogger(__name__)

Objective = Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]


class Trainer:
    """Runs the optimisation loop and calls ``callbacks`` at each event (see seqgen.training.callbacks)."""

    def __init__(self, model: torch.nn.Module, data: DataModule, config: TrainConfig, *,
                 callbacks: Sequence[Any] = (), objective: Objective | None = None,
                 monitor: str = "val_loss", mode: str = "min") -> None:
        """Args:
            objective: ``(net, batch) -> (summed loss, tokens)``, replacing the model's own
                cross-entropy in training (e.g. :class:`.self_critical.SelfCritical`);
                validation loss stays the model's.
            monitor, mode: the validation metric whose best value keeps ``best.pt`` and drives
                the plateau schedule and early stopping (``config.patience``).

        Raises:
            TypeError: a callback has an ``on_*`` method the trainer never calls.
        """
        check_callbacks(callbacks)
        self.config = config
        self.objective = objective
        self.data = data
        self.callbacks = list(callbacks)
        self.monitor = Monitor(monitor, mode)
        self.improved = False  # whether the last evaluation improved the monitored metric
        self.world, self.rank = join_group()
        self.device = pick_device(config.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", local_device_index())
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.model = model.to(self.device)
        self._use(self._choose_precision())  # before DDP wraps the model: it times a plain copy
        self.net = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                            if self.device.type == "cuda" else None)
                    if self.world > 1 else self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.state = TrainState()
        self._tick = time.perf_counter()
        self._steps_per_epoch: int | None = None
        self._evaluated_at: int | None = None  # step of the last evaluation in this process
        self.should_stop = False
        self.interrupted: str | None = None  # name of the signal that asked to stop
        self.last_metrics: dict[str, float] = {}

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _use(self, choice: PrecisionChoice) -> None:
        """Trains in ``choice`` from now on (a loss scaler only for fp16)."""
        self.amp_dtype, self.precision, self.precision_note = choice.dtype, choice.name, choice.note
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16)
        log.info("precision %s: %s", self.precision, self.precision_note)

    def _choose_precision(self) -> PrecisionChoice:
        """Rank 0 decides (measuring if needed); other ranks follow, so all train alike."""
        choice = PrecisionChoice(None, "fp32", "")
        if self.is_main:
            choice = choose_precision(self.config.precision, self.device, model=self.model,
                                      batches=self._timing_batches)
        if self.world > 1:
            shared = [choice]
            dist.broadcast_object_list(shared, src=0)
            choice = shared[0]
        return choice

    def _timing_batches(self) -> list[Batch]:
        """Three real training batches, made only when a precision timing is needed."""
        return [self.data.make_batch(indices) for indices in self.data.train_plan(0)[:3]]

    # -------------------------------------------------------------------------------- schedule
    def steps_per_epoch(self) -> int:
        """Steps in one epoch on each rank (computed once: building a plan costs a sort)."""
        if self._steps_per_epoch is None:
            self._steps_per_epoch = max(len(self.data.train_plan(0)) // self.world, 1)
        return self._steps_per_epoch

    def total_steps(self) -> int | None:
        """Steps the run will take, if a step or epoch limit fixes it (None: a time budget does)."""
        c = self.config
        if c.max_steps:
            return min(c.max_steps, self.steps_per_epoch() * c.max_epochs)
        return None if c.max_minutes else self.steps_per_epoch() * c.max_epochs

    def progress(self) -> float:
        """Fraction of the run done: by steps whenever a step limit is set, so the schedule (and
        the result) does not depend on machine speed; by time only for a pure time budget."""
        c = self.config
        if c.max_minutes and not c.max_steps:
            return min(self.state.elapsed / (60 * c.max_minutes), 1.0)
        return min(self.state.step / max(self.total_steps() or 1, 1), 1.0)

    def current_lr(self) -> float:
        c = self.config
        warm = min(1.0, (self.state.step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
        if c.schedule == "cosine":
            shape = c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * self.progress()))
        else:
            shape = self.state.lr_scale
        return c.lr * warm * shape

    # -------------------------------------------------------------------------------- loop
    def fit(self) -> TrainState:
        """Trains until a limit, early stopping or a signal; the final weights are evaluated
        (and so checkpointed) unless the run was interrupted.

        Raises:
            TrainingInterrupted: after SIGINT/SIGTERM, once the current step has finished and the
                ``on_interrupt`` callbacks (the checkpoint) have run.
            ReplicasDiverged: under torchrun, the ranks ended with different weights.
        """
        c = self.config
        self._tick = time.perf_counter()
        with StopOnSignal(self):
            self._emit("on_train_start")
            self._check_limits()  # a resumed run that had already finished trains no further
            while self.state.epoch < c.max_epochs and not self.should_stop:
                plan = self.data.train_plan(self.state.epoch)
                per_rank = len(plan) // self.world
                plan = plan[self.rank::self.world][:per_rank]  # same number of steps on every rank
                self._emit("on_epoch_start", n_batches=per_rank)
                while self.state.batch_in_epoch < per_rank and not self.should_stop:
                    self._train_step(self.data.make_batch(plan[self.state.batch_in_epoch]))
                    if c.eval_every and self.state.step % c.eval_every == 0:
                        self.evaluate()
                    self._check_limits()
                if self.state.batch_in_epoch >= per_rank:
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                    if not c.eval_every:
                        self.evaluate()
                    self._emit("on_epoch_end")
            self._check_limits()  # all ranks agree on a late signal before the last evaluation
            if self._evaluated_at != self.state.step and not self.interrupted:
                self.evaluate()
            if self.interrupted:  # also when the signal came during that last evaluation
                self._emit("on_interrupt")
                raise TrainingInterrupted(self.state.step, self.interrupted)
            self.check_replicas()
            self._emit("on_train_end")
        return self.state

    def leave_group(self) -> None:
        """Ends this process's part in a torchrun job once all ranks got here. A rank that exits
        with its process group alive can abort at interpreter shutdown (SIGABRT, seen on CI)."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def _train_step(self, batch: Batch) -> None:
        start = time.perf_counter()
        self.net.train()
        batch = batch.to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            total, n_tokens = (self.objective(self.net, batch) if self.objective is not None
                               else self.net(batch))
        loss = total / n_tokens.clamp(min=1)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm
                                                   if self.config.clip_norm > 0 else float("inf"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.state.step += 1
        self.state.batch_in_epoch += 1
        self.state.tokens += int(n_tokens)
        now = time.perf_counter()
        seconds = now - start
        self.state.elapsed += now - self._tick  # wall clock, evaluations and callbacks included
        self._tick = now
        self._emit("on_step_end", loss=loss.item(), n_tokens=int(n_tokens), seconds=seconds,
                   grad_norm=float(grad_norm))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss per target token (generic; a data module with ``validation_loss``
        computes its own, e.g. a stream read with its state carried), then the callbacks' task
        metrics."""
        self.model.eval()
        total, count = 0.0, 0
        if hasattr(self.data, "validation_loss"):
            total, count = self.data.validation_loss(self.model)
        else:
            for batch in self.data.val_batches():
                loss, n = self.model.loss(batch.to(self.device))
                total, count = total + float(loss), count + int(n)
        metrics = {"val_loss": total / max(count, 1)} if count else {}
        self._emit("on_evaluate", metrics=metrics)  # callbacks add task metrics
        self.improved = self.monitor.update(self, metrics)  # best, plateau rate, early stop
        if self.world > 1:
            follow_rank0(self)
        self.last_metrics = metrics
        self._emit("on_evaluated", metrics=metrics)
        self._evaluated_at = self.state.step
        return metrics

    def _check_limits(self) -> None:
        """Stops at a limit or a signal. Under torchrun this is the one collective of every step:
        every rank stops at the same step, and takes rank 0's clock (``state.elapsed``), so a
        time-budget schedule gives every replica the same learning rate."""
        c = self.config
        if c.max_steps and self.state.step >= c.max_steps:
            self.should_stop = True
        if c.max_minutes and self.is_main and self.state.elapsed >= 60 * c.max_minutes:
            self.should_stop = True
        if self.interrupted:
            self.should_stop = True
        if self.world > 1:
            agree_to_stop(self)

    def check_replicas(self) -> None:
        """Under torchrun, compares a checksum of every weight across ranks.

        Raises:
            ReplicasDiverged: the ranks' weights differ (one line naming the first tensor).
        """
        if self.world > 1:
            compare_replicas(self.model, world=self.world, device=self.device)

    def _emit(self, event: str, **kwargs: Any) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **kwargs)

    # -------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "python": python_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        saved = {"state": asdict(self.state), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": rng, "config": asdict(self.config),
                 "precision": self.precision}
        if hasattr(self.objective, "state_dict"):  # e.g. the state carried along a stream
            saved["objective"] = self.objective.state_dict()
        return saved

    def load_state_dict(self, saved: dict) -> None:
        """Restores optimizer, schedule position, RNG and data position exactly, and the
        precision the run chose when it started (a resumed run never changes it mid-run)."""
        kept = saved.get("precision")
        if kept and kept != self.precision:
            if kept not in DTYPES:
                raise ValueError(f"the run trained in {kept!r}, which this seqgen cannot")
            self._use(PrecisionChoice(DTYPES[kept], kept, "kept from the run being resumed"))
        self.state = TrainState(**saved["state"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        random.setstate(python_rng_from(saved["rng"]["python"]))
        if "cuda" in saved["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        if hasattr(self.objective, "load_state_dict") and "objective" in saved:
            self.objective.load_state_dict(saved["objective"], device=self.device)
