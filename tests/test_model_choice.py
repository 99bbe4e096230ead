"""Choosing and scheduling by a validation metric: the plateau schedule and early stopping (the
trainer's own: no callback is needed for either), callbacks that name an event the trainer never
calls, and the best-vs-averaged checkpoint the translation recipe ships."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_runner import recipe
from test_train_checkpoint import tiny_setup

from seqgen.io.checkpoint import load_checkpoint
from seqgen.io.fileio import atomic_save
from seqgen.training.callbacks import Callback
from seqgen.training.trainer import TrainConfig, Trainer


class Scripted(Callback):
    """Reports a scripted validation metric at each evaluation."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)

    def on_evaluate(self, trainer, metrics) -> None:
        metrics["score"] = self.values.pop(0)


def fit(tmp_path: Path, values: list[float], **config) -> Trainer:
    data, model = tiny_setup(tmp_path, seed=0)
    settings = dict(lr=1e-2, max_steps=len(values), max_epochs=100, warmup_steps=0,
                    eval_every=1, device="cpu", precision="fp32")
    trainer = Trainer(model, data, TrainConfig(**{**settings, **config}),
                      callbacks=[Scripted(values)], monitor="score", mode="max")
    trainer.fit()
    return trainer


def test_the_plateau_schedule_halves_the_rate_after_evaluations_without_progress(tmp_path):
    trainer = fit(tmp_path, [1.0, 2.0, 1.5, 1.9, 2.5, 2.4, 2.3], schedule="plateau",
                  plateau_patience=2, plateau_factor=0.5)
    # bad evaluations: 1.5, 1.9 (halve), then 2.5 is a new best, then 2.4, 2.3 (halve again)
    assert trainer.state.lr_scale == pytest.approx(0.25) and trainer.state.best == 2.5
    assert trainer.current_lr() == pytest.approx(1e-2 * 0.25)


def test_early_stopping_stops_after_patience_evaluations_without_progress(tmp_path):
    trainer = fit(tmp_path, [1.0, 3.0, 2.0, 2.5, 2.9, 9.0, 9.0], patience=3)
    assert trainer.state.step == 5 and trainer.state.best == 3.0  # 2.0, 2.5, 2.9: three bad


def test_plateau_and_patience_work_without_any_callback(tmp_path):
    """The monitored metric is the trainer's own: val_loss with no callback at all."""
    data, model = tiny_setup(tmp_path, seed=0)
    seen = []
    trainer = Trainer(model, data, TrainConfig(lr=1e-2, max_steps=40, max_epochs=100,
                                               warmup_steps=0, eval_every=1, device="cpu",
                                               precision="fp32", schedule="plateau",
                                               plateau_patience=1, plateau_factor=0.5,
                                               patience=2))
    real = trainer.monitor.update

    def scripted(trainer_, metrics):  # the real update, on a loss that stops falling
        metrics["val_loss"] = [3.0, 2.0, 2.5, 2.6, 1.0][len(seen)]
        seen.append(metrics["val_loss"])
        return real(trainer_, metrics)

    trainer.monitor.update = scripted
    trainer.fit()
    # 2.5 and 2.6 are two evaluations without progress: each halves the rate, the second stops
    assert seen == [3.0, 2.0, 2.5, 2.6] and trainer.state.step == 4
    assert trainer.state.lr_scale == pytest.approx(0.25) and trainer.state.best == 2.0


def test_a_callback_naming_an_unknown_event_is_refused():
    with pytest.raises(TypeError, match="on_evaluation.*never calls"):
        class Misspelt(Callback):  # noqa: F841 - refused when the class is defined
            def on_evaluation(self, trainer, metrics) -> None: ...

    class Duck:  # not a Callback: checked when the trainer gets it
        def on_step(self, trainer) -> None: ...

    with pytest.raises(TypeError, match="Duck has on_step"):
        Trainer(torch.nn.Linear(1, 1), None, TrainConfig(device="cpu"), callbacks=[Duck()])


def test_the_cosine_schedule_ignores_plateaus(tmp_path):
    trainer = fit(tmp_path, [2.0, 1.0, 1.0, 1.0], schedule="cosine", plateau_patience=1)
    assert trainer.state.lr_scale == 1.0


@pytest.mark.parametrize("averaged_wins", [True, False])
def test_the_average_ships_only_when_it_scores_higher(tiny_checkpoints, tmp_path, monkeypatch,
                                                      averaged_wins):
    mt = recipe("translation")
    base = load_checkpoint(tiny_checkpoints["translation"])
    for step, shift in ((10, 0.0), (20, 0.2), (30, 0.4)):
        moved = {k: v + shift if v.is_floating_point() else v for k, v in base["model"].items()}
        atomic_save({**base, "model": moved}, tmp_path / f"step-{step:08d}.pt")
    shutil.copy(tmp_path / "step-00000010.pt", tmp_path / "best.pt")
    shutil.copy(tmp_path / "step-00000030.pt", tmp_path / "last.pt")  # names the run's files

    def fake_scores(self, loaded, built, caller=None):  # the averaged weights sit at shift +0.3
        shifted = not torch.equal(loaded.model.state_dict()["decoder.output.weight"],
                                  base["model"]["decoder.output.weight"].float())
        return {"bleu": 30.0 if shifted == averaged_wins else 20.0}

    monkeypatch.setattr(mt.Translation, "validation_scores", fake_scores)
    config = mt.TranslationConfig(average_last=2)
    built = SimpleNamespace(data=SimpleNamespace(val_src=["x"], val_tgt=["y"]))
    chosen = mt.Translation().final_checkpoint(tmp_path, built, config)
    assert chosen.name == ("averaged.pt" if averaged_wins else "best.pt")
    averaged = load_checkpoint(tmp_path / "averaged.pt")["model"]
    key = "decoder.output.weight"
    expected = base["model"][key] + 0.3  # mean of the last two: +0.2 and +0.4
    assert torch.allclose(averaged[key], expected, atol=1e-6)
