"""Runs that meet trouble end clean: a full disk is one line and keeps the previous checkpoint, a
run folder in use is refused, a new run sets an earlier run's files aside and never prunes or
averages them, and data without validation examples is refused before training."""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_model

from seqgen.io.checkpoint import (CheckpointWriteError, load_checkpoint, make_checkpoint,
                                  save_checkpoint)
from seqgen.tasks.spec import Built, Task
from seqgen.tokenizers import CharTokenizer
from seqgen.training.callbacks import Checkpoint
from seqgen.training.checks import RunError
from seqgen.training.config import TrainConfig
from seqgen.training.flags import configure
from seqgen.training.runfiles import checkpoint_run_id, run_checkpoints
from seqgen.training.runfolder import RunFolderBusy, RunLock
from seqgen.training.runner import run, train_task
from seqgen.vocab import Vocab

VOCAB = Vocab(list("abcdefgh"))
TINY = ["--quiet", "--data.limit=64", "--data.batch_size=16", "--model.decoder.hidden_dim=16",
        "--model.decoder.emb_dim=8", "--train.eval_every=2", "--train.precision=fp32"]


def ckpt_of(seed: int) -> dict:
    return make_checkpoint(tiny_model(vocab=len(VOCAB), seed=seed), task="headlines",
                           tgt_vocab=VOCAB, tgt_tokenizer=CharTokenizer())


def headlines(run_dir: Path, *extra: str) -> int:
    return run("headlines", argv=["--run-dir", str(run_dir), *TINY, *extra])


