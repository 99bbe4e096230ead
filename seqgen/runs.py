"""What every recipe does around its own wiring: parse flags and dotted overrides, prepare the run
folder (resolved config, resume from ``last.pt``), and run the trainer with the standard callbacks.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .callbacks import Checkpoint, EvaluateMetrics, MonitorMetric, ProgressLog, SampleText
from .checkpoint import CheckpointError, load_checkpoint
from .config import apply_overrides, save_config
from .train import DataModule, TrainConfig, Trainer


def recipe_parser(doc: str) -> argparse.ArgumentParser:
    """A recipe's parser with the flags every recipe has; the recipe adds its own data flags."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", help="where checkpoints and logs go (default runs/RECIPE)")
    parser.add_argument("--minutes", type=float, help="training time budget")
    parser.add_argument("--no-resume", action="store_true", help="start over even if a run exists")
    parser.add_argument("--dry-run", action="store_true", help="a few steps on a little data")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or samples")
    return parser


def apply_run_flags(args: argparse.Namespace, config: Any) -> None:
    """--minutes and --run-dir override the recipe config's time budget and run folder."""
    if args.minutes is not None:
        config.train.max_minutes = args.minutes
    if args.run_dir:
        config.run_dir = args.run_dir


def run_minutes(run_dir: str | Path) -> float | None:
    """Wall-clock training minutes of a run folder, from its metrics log (None without one)."""
    import json

    log = Path(run_dir) / "metrics.jsonl"
    if not log.is_file():
        return None
    elapsed = [json.loads(line).get("elapsed_s") for line in log.read_text().splitlines() if line]
    elapsed = [e for e in elapsed if e is not None]
    return round(max(elapsed) / 60, 1) if elapsed else None


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None, config: Any
               ) -> tuple[argparse.Namespace, Any]:
    """Parses the recipe's own flags; every other ``--section.key=value`` overrides the config."""
    args, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not (r.startswith("--") and "=" in r)]
    if bad:
        parser.error(f"unrecognised arguments: {' '.join(bad)} (config overrides look like "
                     "--train.lr=3e-4)")
    try:
        apply_overrides(config, rest)
    except ValueError as err:
        parser.error(str(err))
    return args, config


def previous_run(run_dir: str | Path, *, resume: bool) -> dict | None:
    """The checkpoint to resume from, if the run folder has one and resuming is wanted."""
    path = Path(run_dir) / "last.pt"
    if not resume or not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        raise SystemExit(f"error: {err}; delete it or pass --no-resume") from None
    return ckpt if ckpt.get("trainer") else None


def train(*, model: torch.nn.Module, data: DataModule, config: TrainConfig, run_dir: str | Path,
          payload: Callable[[Any, dict | None], dict], resume_from: dict | None = None,
          metric_fn: Callable[[Any], dict] | None = None,
          sample_fn: Callable[[Any], list[str]] | None = None, sample_every: int = 1,
          monitor: str = "val_loss",
          mode: str = "min", keep: int = 0, full_config: Any = None,
          quiet: bool = False) -> Trainer:
    """Trains with progress log, optional task metrics and samples, best/last checkpoints."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    watcher = MonitorMetric(monitor, mode=mode, patience=config.patience)
    callbacks: list[Any] = [ProgressLog(run_dir, quiet=quiet)]
    if metric_fn is not None:
        callbacks.append(EvaluateMetrics(metric_fn))
    callbacks.append(watcher)
    if sample_fn is not None and not quiet:
        callbacks.append(SampleText(sample_fn, every=sample_every))
    callbacks.append(Checkpoint(run_dir, payload, monitor=watcher, keep=keep))
    trainer = Trainer(model, data, config, callbacks=callbacks)
    if full_config is not None and trainer.is_main:
        save_config(full_config, run_dir / "config.json")
    if resume_from is not None:
        model.load_state_dict(resume_from["model"])
        trainer.load_state_dict(resume_from["trainer"])
        logging.getLogger(__name__).info("resumed from step %d", trainer.state.step)
        if trainer.is_main:
            print(f"resuming {run_dir} from step {trainer.state.step}", file=sys.stderr)
    trainer.fit()
    return trainer


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
