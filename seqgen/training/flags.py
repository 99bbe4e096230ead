"""What a recipe accepts: the flags every recipe has (run folder, time cap, resume, dry run,
the metric that keeps ``best.pt``), the task's shortcut flags and presets, and checked
``--section.key=value`` overrides; :func:`configure` turns them into the run's config."""
from __future__ import annotations

import argparse
import random
import tempfile
from typing import Any, Callable, Sequence

import torch

from ..io.argtypes import non_negative_float
from ..io.config import apply_overrides, check_config
from ..tasks.spec import Task


def recipe_parser(doc: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A recipe's parser with the flags every recipe has; the recipe adds its own data flags."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
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


def configure(task: Task, make_config: Callable[[], Any], doc: str,
              argv: Sequence[str] | None = None, *, prog: str | None = None
              ) -> tuple[argparse.Namespace, Any]:
    """The resolved config of a run: defaults, then the preset, then the task's shortcut flags and
    ``--section.key=value`` overrides, then the run flags and ``--dry-run``; every value is then
    range-checked (a bad one exits 2 with one line naming its key), and the RNGs are seeded with
    ``train.seed`` so the model built next starts from the same weights every time (torch seeds
    itself randomly at start-up)."""
    parser = recipe_parser(doc, prog)
    for flag, (key, help_text) in task.switches.items():
        parser.add_argument(flag, dest=_dest(key), action="store_true", help=help_text)
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
    overrides = [f"--{key}=true" for key, _ in task.switches.values() if getattr(args, _dest(key))]
    overrides += [f"--{key}={getattr(args, _dest(key))}" for key, _ in task.shortcuts.values()
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
