"""Trainer and checkpoints: exact resume, round trips, atomic writes, clear errors, DDP on CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import TITLES, tiny_model, write_ag_news

from seqgen.io.checkpoint import CheckpointError, load_checkpoint, make_checkpoint
from seqgen.io.config import apply_overrides, from_dict, to_dict
from seqgen.io.export import export_checkpoint
from seqgen.io.fileio import atomic_save
from seqgen.io.loaded import LoadedModel
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.tasks.headlines.data import HeadlineData, HeadlineDataConfig
from seqgen.tokenizers import CharTokenizer
from seqgen.training.runfiles import average_weights
from seqgen.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


def tiny_setup(tmp_path: Path, seed: int) -> tuple[HeadlineData, EncoderDecoder]:
    write_ag_news(tmp_path / "ag")
    data = HeadlineData(HeadlineDataConfig(data_dir=str(tmp_path / "ag"), batch_size=2,
                                           val_fraction=0.1))
    torch.manual_seed(seed)
    model = EncoderDecoder(ModelConfig(decoder=DecoderConfig(emb_dim=8, hidden_dim=16, num_layers=2,
                                                             dropout=0.3)),
                           src_vocab_size=len(data.vocab), tgt_vocab_size=len(data.vocab))
    return data, model


def train_config() -> TrainConfig:
    return TrainConfig(lr=1e-2, max_steps=12, max_epochs=100, warmup_steps=3, eval_every=0,
                       device="cpu", seed=5)


class StopAt:
    """Simulates an interruption (a crash or a kill) after a given step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, **_) -> None:
        if trainer.state.step == self.step:
            trainer.should_stop = True


def test_resume_after_interruption_reaches_the_same_weights(tmp_path):
    data, model = tiny_setup(tmp_path, seed=0)
    Trainer(model, data, train_config()).fit()

    data2, first = tiny_setup(tmp_path, seed=0)
    half = Trainer(first, data2, train_config(), callbacks=[StopAt(7)])  # mid-epoch
    half.fit()
    path = tmp_path / "last.pt"
    atomic_save(make_checkpoint(first, task="headlines", tgt_vocab=data2.vocab,
                                tgt_tokenizer=CharTokenizer(), trainer_state=half.state_dict()), path)

    ckpt = load_checkpoint(path)
    data3, resumed = tiny_setup(tmp_path, seed=99)  # different initial weights: all must be restored
    resumed.load_state_dict(ckpt["model"])
    trainer = Trainer(resumed, data3, train_config())
    trainer.load_state_dict(ckpt["trainer"])
    assert trainer.state.step == 7
    trainer.fit()
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_lowers_the_validation_loss(tmp_path):
    data, model = tiny_setup(tmp_path, seed=0)
    trainer = Trainer(model, data, TrainConfig(lr=1e-2, max_steps=40, max_epochs=100, device="cpu",
                                               warmup_steps=0, eval_every=0))
    before = trainer.evaluate()["val_loss"]
    trainer.fit()
    assert trainer.evaluate()["val_loss"] < before


def test_checkpoint_round_trip_gives_identical_logits(tmp_path):
    model = tiny_model(encoder="rnn", attention="additive", vocab=12)
    from seqgen.vocab import Vocab
    vocab = Vocab([chr(97 + i) for i in range(8)])
    path = tmp_path / "m.pt"
    atomic_save(make_checkpoint(model, task="translation", tgt_vocab=vocab, src_vocab=vocab,
                                tgt_tokenizer=CharTokenizer(), src_tokenizer=CharTokenizer()), path)
    loaded = LoadedModel.from_file(path)
    from test_decoder import batch_for
    batch = batch_for("rnn")
    a, _ = model.decoder(batch.tgt_in, model._encode(batch))
    b, _ = loaded.model.decoder(batch.tgt_in, loaded.model._encode(batch))
    assert torch.equal(a, b) and loaded.tgt_vocab == vocab
    export_checkpoint(path, tmp_path / "half.pt")  # half precision: close, not equal
    half = LoadedModel.from_file(tmp_path / "half.pt")
    c, _ = half.model.decoder(batch.tgt_in, half.model._encode(batch))
    assert torch.allclose(a, c, atol=1e-2)
    avg = average_weights([path, path])
    assert all(torch.equal(avg[k], v) for k, v in load_checkpoint(path)["model"].items())


def test_bad_checkpoint_files_give_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a seqgen checkpoint"):
        load_checkpoint(foreign)
    model = tiny_model()
    from seqgen.vocab import Vocab
    good = tmp_path / "good.pt"
    atomic_save(make_checkpoint(model, task="headlines", tgt_vocab=Vocab(list("abcdefgh")),
                                tgt_tokenizer=CharTokenizer()), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cannot read") as err:
        load_checkpoint(truncated)
    assert "\n" not in str(err.value)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True) == {"a": 1}
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------------
@dataclass
class Inner:
    lr: float = 1.0
    name: str = "x"
    flag: bool = False
    layers: list[int] = field(default_factory=list)


@dataclass
class Outer:
    train: Inner = field(default_factory=Inner)
    steps: int = 3


def test_dotted_overrides_are_type_checked():
    config = apply_overrides(Outer(), ["--train.lr=3e-4", "--train.flag=true", "--steps=7",
                                       "--train.layers=1,2"])
    assert config.train.lr == 3e-4 and config.train.flag and config.steps == 7
    assert config.train.layers == [1, 2]
    assert from_dict(Outer, to_dict(config)) == config
    for bad, message in (("--train.lr=fast", "expects float"), ("--train.nope=1", "unknown config key"),
                         ("--steps", "must look like"), ("--train.flag=maybe", "true or false")):
        with pytest.raises(ValueError, match=message):
            apply_overrides(Outer(), [bad])


