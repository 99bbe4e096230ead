"""The one runner every recipe goes through (:func:`run`): a recipe is a config and a task spec
(:class:`seqgen.tasks.spec.Task`); the runner parses and checks flags and dotted overrides,
locks the run folder (a second training there is refused), checks it before touching it (same
model when resuming), resumes from ``last.pt`` or sets an earlier run's files aside, checks that
there is validation data, trains with the standard callbacks, turns Ctrl-C into a saved checkpoint
and exit code 130 and a full disk into one line and exit code 2, exports the chosen checkpoint and
runs the final evaluation. The checks that stop a run in one line are in :mod:`seqgen.training.checks`.
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..data.batch import DataModule
from ..io.argtypes import non_negative_float
from ..io.config import apply_overrides, check_config, save_config
from ..io.export import export_checkpoint
from ..io.fileio import remove_orphans
from ..io.loaded import LoadedModel
from ..tasks.spec import Task
from .callbacks import (Checkpoint, EstimateTime, EvaluateMetrics, MonitorMetric, ProgressLog,
                        SampleText)
from .checks import (check_same_model, check_validation, fail, is_rank0, locked, previous_run,
                     write_errors)
from .runfiles import new_run_id
from .runfolder import set_aside
from .trainer import Objective, ReplicasDiverged, TrainConfig, Trainer, TrainingInterrupted

INTERRUPTED = 130  # exit code after Ctrl-C, as shells report it
ORPHANS = ".*.pt.*.tmp"  # what atomic_save leaves behind when the process is killed mid-write


def recipe_parser(doc: str) -> argparse.ArgumentParser:
    """A recipe's parser with the flags every recipe has; the recipe adds its own data flags."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", help="where checkpoints and logs go (default runs/RECIPE)")
    parser.add_argument("--minutes", type=non_negative_float, help="training time cap (0: none)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if a run exists")
    parser.add_argument("--dry-run", action="store_true", help="a few steps on a little data")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or samples")
    parser.add_argument("--keep-best-by", metavar="METRIC",
                        help="the validation metric that picks best.pt: the task's own (the "
                             "default: BLEU for translation and captions), val_loss, or "
                             "val_cider for captions")
    return parser


def kept_by(task: Task, choice: str | None) -> tuple[str, str]:
    """(metric, mode) that picks a run's best checkpoint: the task's, or on request val_loss (in
    long runs a noisy greedy score can keep an early checkpoint while the loss still falls) or
    another metric the task reports (CIDEr-D for captions)."""
    if not choice or choice == task.monitor:
        return task.monitor, task.mode
    choices = {"val_loss": "min", **task.other_monitors}
    if choice in choices:
        return choice, choices[choice]
    names = ", ".join(dict.fromkeys([task.monitor, *choices]))
    raise ValueError(f"--keep-best-by must be one of {names} (got {choice!r})")


def apply_run_flags(args: argparse.Namespace, config: Any) -> None:
    """--minutes and --run-dir override the recipe config's time cap and run folder."""
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
    elapsed = []
    for line in log.read_text().splitlines():
        try:
            elapsed.append(json.loads(line)["elapsed_s"])
        except (ValueError, KeyError):  # a training row, or a line cut short by a crash
            continue
    return round(max(elapsed) / 60, 1) if elapsed else None


