"""A run folder's checkpoint bookkeeping: each training run writes its run id into its
checkpoints, so :func:`run_checkpoints` sees only the current run's numbered files, never those
an earlier run left in the folder; and the numbered files of one run can be averaged."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import torch

from ..io.checkpoint import CheckpointError, load_checkpoint

STEP_FILES = "step-*.pt"  # the numbered evaluation checkpoints kept for averaging


def new_run_id() -> str:
    """A fresh run id, e.g. ``20261130-181500-3fa2c1``: when the run started, and 24 random bits."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def checkpoint_run_id(path: str | Path) -> str | None:
    """The run id a checkpoint was written by (None: written before run ids existed). Tensors
    are memory-mapped, not read, so this is cheap even for large files.

    Raises:
        CheckpointError: the file cannot be read.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a damaged or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}") from None
    return ckpt.get("run_id") if isinstance(ckpt, dict) else None


def run_checkpoints(run_dir: str | Path, run_id: str | None = None) -> list[Path]:
    """The numbered checkpoints (``step-*.pt``) of one run in ``run_dir``, oldest first.

    Args:
        run_dir: the run folder.
        run_id: the run whose files to list; default: the run that wrote ``last.pt`` (none
            without a readable ``last.pt``). Files an earlier run left behind, and unreadable
            ones, are never listed, so neither averaging nor pruning ever touches them.
    """
    run_dir = Path(run_dir)
    if run_id is None:
        try:
            run_id = checkpoint_run_id(run_dir / "last.pt")
        except CheckpointError:
            return []
    mine = []
    for path in sorted(run_dir.glob(STEP_FILES)):
        try:
            if checkpoint_run_id(path) == run_id:
                mine.append(path)
        except CheckpointError:
            continue
    return mine


def average_weights(paths: list[str | Path]) -> dict:
    """Element-wise mean of the weights of several checkpoints of one run (checkpoint averaging)."""
    if not paths:
        raise ValueError("checkpoint averaging needs at least one checkpoint")
    ckpts = [load_checkpoint(p) for p in paths]
    avg = {k: v.float().clone() if v.is_floating_point() else v for k, v in ckpts[0]["model"].items()}
    for ckpt in ckpts[1:]:
        for k, v in ckpt["model"].items():
            if v.is_floating_point():
                avg[k] += v.float()
    return {k: v / len(ckpts) if v.is_floating_point() else v for k, v in avg.items()}


def run_minutes(run_dir: str | Path) -> float | None:
    """Wall-clock training minutes of a run folder, from its metrics log (None without one)."""
    log = Path(run_dir) / "metrics.jsonl"
    if not log.is_file():
        return None
    elapsed = []
    for line in log.read_text().splitlines():
        try:
            elapsed.append(json.loads(line)["elapsed_s"])
        except (ValueError, KeyError):  # a training row, or a line cut short by a crash
            continue
    return round(max(elapsed) / 60, 1) if elapsed else None