@pytest.mark.slow  # torchrun with two processes
def test_two_process_ddp_run_on_cpu_trains(tmp_path):
    write_ag_news(tmp_path / "ag", TITLES * 4)
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "recipes" / "headlines.py"), "--data-dir", str(tmp_path / "ag"),
         "--run-dir", str(run_dir), "--quiet", "--minutes", "0", "--train.max_steps=4",
         "--train.eval_every=2", "--data.batch_size=4", "--model.decoder.hidden_dim=16",
         "--model.decoder.emb_dim=8"],
        capture_output=True, text=True, timeout=300, env=env)
    # the ranks' own messages come before torchrun's summary, which alone fills the last 2,000
    assert result.returncode == 0, result.stderr.split("elastic/multiprocessing")[0][-3000:]
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["trainer"]["state"]["step"] == 4
    assert (run_dir / "model.pt").exists() and '"bits_per_char"' in result.stdout


# ------------------------------------------------------------------------------------------------
class Recorder:
    """Remembers the steps at which each event happened."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_evaluated(self, trainer, metrics) -> None:
        self.events.append(("evaluated", trainer.state.step))

    def on_interrupt(self, trainer) -> None:
        self.events.append(("interrupt", trainer.state.step))


def test_the_schedule_follows_steps_whenever_there_is_a_step_limit(tmp_path):
    data, model = tiny_setup(tmp_path, seed=0)
    config = TrainConfig(max_steps=100, max_epochs=1000, max_minutes=5, device="cpu",
                         precision="fp32")
    trainer = Trainer(model, data, config)
    trainer.state.step, trainer.state.elapsed = 50, 10_000.0  # a slow machine: time is long over
    assert trainer.progress() == 0.5
    config.max_steps = 0  # a pure time budget follows time
    trainer.state.elapsed = 150.0
    assert trainer.progress() == 0.5
    config.max_minutes = 0  # neither: epochs, from a step count computed once
    calls = []
    plan = data.train_plan
    data.train_plan = lambda epoch: calls.append(epoch) or plan(epoch)
    trainer._steps_per_epoch = None
    fractions = [trainer.progress() for _ in range(5)]
    assert len(set(fractions)) == 1 and calls == [0]


def test_the_final_weights_are_evaluated_even_mid_epoch(tmp_path):
    data, model = tiny_setup(tmp_path, seed=0)
    recorder = Recorder()
    config = TrainConfig(max_steps=3, max_epochs=100, eval_every=0, device="cpu", precision="fp32")
    Trainer(model, data, config, callbacks=[recorder]).fit()
    assert recorder.events == [("evaluated", 3)]


def test_a_signal_finishes_the_step_then_stops_and_restores_the_handlers(tmp_path):
    import signal

    from seqgen.training.trainer import TrainingInterrupted

    class SendSignal:
        def on_step_end(self, trainer, **_) -> None:
            if trainer.state.step == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    data, model = tiny_setup(tmp_path, seed=0)
    recorder = Recorder()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    trainer = Trainer(model, data, train_config(), callbacks=[SendSignal(), recorder])
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit()
    assert stop.value.step == 2 and stop.value.signal_name == "SIGTERM"
    assert recorder.events == [("interrupt", 2)] and trainer.state.step == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize("argv,message", [
    (["--train.lr=nan"], "train.lr must be a finite number"),
    (["--train.lr=0"], "train.lr must be > 0"),
    (["--train.max_steps=-1"], "train.max_steps must be >= 0"),
    (["--train.clip_norm=inf"], "train.clip_norm must be a finite number"),
    (["--data.batch_size=0"], "data.batch_size must be >= 1"),
    (["--data.val_fraction=1.5"], "data.val_fraction must be in (0, 1)"),
    (["--model.decoder.dropout=1"], "model.decoder.dropout must be in [0, 1)"),
    (["--minutes", "-2"], "must be a number >= 0"),
])
def test_bad_values_are_one_line_errors(argv, message, capsys):
    from seqgen.tasks.spec import Task
    from seqgen.training.flags import configure

    @dataclass
    class Recipe:
        data: HeadlineDataConfig = field(default_factory=HeadlineDataConfig)
        model: ModelConfig = field(default_factory=ModelConfig)
        train: TrainConfig = field(default_factory=TrainConfig)
        run_dir: str = "runs/x"

    with pytest.raises(SystemExit) as exit_:
        configure(Task(), Recipe, "A recipe.", argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and message in err


def test_the_time_estimate_names_minutes_steps_and_speed():
    from types import SimpleNamespace

    from seqgen.training.callbacks import estimate_line

    def trainer(max_steps: int, max_minutes: float, step: int = 23) -> SimpleNamespace:
        config = SimpleNamespace(max_steps=max_steps, max_minutes=max_minutes)
        return SimpleNamespace(config=config, state=SimpleNamespace(step=step, elapsed=step / 8),
                               total_steps=lambda: max_steps or None)

    assert estimate_line(trainer(1400, 0), 8.0) == "about 2.9 min for 1,400 steps at 8.0 steps/s"
    assert "the 1,000 steps left" in estimate_line(trainer(1400, 0, step=423), 8.0, first_step=400)
    assert estimate_line(trainer(1400, 1.0), 8.0).startswith("the 1-minute cap stops it after")