def configure(task: Task, make_config: Callable[[], Any], doc: str,
              argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Any]:
    """The resolved config of a run: defaults, then the preset, then the task's shortcut flags and
    ``--section.key=value`` overrides, then the run flags and ``--dry-run``; every value is then
    range-checked (a bad one exits 2 with one line naming its key), and the RNGs are seeded with
    ``train.seed`` so the model built next starts from the same weights every time (torch seeds
    itself randomly at start-up)."""
    parser = recipe_parser(doc)
    for flag, (key, help_text) in task.shortcuts.items():
        parser.add_argument(flag, dest=_dest(key), metavar=key.split(".")[-1].upper(),
                            help=help_text)
    if task.presets:
        parser.add_argument("--preset", choices=sorted(task.presets),
                            help="named settings applied before overrides (default: by the data)")
    args, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not (r.startswith("--") and "=" in r)]
    if bad:
        parser.error(f"unrecognised arguments: {' '.join(bad)} (config overrides look like "
                     "--train.lr=3e-4)")
    overrides = [f"--{key}={getattr(args, _dest(key))}" for key, _ in task.shortcuts.values()
                 if getattr(args, _dest(key)) is not None] + rest
    try:
        config = apply_overrides(make_config(), overrides)
        preset = getattr(args, "preset", None) or task.default_preset(config)
        if preset:  # the preset first, so that explicit flags and overrides still win
            config = make_config()
            task.presets[preset](config)
            apply_overrides(config, overrides)
        apply_run_flags(args, config)
        if args.dry_run:
            task.dry_run(config)
            config.train.max_steps, config.train.eval_every, config.train.max_minutes = 6, 3, 0
            config.run_dir = args.run_dir or tempfile.mkdtemp(prefix="seqgen-dry-")
        check_config(config)
    except ValueError as err:
        parser.error(str(err))
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    return args, config


def _dest(key: str) -> str:
    return "set_" + key.replace(".", "__")


def run(task: Task | str, make_config: Callable[[], Any] | None = None, doc: str | None = None,
        argv: Sequence[str] | None = None) -> int:
    """Everything a recipe does around its spec: config, run folder, build, train, export the
    chosen checkpoint as ``model.pt``, final evaluation. Returns the exit code.

    Args:
        task: a task spec, or the name of a registered one.
        make_config: the config's defaults (default: the task's own ``config`` class).
        doc: the ``--help`` text (default: the task's docstring).
    """
    if isinstance(task, str):
        from ..tasks import registry

        task = registry.get(task)
    make_config = make_config or task.config
    args, config = configure(task, make_config, doc or task.__doc__ or "", argv)
    setup_logging()
    try:
        monitor, mode = kept_by(task, args.keep_best_by)
    except ValueError as err:
        fail(str(err))
    with locked(config.run_dir), write_errors():
        return run_locked(task, args, config, monitor=monitor, mode=mode)


def run_locked(task: Task, args: argparse.Namespace, config: Any, *, monitor: str,
               mode: str) -> int:
    """The part of :func:`run` that reads and writes the run folder, which it holds locked."""
    previous = previous_run(config.run_dir, resume=not args.no_resume and not args.dry_run)
    try:
        built = task.build(config, previous)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    print(built.summary, file=sys.stderr)
    train_data = built.data if built.train_data is None else built.train_data
    check_validation(train_data)
    if previous is None and is_rank0():
        moved = set_aside(config.run_dir)
        if moved is not None:
            print(f"{'--no-resume: ' if args.no_resume else ''}moved the earlier run's files "
                  f"to {moved}/", file=sys.stderr)
    trainer = train(
        model=built.model, data=train_data, config=config.train, run_dir=config.run_dir,
        payload=lambda model, state: built.payload(task.name, model, state),
        resume_from=previous, metric_fn=lambda model: task.metrics(built, model, config),
        sample_fn=lambda model: task.samples(built, model, config),
        sample_every=getattr(config, "sample_every", 1), monitor=monitor, mode=mode,
        keep=task.keep(config), full_config=config, quiet=args.quiet, objective=built.objective,
        run_id=previous.get("run_id") if previous is not None else new_run_id())
    if not trainer.is_main:  # under torchrun, rank 0 alone writes and reports
        return 0
    run_dir = Path(config.run_dir)
    export_checkpoint(task.final_checkpoint(run_dir, built, config), run_dir / "model.pt",
                      half=False)
    loaded = LoadedModel.from_file(run_dir / "model.pt")
    for line in task.final(built, loaded, config, dry_run=args.dry_run):
        print(line, flush=True)
    print(f"model saved to {run_dir / 'model.pt'}; try: {task.hint(built, run_dir / 'model.pt')}",
          file=sys.stderr)
    return 0


