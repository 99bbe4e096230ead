"""Where this process stands in a ``torchrun`` job, read one way everywhere: the process group
once it is joined, the launcher's environment before that (the run folder is locked before the
trainer joins the group)."""
from __future__ import annotations

import os

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
