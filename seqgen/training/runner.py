"""The one runner every recipe goes through (:func:`run`): a recipe is a config and a task spec
(:class:`seqgen.tasks.spec.Task`); the runner reads the flags (:mod:`.flags`), locks the run folder
(a second training there is refused), checks it before touching it (same model when resuming),
resumes from ``last.pt`` (in the precision the run chose) or sets an earlier run's files aside,
checks that there is validation data, trains with the standard callbacks, saves a checkpoint on
Ctrl-C, exports the chosen checkpoint and runs the final evaluation.

A run that cannot go on raises :class:`~.checks.RunError` (one line and an exit code: 2 for bad
input or a full disk, 130 after Ctrl-C); only :func:`run` turns it into an exit code, so
:func:`train_task` and :func:`train` can be called from Python.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..data.batch import DataModule
from ..io.config import save_config
from ..io.export import export_checkpoint
from ..io.fileio import remove_orphans
from ..io.loaded import LoadedModel
from ..tasks.spec import Task
from .callbacks import Callback, Checkpoint, EstimateTime, EvaluateMetrics, ProgressLog, SampleText
from .checks import (RunError, check_same_model, check_validation, fail, locked, previous_run,
                     write_errors)
from .distributed import ReplicasDiverged, is_rank0
from .flags import configure, kept_by
from .runfiles import new_run_id
from .runfolder import set_aside
from .trainer import Objective, TrainConfig, Trainer, TrainingInterrupted

INTERRUPTED = 130  # exit code after Ctrl-C, as shells report it
ORPHANS = ".*.pt.*.tmp"  # what atomic_save leaves behind when the process is killed mid-write


def run(task: Task | str, make_config: Callable[[], Any] | None = None, doc: str | None = None,
        argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """A recipe's whole run, from its command line; returns the exit code (a :class:`RunError`
    becomes its one line on stderr and its code).

    Args:
        task: a task spec, or the name of a registered one.
        make_config: the config's defaults (default: the task's own ``config`` class).
        doc: the ``--help`` text (default: the task's docstring).
        prog: the program name ``--help`` shows (default: the script's).
    """
    if isinstance(task, str):
        from ..tasks import registry

        task = registry.get(task)
    try:
        args, config = configure(task, make_config or task.config, doc or task.__doc__ or "",
                                 argv, prog=prog)
    except SystemExit as done:  # --help, or a bad flag already reported in one line
        return done.code if isinstance(done.code, int) else 0
    setup_logging()
    try:
        train_task(task, args, config)
    except RunError as err:
        if str(err):
            print(err, file=sys.stderr)
        return err.code
    return 0


def train_task(task: Task, args: argparse.Namespace, config: Any) -> None:
    """Trains ``task`` as ``config`` says (``args``: the recipe flags :func:`configure` read),
    exports the chosen checkpoint as ``model.pt`` and prints the final scores.

    Raises:
        RunError: bad input, a busy or full run folder, or Ctrl-C (the run can be resumed).
    """
    try:
        monitor, mode = kept_by(task, args.keep_best_by)
    except ValueError as err:
        fail(str(err))
    with locked(config.run_dir), write_errors():
        run_locked(task, args, config, monitor=monitor, mode=mode)


def run_locked(task: Task, args: argparse.Namespace, config: Any, *, monitor: str,
               mode: str) -> None:
    """The part of :func:`train_task` that reads and writes the run folder, held locked."""
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
    run_dir = Path(config.run_dir)
    progress = ProgressLog(run_dir, quiet=args.quiet)
    trainer = train(
        model=built.model, data=train_data, config=config.train, run_dir=run_dir,
        payload=lambda model, state: built.payload(task.name, model, state),
        resume_from=previous, metric_fn=lambda model: task.metrics(built, model, config),
        sample_fn=lambda model: task.samples(built, model, config),
        sample_every=getattr(config, "sample_every", 1), monitor=monitor, mode=mode,
        keep=task.keep(config), full_config=config, quiet=args.quiet, objective=built.objective,
        run_id=previous.get("run_id") if previous is not None else new_run_id(),
        progress=progress)
    if not trainer.is_main:  # under torchrun, rank 0 alone writes and reports
        return
    chosen = task.final_checkpoint(run_dir, built, config,
                                   report=lambda metrics: progress.report(trainer, metrics))
    export_checkpoint(chosen, run_dir / "model.pt", half=False)
    loaded = LoadedModel.from_file(run_dir / "model.pt")
    for line in task.final(built, loaded, config, dry_run=args.dry_run):
        print(line, flush=True)
    print(f"model saved to {run_dir / 'model.pt'}; try: {task.hint(built, run_dir / 'model.pt')}",
          file=sys.stderr)


# ------------------------------------------------------------------------------------------------
def train(*, model: torch.nn.Module, data: DataModule, config: TrainConfig, run_dir: str | Path,
          payload: Callable[[Any, dict | None], dict], resume_from: dict | None = None,
          metric_fn: Callable[[Any], dict] | None = None,
          sample_fn: Callable[[Any], list[str]] | None = None, sample_every: int = 1,
          monitor: str = "val_loss", mode: str = "min", keep: int = 0, full_config: Any = None,
          quiet: bool = False, objective: Objective | None = None, run_id: str | None = None,
          progress: ProgressLog | None = None) -> Trainer:
    """Trains with progress log, optional task metrics and samples, best/last checkpoints
    (which carry ``run_id``, so pruning and averaging see only this run's). A resumed run keeps
    the precision it chose when it started; ``config.json`` records the precision chosen.

    Raises:
        RunError: ``resume_from`` holds a different model (before the run folder is touched),
            or Ctrl-C / SIGTERM stopped the run once the step in progress was done and
            ``last.pt`` saved (code 130).
    """
    run_dir = Path(run_dir)
    kept = (resume_from.get("trainer") or {}).get("precision") if resume_from else None
    if resume_from is not None:
        check_same_model(run_dir, resume_from, model)
    if kept:  # chosen when the run started: a resume never times again, never changes it
        config = replace(config, precision=kept)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or ProgressLog(run_dir, quiet=quiet)
    callbacks: list[Callback] = [progress] + ([] if quiet else [EstimateTime()])
    if metric_fn is not None:
        callbacks.append(EvaluateMetrics(metric_fn))
    if sample_fn is not None and not quiet:
        callbacks.append(SampleText(sample_fn, every=sample_every))
    callbacks.append(Checkpoint(run_dir, payload, keep=keep, run_id=run_id))
    try:
        trainer = Trainer(model, data, config, callbacks=callbacks, objective=objective,
                          monitor=monitor, mode=mode)
    except KeyboardInterrupt:  # during the precision timing
        raise RunError("interrupted before training started", INTERRUPTED) from None
    if resume_from is not None:
        restore(trainer, resume_from, run_dir)
    if kept:
        trainer.precision_note = "chosen when the run started, kept on resume"
    if trainer.is_main:
        remove_orphans(run_dir, ORPHANS)
        progress.forget_after(trainer.state.step)
        if full_config is not None:
            save_config(chosen_precision(full_config, trainer.precision), run_dir / "config.json")
        print(f"precision {trainer.precision}: {trainer.precision_note}", file=sys.stderr)
        if resume_from is not None:
            print(f"resuming {run_dir} from step {trainer.state.step}", file=sys.stderr)
    fit(trainer)
    return trainer


def chosen_precision(full_config: Any, precision: str) -> Any:
    """A copy of the run's config whose ``train.precision`` is the one chosen (what config.json
    records: ``auto`` says nothing about how the run trained)."""
    recorded = copy.deepcopy(full_config)
    if hasattr(getattr(recorded, "train", None), "precision"):
        recorded.train.precision = precision
    return recorded


def restore(trainer: Trainer, saved: dict, run_dir: Path) -> None:
    """Loads weights and trainer state from a checkpoint; a mismatch is one line (RunError)."""
    try:
        trainer.model.load_state_dict(saved["model"])
        trainer.load_state_dict(saved["trainer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(f"{run_dir}/last.pt does not fit this run ({reason[:160]}); pass --no-resume to "
             "start over")


def fit(trainer: Trainer) -> None:
    """Runs ``trainer.fit`` and leaves the torchrun group.

    Raises:
        RunError: after Ctrl-C or SIGTERM (code 130, resumable), or when the replicas diverged.
    """
    try:
        trainer.fit()
    except TrainingInterrupted as stop:
        trainer.leave_group()  # every rank stopped at the same step
        raise RunError(f"interrupted at step {stop.step}; rerun the same command to resume"
                       if trainer.is_main else "", INTERRUPTED) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the step in progress is lost
        raise RunError(f"aborted during step {trainer.state.step + 1}; rerun the same command "
                       "to resume from the last checkpoint" if trainer.is_main else "",
                       INTERRUPTED) from None
    except ReplicasDiverged as err:  # every rank found it, at the same point
        trainer.leave_group()
        raise RunError(f"error: {err}" if trainer.is_main else "", 2) from None
    trainer.leave_group()  # rank 0 goes on alone to export and evaluate


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
