"""A task-agnostic trainer: AdamW, clipping, warm-up + cosine/plateau schedule, time budgets,
exact resume, AMP on CUDA and DDP under ``torchrun``. Everything task-specific is a callback.

The trainer only needs a model with ``loss(batch) -> (summed loss, n_tokens)`` and a data module
with ``train_plan(epoch) -> list[list[int]]``, ``make_batch(indices) -> Batch`` and
``val_batches()``. Batch plans are deterministic per epoch, so resuming skips to the exact batch.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal, Protocol, Sequence

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .data.batch import Batch

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    lr: float = 3e-3
    weight_decay: float = 0.0
    max_epochs: int = 10
    max_steps: int = 0  # 0: no limit
    max_minutes: float = 0.0  # wall-clock budget; 0: no limit. Cosine decays over it when set.
    clip_norm: float = 1.0
    warmup_steps: int = 100
    schedule: Literal["constant", "cosine", "plateau"] = "cosine"
    min_lr_ratio: float = 0.05
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    eval_every: int = 0  # steps between evaluations; 0: once per epoch
    patience: int = 0  # stop after this many evaluations without improvement; 0: never
    log_every: int = 50
    seed: int = 1234
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # autocast for the forward pass
    device: str = "auto"


class DataModule(Protocol):
    def train_plan(self, epoch: int) -> list[list[int]]: ...

    def make_batch(self, indices: Sequence[int]) -> Batch: ...

    def val_batches(self) -> Iterable[Batch]: ...


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumes
    lr_scale: float = 1.0  # plateau schedule's current factor
    best: float | None = None  # best value of the monitored metric
    bad_evals: int = 0
    tokens: int = 0


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision to train in: fp16 on CUDA, bf16 on CPUs with native bf16 (1.5x faster
    RNN training measured on AVX512-BF16 cores), else none. Weights and optimizer stay fp32."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and _cpu_has_bf16():
        return torch.bfloat16
    return None


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------------------------
class Trainer:
    """Runs the optimisation loop and calls ``callbacks`` at each event (see seqgen.callbacks)."""

    def __init__(self, model: torch.nn.Module, data: DataModule, config: TrainConfig, *,
                 callbacks: Sequence[Any] = ()) -> None:
        self.config = config
        self.data = data
        self.callbacks = list(callbacks)
        self.world, self.rank = _init_distributed()
        self.device = pick_device(config.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.model = model.to(self.device)
        self.net = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                            if self.device.type == "cuda" else None)
                    if self.world > 1 else self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self._tick = time.perf_counter()
        self.should_stop = False
        self.last_metrics: dict[str, float] = {}

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -------------------------------------------------------------------------------- schedule
    def progress(self) -> float:
        """Fraction of the run done, by steps or by time, whichever is further."""
        c = self.config
        fractions = [0.0]
        if c.max_steps:
            fractions.append(self.state.step / c.max_steps)
        if c.max_minutes:
            fractions.append(self.state.elapsed / (60 * c.max_minutes))
        if not c.max_steps and not c.max_minutes:
            per_epoch = max(len(self.data.train_plan(0)) // self.world, 1)
            fractions.append(self.state.step / (per_epoch * c.max_epochs))
        return min(max(fractions), 1.0)

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
        c = self.config
        self._tick = time.perf_counter()
        self._emit("on_train_start")
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
        if c.eval_every and self.state.step % c.eval_every != 0:
            self.evaluate()  # the final weights are always evaluated (and checkpointed)
        self._emit("on_train_end")
        return self.state

    def _train_step(self, batch: Batch) -> None:
        start = time.perf_counter()
        self.net.train()
        batch = batch.to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            total, n_tokens = self.net(batch)
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
        """Validation loss per target token (generic), then the callbacks' task metrics."""
        self.model.eval()
        total, count = 0.0, 0
        for batch in self.data.val_batches():
            loss, n = self.model.loss(batch.to(self.device))
            total, count = total + float(loss), count + int(n)
        metrics = {"val_loss": total / max(count, 1)} if count else {}
        self._emit("on_evaluate", metrics=metrics)  # callbacks add metrics, then may stop
        self.last_metrics = metrics
        self._emit("on_evaluated", metrics=metrics)
        return metrics

    def _check_limits(self) -> None:
        c = self.config
        if c.max_steps and self.state.step >= c.max_steps:
            self.should_stop = True
        if c.max_minutes and self.state.elapsed >= 60 * c.max_minutes:
            self.should_stop = True
        if self.world > 1:  # every rank must stop at the same step
            flag = torch.tensor([float(self.should_stop)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.should_stop = bool(flag.item())

    def _emit(self, event: str, **kwargs: Any) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **kwargs)

    # -------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "python": _python_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"state": asdict(self.state), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng, "config": asdict(self.config)}

    def load_state_dict(self, saved: dict) -> None:
        """Restores optimizer, schedule position, RNG and data position exactly."""
        self.state = TrainState(**saved["state"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        random.setstate(_python_rng_from(saved["rng"]["python"]))
        if "cuda" in saved["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])


def _python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_rng_from(saved: list) -> tuple:
    return (int(saved[0]), tuple(int(x) for x in saved[1]), saved[2])


def _init_distributed() -> tuple[int, int]:
    """(world size, rank); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_world_size(), dist.get_rank()