def train(*, model: torch.nn.Module, data: DataModule, config: TrainConfig, run_dir: str | Path,
          payload: Callable[[Any, dict | None], dict], resume_from: dict | None = None,
          metric_fn: Callable[[Any], dict] | None = None,
          sample_fn: Callable[[Any], list[str]] | None = None, sample_every: int = 1,
          monitor: str = "val_loss",
          mode: str = "min", keep: int = 0, full_config: Any = None,
          quiet: bool = False, objective: Objective | None = None,
          run_id: str | None = None) -> Trainer:
    """Trains with progress log, optional task metrics and samples, best/last checkpoints
    (which carry ``run_id``, so pruning and averaging see only this run's).

    Exits 2 (one line) if ``resume_from`` holds a different model, before the run folder is
    touched, and 130 after Ctrl-C or SIGTERM, once the step in progress is done and ``last.pt``
    is saved.
    """
    run_dir = Path(run_dir)
    if resume_from is not None:
        check_same_model(run_dir, resume_from, model)
    run_dir.mkdir(parents=True, exist_ok=True)
    watcher = MonitorMetric(monitor, mode=mode, patience=config.patience)
    progress = ProgressLog(run_dir, quiet=quiet)
    callbacks: list[Any] = [progress] + ([] if quiet else [EstimateTime()])
    if metric_fn is not None:
        callbacks.append(EvaluateMetrics(metric_fn))
    callbacks.append(watcher)
    if sample_fn is not None and not quiet:
        callbacks.append(SampleText(sample_fn, every=sample_every))
    callbacks.append(Checkpoint(run_dir, payload, monitor=watcher, keep=keep, run_id=run_id))
    try:
        trainer = Trainer(model, data, config, callbacks=callbacks, objective=objective)
    except KeyboardInterrupt:  # during the precision timing
        print("interrupted before training started", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    if resume_from is not None:
        restore(trainer, resume_from, run_dir)
    if trainer.is_main:
        remove_orphans(run_dir, ORPHANS)
        progress.forget_after(trainer.state.step)
        if full_config is not None:
            save_config(full_config, run_dir / "config.json")
        print(f"precision {trainer.precision}: {trainer.precision_note}", file=sys.stderr)
        if resume_from is not None:
            print(f"resuming {run_dir} from step {trainer.state.step}", file=sys.stderr)
    fit_or_exit(trainer)
    return trainer


def restore(trainer: Trainer, saved: dict, run_dir: Path) -> None:
    """Loads weights and trainer state from a checkpoint; a mismatch exits 2 with one line."""
    try:
        trainer.model.load_state_dict(saved["model"])
        trainer.load_state_dict(saved["trainer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(f"{run_dir}/last.pt does not fit this run ({reason[:160]}); pass --no-resume to "
             "start over")


def fit_or_exit(trainer: Trainer) -> None:
    """Runs ``trainer.fit`` and leaves the torchrun group; after Ctrl-C or SIGTERM prints one
    line and exits 130."""
    try:
        trainer.fit()
    except TrainingInterrupted as stop:
        trainer.leave_group()  # every rank stopped at the same step
        if trainer.is_main:
            print(f"interrupted at step {stop.step}; rerun the same command to resume",
                  file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the step in progress is lost
        if trainer.is_main:
            print(f"aborted during step {trainer.state.step + 1}; rerun the same command to "
                  "resume from the last checkpoint", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except ReplicasDiverged as err:  # every rank found it, at the same point
        trainer.leave_group()
        if trainer.is_main:
            fail(str(err))
        raise SystemExit(2) from None
    trainer.leave_group()  # rank 0 goes on alone to export and evaluate


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