def last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGEN_CACHE_DIR", str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and a mount that works here; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tiny file system needs root on Linux")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(folder: Path) -> None:
    with (folder / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays_intact(tiny_disk):
    path = tiny_disk / "last.pt"
    save_checkpoint(ckpt_of(0), path)
    before = path.read_bytes()
    fill(tiny_disk)
    with pytest.raises(CheckpointWriteError) as err:
        save_checkpoint(ckpt_of(1), path)
    message = str(err.value)
    assert "\n" not in message and err.value.errno == errno.ENOSPC
    assert message == f"cannot write {path}: no space left on device; the previous last.pt is intact"
    assert path.read_bytes() == before and load_checkpoint(path)["task"] == "headlines"
    assert not list(tiny_disk.glob(".*.tmp"))  # the temporary file is gone
    with pytest.raises(CheckpointWriteError, match=r"step-1\.pt: no space.*earlier checkpoints"):
        save_checkpoint(ckpt_of(1), tiny_disk / "step-1.pt")
    (tiny_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(CheckpointWriteError, match="read-only file system; the previous last"):
        save_checkpoint(ckpt_of(1), path)


def full_disk_after(calls: int, monkeypatch) -> None:
    """torch.save fails as it does on a full disk once ``calls`` files were written."""
    real, done = torch.save, []

    def save(obj, handle, *args, **kwargs):
        done.append(1)
        if len(done) <= calls:
            return real(obj, handle, *args, **kwargs)
        handle.write(b"PK\3\4 partial")
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as cause:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 "
                               "vs 598") from cause

    monkeypatch.setattr(torch, "save", save)


def test_the_runner_exits_2_with_one_line_when_the_disk_fills(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    full_disk_after(2, monkeypatch)  # step 2: last.pt and best.pt; step 4: last.pt fails
    assert headlines(run_dir, "--train.max_steps=6") == 2
    assert last_error(capsys) == (f"error: cannot write {run_dir / 'last.pt'}: no space left on "
                                  "device; the previous last.pt is intact; free some space and "
                                  "rerun the same command to resume")
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["state"]["step"] == 2
    assert not list(run_dir.glob(".*.tmp"))
    monkeypatch.undo()
    monkeypatch.setenv("SEQGEN_CACHE_DIR", str(tmp_path / "cache"))
    assert headlines(run_dir, "--train.max_steps=6") == 0  # space again: the rerun resumes
    assert f"resuming {run_dir} from step 2" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
def test_a_run_folder_in_use_is_refused_with_the_holder_named(tmp_path, capsys):
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        assert headlines(run_dir, "--train.max_steps=2") == 2
        err = last_error(capsys)
        assert err.startswith(f"error: {run_dir} is in use by another training (pid {os.getpid()} "
                              f"on host {socket.gethostname()}, started ")
        assert not (run_dir / "config.json").exists()  # refused before anything was written
    assert headlines(run_dir, "--train.max_steps=2") == 0  # released: the folder is free again


def test_the_lock_goes_with_a_crashed_holder_and_names_a_live_one(tmp_path):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes the lock, says so, and waits to be killed
        RunLock(tmp_path / "run").acquire()
        os.write(write, b"x")
        signal.pause()
        os._exit(0)
    os.read(read, 1)
    with pytest.raises(RunFolderBusy, match=f"pid {pid} on host"):
        RunLock(tmp_path / "run").acquire()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    RunLock(tmp_path / "run").acquire().release()  # a crash released it


def test_a_refused_run_leaves_no_folder_behind(tmp_path, capsys):
    run_dir = tmp_path / "new"
    assert headlines(run_dir, "--data-dir", str(tmp_path / "missing")) == 2
    assert not run_dir.exists()


# ------------------------------------------------------------------------------------------------
def test_pruning_and_averaging_see_only_the_current_runs_step_files(tmp_path):
    old = [tmp_path / f"step-{step:08d}.pt" for step in (100, 200, 300)]
    for path in old:  # an earlier, longer run's files, and one from before run ids
        save_checkpoint({**ckpt_of(0), "run_id": "old"}, path)
    save_checkpoint(ckpt_of(0), tmp_path / "step-00000050.pt")
    callback = Checkpoint(tmp_path, lambda model, state: ckpt_of(1), keep=2, run_id="new")
    trainer = SimpleNamespace(is_main=True, model=None, improved=False, state=SimpleNamespace(step=0),
                              state_dict=lambda: {})
    for step in (3, 6, 9):
        trainer.state.step = step
        callback.save(trainer)
    mine = [tmp_path / "step-00000006.pt", tmp_path / "step-00000009.pt"]
    assert run_checkpoints(tmp_path) == mine  # the run of last.pt
    assert run_checkpoints(tmp_path, "old") == old and all(p.exists() for p in old)
    assert not (tmp_path / "step-00000003.pt").exists()  # pruned: this run's oldest
    assert checkpoint_run_id(tmp_path / "last.pt") == "new"


def test_no_resume_sets_the_earlier_run_aside_and_a_resumed_run_keeps_its_id(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert headlines(run_dir, "--train.max_steps=2") == 0
    first = checkpoint_run_id(run_dir / "last.pt")
    assert first and checkpoint_run_id(run_dir / "model.pt") == first
    assert headlines(run_dir, "--train.max_steps=4") == 0  # resumes: the same run
    assert checkpoint_run_id(run_dir / "last.pt") == first
    capsys.readouterr()
    assert headlines(run_dir, "--train.max_steps=2", "--no-resume") == 0
    moved = [line for line in capsys.readouterr().err.splitlines() if "moved" in line]
    aside = list(run_dir.glob("previous-*"))
    assert len(aside) == 1 and moved == [f"--no-resume: moved the earlier run's files to "
                                         f"{aside[0]}/"]
    assert {p.name for p in aside[0].iterdir()} >= {"last.pt", "best.pt", "model.pt",
                                                     "metrics.jsonl", "config.json"}
    assert checkpoint_run_id(aside[0] / "last.pt") == first
    second = checkpoint_run_id(run_dir / "last.pt")
    assert second and second != first
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["state"]["step"] == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(row["step"] for row in rows) == 2  # the new run's log only


# ------------------------------------------------------------------------------------------------
class NoValidation:
    """Four training batches and no validation batch."""

    def train_plan(self, epoch: int) -> list[list[int]]:
        return [[0, 1]] * 4

    def make_batch(self, indices):  # pragma: no cover - never reached
        raise AssertionError("trained without validation data")

    def val_batches(self):
        return iter(())


@dataclass
class StubConfig:
    train: TrainConfig = field(default_factory=lambda: TrainConfig(device="cpu"))
    run_dir: str = "runs/stub"


class Stub(Task):
    name = "stub"
    config = StubConfig

    def build(self, config, previous):
        return Built(NoValidation(), tiny_model(vocab=len(VOCAB)), VOCAB, CharTokenizer(),
                     summary="1 training / 0 validation examples")


def test_data_without_validation_examples_is_refused_before_training(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(Stub(), argv=["--run-dir", str(run_dir), "--quiet"]) == 2
    assert last_error(capsys) == ("error: the data has no validation examples, so training could "
                                  "not be evaluated; give more examples or a validation file")
    assert not run_dir.exists()


def test_the_runner_called_from_python_raises_instead_of_ending_the_process(tmp_path):
    """Library code never ends the process: train_task raises RunError (message and code);
    only run() and the CLI turn it into an exit code."""
    args, config = configure(Stub(), StubConfig, "", ["--run-dir", str(tmp_path / "run")])
    with pytest.raises(RunError, match="no validation examples") as stop:
        train_task(Stub(), args, config)
    assert stop.value.code == 2 and str(stop.value).startswith("error: ")
