"""The one runner: presets chosen explicitly or by the data (never by sniffing argv), shortcut
flags, building that leaves the config alone, and the exported checkpoint."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from seqgen.training.flags import configure

ROOT = Path(__file__).resolve().parents[1]


def recipe(name: str):
    """A task's spec module (its config and Task class), with the recipe's main() beside them."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    task_module = importlib.import_module(f"seqgen.tasks.{name}.task")
    task_module.main = module.main
    return task_module


def test_captioning_presets_follow_the_data_and_overrides_still_win():
    cap = recipe("captioning")
    _, synthetic = configure(cap.Captioning(), cap.CaptioningConfig, cap.__doc__,
                             ["--model.decoder.hidden_dim=96"])
    assert synthetic.model.decoder.input_feeding and synthetic.model.decoder.hidden_dim == 96
    assert synthetic.model.encoder.hidden_dim == 128  # the rest of the synthetic model stays
    _, photos = configure(cap.Captioning(), cap.CaptioningConfig, cap.__doc__,
                          ["--data-dir", "somewhere", "--data.min_freq=2"])
    assert photos.data.data_dir == "somewhere" and photos.data.min_freq == 2
    assert photos.model.decoder.hidden_dim == 512 and not photos.model.decoder.input_feeding
    _, chosen = configure(cap.Captioning(), cap.CaptioningConfig, cap.__doc__,
                          ["--data-dir", "somewhere", "--preset", "synthetic"])
    assert chosen.model.decoder.input_feeding


def test_shortcut_flags_are_type_checked_like_overrides(capsys):
    mt = recipe("translation")
    _, config = configure(mt.Translation(), mt.TranslationConfig, mt.__doc__,
                          ["--src", "fr", "--beam", "3"])
    assert config.data.src == "fr" and config.beam == 3
    with pytest.raises(SystemExit):
        configure(mt.Translation(), mt.TranslationConfig, mt.__doc__, ["--beam", "many"])
    assert "beam expects int" in capsys.readouterr().err


def test_building_leaves_the_config_alone(tmp_path):
    mt = recipe("translation")
    _, config = configure(mt.Translation(), mt.TranslationConfig, mt.__doc__,
                          ["--dry-run", "--data.tokenizer=word", "--run-dir", str(tmp_path)])
    built = mt.Translation().build(config, None)
    assert config.model.share_embeddings and not built.model.config.share_embeddings


def test_the_exported_checkpoint_is_best_else_last(tmp_path):
    from seqgen.tasks.spec import Task

    task = Task()
    assert task.final_checkpoint(tmp_path, None, None) == tmp_path / "last.pt"
    (tmp_path / "best.pt").write_bytes(b"")
    assert task.final_checkpoint(tmp_path, None, None) == tmp_path / "best.pt"


def test_the_best_checkpoint_can_be_kept_by_validation_loss():
    from seqgen.training.flags import kept_by

    captioning = recipe("captioning").Captioning()
    assert kept_by(captioning, None) == ("val_bleu4", "max")
    assert kept_by(captioning, "val_bleu4") == ("val_bleu4", "max")
    assert kept_by(captioning, "val_loss") == ("val_loss", "min")
    assert kept_by(captioning, "val_cider") == ("val_cider", "max")
    with pytest.raises(ValueError, match="must be one of val_bleu4, val_loss, val_cider"):
        kept_by(captioning, "val_bleu")
    headlines = recipe("headlines").Headlines()
    with pytest.raises(ValueError, match="must be one of val_loss .got 'val_cider'"):
        kept_by(headlines, "val_cider")


@pytest.mark.slow  # a real training run (~14 s)
def test_keep_best_by_val_loss_picks_the_lowest_loss_in_a_real_run(tmp_path, capsys):
    import json

    from seqgen.io.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    code = recipe("translation").main(["--dry-run", "--run-dir", str(run_dir), "--quiet",
                                       "--keep-best-by", "val_loss", "--train.eval_every=2"])
    assert code == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(losses) >= 2
    state = load_checkpoint(run_dir / "last.pt")["trainer"]["state"]
    assert state["best"] == pytest.approx(min(losses))  # the lowest loss, not the highest BLEU
    assert recipe("translation").main(["--dry-run", "--run-dir", str(tmp_path / "x"),
                                       "--keep-best-by", "nonsense"]) == 2
    assert "must be one of val_bleu, val_loss (got" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was built or written


def test_a_resumed_run_that_keeps_best_by_another_metric_starts_its_best_anew(caplog):
    from types import SimpleNamespace

    from seqgen.training.config import TrainConfig, TrainState
    from seqgen.training.monitor import Monitor

    trainer = SimpleNamespace(state=TrainState(best=2.5, monitored="val_loss"),
                              config=TrainConfig(), should_stop=False)
    bleu = Monitor("val_bleu", mode="max")
    improved = bleu.update(trainer, {"val_loss": 2.7, "val_bleu": 0.5})  # a low BLEU: still best
    assert trainer.state.best == 0.5 and trainer.state.monitored == "val_bleu" and improved
    assert "kept by val_loss so far; from now on by val_bleu" in caplog.text
    assert not bleu.update(trainer, {"val_bleu": 0.4})
    assert trainer.state.best == 0.5
    legacy = SimpleNamespace(state=TrainState(best=0.7), config=TrainConfig(), should_stop=False)
    bleu.update(legacy, {"val_bleu": 0.6})  # checkpoints from before the field: the same
    assert legacy.state.best == 0.7 and legacy.state.monitored == "val_bleu"
