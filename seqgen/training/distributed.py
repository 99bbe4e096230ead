"""Where this process stands in a ``torchrun`` job, read one way everywhere: the process group
once it is joined, the launcher's environment before that (the run folder is locked before the
trainer joins the group)."""
from __future__ import annotations

import math
import os
import signal
from typing import Any

import torch
import torch.distributed as dist


def _joined() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when it runs alone)."""
    return dist.get_rank() if _joined() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes train together (1 when this one runs alone)."""
    return dist.get_world_size() if _joined() else int(os.environ.get("WORLD_SIZE", "1"))


def is_rank0() -> bool:
    """Whether this process is rank 0 of a torchrun job (or runs alone): it alone writes."""
    return rank() == 0


def join_group() -> tuple[int, int]:
    """(world size, rank); joins the process group when launched by torchrun."""
    if world_size() <= 1:
        return 1, 0
    if not _joined():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return world_size(), rank()


def local_device_index() -> int:
    """The GPU this process drives under torchrun (its ``LOCAL_RANK``)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def follow_rank0(trainer: Any) -> None:
    """After an evaluation: task metrics exist on rank 0 only, so its monitor's decisions
    (plateau factor, best value, early stop, improvement) are copied to every rank, and all
    ranks keep one learning rate."""
    s = trainer.state
    best = math.nan if s.best is None else s.best
    values = torch.tensor([s.lr_scale, float(s.bad_evals), best, float(trainer.should_stop),
                           float(trainer.improved)], dtype=torch.float64, device=trainer.device)
    dist.broadcast(values, src=0)
    lr_scale, bad_evals, best, stop, improved = values.tolist()
    s.lr_scale, s.bad_evals = lr_scale, int(bad_evals)
    s.best = None if math.isnan(best) else best
    trainer.should_stop, trainer.improved = bool(stop), bool(improved)


def agree_to_stop(trainer: Any) -> None:
    """The one collective of every step: every rank stops at the same step (when any rank
    would, or got a signal) and takes rank 0's clock, so a time-budget schedule gives every
    replica the same learning rate."""
    signum = float(signal.Signals[trainer.interrupted]) if trainer.interrupted else 0.0
    clock = trainer.state.elapsed if trainer.is_main else 0.0  # MAX of it is rank 0's
    flags = torch.tensor([float(trainer.should_stop), signum, clock], dtype=torch.float64,
                         device=trainer.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    stop, signum, clock = flags.tolist()
    trainer.should_stop, trainer.state.elapsed = bool(stop), clock
    if signum and not trainer.interrupted:
        trainer.interrupted = signal.Signals(int(signum)).name


class ReplicasDiverged(RuntimeError):
    """Under torchrun, the ranks ended a run with different weights."""


def compare_replicas(model: torch.nn.Module, *, world: int, device: torch.device) -> None:
    """Compares a float64 checksum of every weight tensor of ``model`` across the ``world``
    ranks (a collective: every rank calls it).

    Raises:
        ReplicasDiverged: the ranks' weights differ (one line naming the first tensor).
    """
    names, sums = [], []
    for name, value in model.state_dict().items():
        names.append(name)
        sums.append(value.detach().to(torch.float64).sum())
    local = torch.stack(sums) if sums else torch.zeros(0, dtype=torch.float64,
                                                        device=device)  # (P,)
    gathered = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(gathered, local)
    for other_rank, other in enumerate(gathered[1:], start=1):
        differ = (other != gathered[0]).nonzero()
        if len(differ):
            name = names[int(differ[0])]
            raise ReplicasDiverged(
                f"the replicas' weights differ at the end of training (rank {other_rank} vs rank "
                f"0, first in {name}: checksum {float(other[differ[0]]):.9g} vs "
                f"{float(gathered[0][differ[0]]):.9g}); the run is not trustworthy")
