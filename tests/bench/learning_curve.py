"""Learning curve of a training run: a validation metric against minutes of training, as a PNG.

    python tests/bench/learning_curve.py runs/translation-m30k --metric val_bleu \
        --out assets/curves/translation.png --title "Multi30k de-en"

Reads the run's ``metrics.jsonl`` (the evaluation rows carry ``elapsed_s``, the training time
including evaluations) and draws one line with a dot per evaluation; the best point is marked.
With ``--also`` a second metric (e.g. val_loss) goes on a right-hand axis. Several run folders
are stages of one model (e.g. cross-entropy, then self-critical fine-tuning): each continues the
clock where the one before stopped, and a dashed line marks where a stage begins. ``--compare``
draws other runs of the same metric beside it, each from minute 0 with its folder as label.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from seqgen.tasks.pictures import figure
from seqgen.training.runfiles import run_minutes

# metrics drawn from others: bits per symbol from the loss in nats (what headlines log)
DERIVED = {"val_bpc": ("val_loss", 1 / math.log(2))}


def read_points(run_dir: Path, metric: str) -> list[tuple[float, float]]:
    """(minutes, value) of every row of ``metrics.jsonl`` that has ``metric`` (or, for a derived
    metric such as val_bpc, the metric it comes from)."""
    source, factor = DERIVED.get(metric, (metric, 1.0))
    points = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if "elapsed_s" not in row:
            continue
        if metric in row:
            points.append((row["elapsed_s"] / 60, float(row[metric])))
        elif source in row:
            points.append((row["elapsed_s"] / 60, float(row[source]) * factor))
    return points


def read_stages(run_dirs: list[Path], metric: str) -> tuple[list[tuple[float, float]],
                                                            list[float]]:
    """Points of consecutive runs on one clock, and the minutes at which stages 2.. begin."""
    points: list[tuple[float, float]] = []
    starts: list[float] = []
    offset = 0.0
    for i, run_dir in enumerate(run_dirs):
        stage = read_points(run_dir, metric)
        if i:
            starts.append(offset)
        points += [(offset + minutes, value) for minutes, value in stage]
        offset += run_minutes(run_dir) or 0.0
    return points, starts


def draw(points: list[tuple[float, float]], out: Path, *, metric: str, title: str,
         higher_is_better: bool, also: list[tuple[float, float]] | None = None,
         also_metric: str = "", stage_starts: list[float] = (),
         others: list[tuple[str, list[tuple[float, float]]]] = (), label: str = "") -> None:
    minutes, values = zip(*points)
    best = (max if higher_is_better else min)(range(len(values)), key=values.__getitem__)
    with figure(out, dpi=110, figsize=(6.4, 3.6)) as (_, ax):
        ax.plot(minutes, values, marker="o", markersize=3, color="tab:blue", label=label or metric)
        for name, other in others:
            ax.plot(*zip(*other), marker="o", markersize=2, linewidth=1, alpha=0.8, label=name)
        if others:
            ax.legend(fontsize=8)
        ax.annotate(f"best {values[best]:.4g} at {minutes[best]:.0f} min",
                    (minutes[best], values[best]), textcoords="offset points", xytext=(-110, -28),
                    fontsize=8, arrowprops={"arrowstyle": "->", "lw": 0.6})
        ax.set_xlabel("training minutes (2 CPU cores)")
        ax.set_ylabel(metric, color="tab:blue")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        for start in stage_starts:
            ax.axvline(start, color="gray", linestyle="--", linewidth=0.8)
        if also:
            right = ax.twinx()
            right.plot(*zip(*also), color="tab:orange", alpha=0.7, linewidth=1)
            right.set_ylabel(also_metric, color="tab:orange")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="run_dir",
                        help="a run folder, or several: the stages of one model, in order")
    parser.add_argument("--metric", required=True,
                        help="e.g. val_bleu, val_bleu4, val_bpc (bits/char, from val_loss)")
    parser.add_argument("--also", default="", help="a second metric on a right-hand axis")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="RUN",
                        help="other run folders to draw beside it, each its own line")
    parser.add_argument("--lower-is-better", action="store_true")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for run_dir in [*args.run_dirs, *args.compare]:
        if not (run_dir / "metrics.jsonl").is_file():
            print(f"error: no metrics.jsonl in {run_dir}", file=sys.stderr)
            return 2
    points, starts = read_stages(args.run_dirs, args.metric)
    if not points:
        print(f"error: no {args.metric!r} rows in {', '.join(map(str, args.run_dirs))}",
              file=sys.stderr)
        return 2
    also = read_stages(args.run_dirs, args.also)[0] if args.also else None
    others = [(run_dir.name, read_points(run_dir, args.metric)) for run_dir in args.compare]
    others = [(name, other) for name, other in others if other]
    draw(points, args.out, metric=args.metric, title=args.title or str(args.run_dirs[-1]),
         higher_is_better=not args.lower_is_better, also=also, also_metric=args.also,
         stage_starts=starts, others=others,
         label=args.run_dirs[-1].name if others else "")
    print(f"{args.out}: {len(points)} evaluations, last {points[-1][1]:.4g} at "
          f"{points[-1][0]:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
