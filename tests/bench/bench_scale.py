"""Benchmark: memory and start-up time against corpus size, for headlines and translation.

    python tests/bench/bench_scale.py              # 1x, 20x and 100x the bundled corpora
    python tests/bench/bench_scale.py --quick      # 1x and 20x only

It writes its own data in a temporary folder: the bundled AG News sample (assets/data/ag_news,
5,000 titles) and Multi30k sample (assets/data/multi30k, 3,000 pairs, written as one TSV pairs
file) repeated 1, 20 and 100 times. Each case runs the task's recipe as a subprocess twice, first
with an empty token cache (cold) and then again on the same data (cached), with
``--train.max_steps=20 --train.log_every=1``; the child is stopped once step 20 is logged, so
the figures cover start-up and training, not the final evaluation. Per run it reports the peak
resident memory (the child's ru_maxrss, from os.wait4), seconds from launch to the first
training step, and steps/s over steps 5-20 (from the run's metrics.jsonl).
Goal: at 100x, peak memory within 1 GB of 1x; cached start within 30 s; steps/s unchanged.
Not collected by pytest (the file name does not start with test_).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from machine import machine_line  # noqa: E402

STEPS = 20


def write_headlines(folder: Path, scale: int) -> list[str]:
    """AG News train.csv repeated ``scale`` times; returns the recipe flags."""
    raw = gzip.decompress((ROOT / "assets/data/ag_news/train.csv.gz").read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "wb") as handle:
        for _ in range(scale):
            handle.write(raw)
    return ["--data-dir", str(folder)]


def write_translation(folder: Path, scale: int) -> list[str]:
    """Multi30k train.de / train.en as one TSV pairs file repeated ``scale`` times."""
    src = gzip.decompress((ROOT / "assets/data/multi30k/train.de.gz").read_bytes()).decode()
    tgt = gzip.decompress((ROOT / "assets/data/multi30k/train.en.gz").read_bytes()).decode()
    rows = "".join(f"{s}\t{t}\n" for s, t in zip(src.split("\n"), tgt.split("\n")) if s and t)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "pairs.tsv", "w", encoding="utf-8") as handle:
        for _ in range(scale):
            handle.write(rows)
    return ["--pairs", str(folder / "pairs.tsv")]


def run_case(task: str, data_flags: list[str], cache: Path, run_dir: Path, timeout: float
             ) -> dict:
    """One recipe run to step 20: peak RSS (MB), seconds to the first step, steps/s."""
    argv = [sys.executable, str(ROOT / "recipes" / f"{task}.py"), *data_flags, "--cache-dir",
            str(cache), "--run-dir", str(run_dir), "--no-resume", "--quiet",
            f"--train.max_steps={STEPS}", "--train.log_every=1", "--train.eval_every=100000",
            "--train.precision=fp32", "--minutes", "0"]
    metrics = run_dir / "metrics.jsonl"
    start = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "output.log", "wb") as log:  # the recipe's own output stays out of the table
        pid = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT).pid
    steps: dict[int, float] = {}
    while time.time() - start < timeout:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if metrics.is_file():
            for line in metrics.read_text().splitlines():
                record = json.loads(line)
                if "loss" in record:
                    steps[record["step"]] = record["time"]
            if STEPS in steps:
                os.kill(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    if 1 not in steps or STEPS not in steps:
        return {"error": f"no step {STEPS} within {timeout:.0f} s (exit status {status})"}
    return {"peak_mb": usage.ru_maxrss / 1024, "first_step_s": steps[1] - start,
            "steps_per_s": (STEPS - 5) / (steps[STEPS] - steps[5])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1x and 20x only")
    parser.add_argument("--scales", type=int, nargs="+", help="corpus multiples (default 1 20 100)")
    parser.add_argument("--tasks", nargs="+", default=["headlines", "translation"])
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    args = parser.parse_args(argv)
    scales = args.scales or ([1, 20] if args.quick else [1, 20, 100])
    writers = {"headlines": write_headlines, "translation": write_translation}
    print(machine_line({"train": "fp32"}))
    print(f"{'task':<12}{'scale':>6}{'examples':>10}{'run':>8}{'peak MB':>9}{'first step s':>14}"
          f"{'steps/s':>9}")
    results = []
    with tempfile.TemporaryDirectory(prefix="seqgen-scale-") as tmp:
        for task in args.tasks:
            for scale in scales:
                folder = Path(tmp) / f"{task}-{scale}"
                flags = writers[task](folder / "data", scale)
                n = scale * (5000 if task == "headlines" else 3000)
                for kind in ("cold", "cached"):
                    result = run_case(task, flags, folder / "cache", folder / f"run-{kind}",
                                      args.timeout)
                    results.append({"task": task, "scale": scale, "run": kind, **result})
                    if "error" in result:
                        print(f"{task:<12}{scale:>5}x{n:>10,}{kind:>8}  {result['error']}")
                        continue
                    print(f"{task:<12}{scale:>5}x{n:>10,}{kind:>8}{result['peak_mb']:>9.0f}"
                          f"{result['first_step_s']:>14.1f}{result['steps_per_s']:>9.2f}",
                          flush=True)
    print(json.dumps({"bench": "scale", "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
