"""The trainer's settings (:class:`TrainConfig`, every field a ``--train.*`` override) and the
state a checkpoint carries to resume exactly (:class:`TrainState`, and the RNG in plain lists)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch


@dataclass
class TrainConfig:
    lr: float = 3e-3
    weight_decay: float = 0.0
    max_epochs: int = 10
    max_steps: int = 0  # 0: no limit. When set, the cosine schedule follows steps.
    max_minutes: float = 0.0  # wall-clock cap; 0: none. Cosine follows time only without max_steps.
    clip_norm: float = 1.0  # 0: no clipping
    warmup_steps: int = 100
    schedule: Literal["constant", "cosine", "plateau"] = "cosine"
    min_lr_ratio: float = 0.05
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    eval_every: int = 0  # steps between evaluations; 0: once per epoch
    patience: int = 0  # stop after this many evaluations without improvement; 0: never
    log_every: int = 50
    seed: int = 1234
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # autocast; auto: measured
    device: str = "auto"

    RULES: ClassVar[dict[str, str]] = {
        "lr": ">0", "weight_decay": ">=0", "max_epochs": ">=1", "max_steps": ">=0",
        "max_minutes": ">=0", "clip_norm": ">=0", "warmup_steps": ">=0", "min_lr_ratio": "[0,1]",
        "plateau_factor": "(0,1]", "plateau_patience": ">=1", "eval_every": ">=0",
        "patience": ">=0", "log_every": ">=1"}  # checked by seqgen.io.config.check_config

    def check(self) -> None:
        """Raises ValueError (starting with the field name) for a device that cannot be used."""
        if self.device == "auto":
            return
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}"
                             ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device} but torch sees no CUDA GPU; use cpu or auto")


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumes
    lr_scale: float = 1.0  # plateau schedule's current factor
    best: float | None = None  # best value of the monitored metric
    monitored: str = ""  # the metric ``best`` is a value of
    bad_evals: int = 0
    tokens: int = 0


def python_rng_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def python_rng_from(saved: list) -> tuple:
    return (int(saved[0]), tuple(int(x) for x in saved[1]), saved[2])
