"""Ctrl-C and reruns: the step in progress finishes, last.pt is saved, the rerun resumes there;
a run folder is checked before it is touched."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqgen.io.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # every test runs the headlines recipe in a subprocess

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--quiet", "--data.limit=200", "--data.batch_size=16", "--model.decoder.hidden_dim=32",
        "--model.decoder.emb_dim=16", "--train.eval_every=1000000", "--train.log_every=1",
        "--train.precision=fp32"]


def recipe(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "recipes" / "headlines.py"), "--run-dir", str(run_dir),
            *TINY, *extra]


def env(tmp_path: Path) -> dict:
    return {**os.environ, "SEQGEN_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return [row["step"] for row in rows if "loss" in row]


def wait_for_steps(proc: subprocess.Popen, run_dir: Path, n: int, *, timeout: float = 120) -> None:
    """Blocks until the child has logged ``n`` training steps (``--train.log_every=1`` writes a
    row to metrics.jsonl after each): its signal handler is then surely installed and a step
    has surely finished. That event decides; the child's exit fails the test at once, and the
    deadline only turns a hang into a failure, never a slow machine into a different outcome."""
    deadline = time.monotonic() + timeout
    while len(logged_steps(run_dir)) < n:
        try:
            proc.wait(timeout=0.05)  # the pause between looks; ends early if the child exits
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                err = proc.communicate()[1]
                pytest.fail(f"no {n} steps logged within {timeout} s: {err[-2000:]}")
        else:
            pytest.fail(f"the run exited ({proc.returncode}) before logging {n} steps: "
                        f"{proc.stderr.read()[-2000:]}")


def test_ctrl_c_saves_the_step_and_the_rerun_resumes_there(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(recipe(run_dir, "--no-resume", "--train.max_steps=100000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(tmp_path))
    wait_for_steps(proc, run_dir, 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("interrupted at step ")
    assert lines[-1].endswith("; rerun the same command to resume")
    assert sum("interrupted" in line for line in lines) == 1
    step = int(lines[-1].split()[3].rstrip(";"))
    assert step >= 3  # the step in progress when the signal came, at the earliest the third
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["state"]["step"] == step
    assert not (run_dir / "model.pt").exists() and out == ""

    orphan = run_dir / ".last.pt.k2j4x9.tmp"  # left by a kill in the middle of a write
    orphan.write_bytes(b"partial")
    with (run_dir / "metrics.jsonl").open("a") as log:  # a row of a step the checkpoint lacks
        log.write(json.dumps({"step": step + 1, "loss": 9.9}) + "\n")
    result = subprocess.run(recipe(run_dir, f"--train.max_steps={step + 4}"), capture_output=True,
                            text=True, timeout=120, env=env(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {run_dir} from step {step}" in result.stderr
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["state"]["step"] == step + 4
    steps = logged_steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == step + 4  # no step logged twice
    assert not orphan.exists() and '"bits_per_char"' in result.stdout


def test_a_changed_model_is_refused_before_the_run_is_touched(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.run(recipe(run_dir, "--no-resume", "--train.max_steps=2"),
                           capture_output=True, text=True, timeout=120, env=env(tmp_path))
    assert first.returncode == 0, first.stderr[-2000:]
    saved = {name: (run_dir / name).read_bytes() for name in ("config.json", "metrics.jsonl")}
    changed = subprocess.run(recipe(run_dir, "--train.max_steps=4",
                                    "--model.decoder.hidden_dim=48"),
                             capture_output=True, text=True, timeout=120, env=env(tmp_path))
    assert changed.returncode == 2
    err = changed.stderr.strip().splitlines()[-1]
    assert "Traceback" not in changed.stderr
    assert "model.decoder.hidden_dim=32 (now 48)" in err and "--no-resume" in err
    assert all((run_dir / name).read_bytes() == data for name, data in saved.items())
