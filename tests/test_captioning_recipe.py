"""The captioning recipe run for real, in subprocesses: the synthetic-set captioner it trains
(about a minute on 2 cores), the CLI on that model, self-critical fine-tuning from it, the
recipe's dry run and CNN fine-tuning. All slow: ``pytest -m "not slow"`` leaves them out."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqgen.cli.main import main as cli_main
from seqgen.tasks.captioning.data import read_captions

pytestmark = pytest.mark.slow  # each test runs the recipe, or uses the model it trained

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """The recipe's default synthetic captioner, trained for a fixed number of steps (about a
    minute on 2 cores) so the outcome does not depend on the machine's speed."""
    root = tmp_path_factory.mktemp("captioner")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "captioning.py"), "--quiet", "--no-resume",
         "--run-dir", str(root / "run"), "--cache-dir", str(root / "cache"), "--minutes", "0",
         "--train.max_steps=1200", f"--data.synthetic_dir={root / 'shapes'}"],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "result.json").write_text(proc.stdout.strip().splitlines()[-1])
    return root


def test_synthetic_captioner_learns_to_name_shapes_colours_and_places(synthetic_run):
    result = json.loads((synthetic_run / "result.json").read_text())
    assert result["images"] == 300 and result["exact_match"] >= 0.9, result


def test_caption_cli_captions_good_images_and_names_bad_ones(synthetic_run, tmp_path, capsys):
    ckpt = synthetic_run / "run" / "model.pt"
    good = sorted((synthetic_run / "shapes" / "images").glob("val-*.png"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    attention = tmp_path / "attention"
    status = cli_main(["caption", "--ckpt", str(ckpt), str(good[0]), str(bad), str(good[1]),
                       "--attention", str(attention)])
    out, err = capsys.readouterr()
    lines = out.strip().split("\n")
    assert status == 1 and len(lines) == 2
    assert lines[0].startswith(str(good[0])) and " and a " in lines[0]
    assert [e for e in err.splitlines() if "error" in e] == [
        f"seqgen caption: error: {bad}: not an image file (or an unsupported format)"]
    assert len(list(attention.glob("*.png"))) == 2

    assert cli_main(["caption", "--ckpt", str(ckpt), str(good[0]), "--beam", "3", "--n-best",
                     "2"]) == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 2


def test_evaluate_on_a_flickr_style_folder(synthetic_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("seqgen.tasks.captioning.features.DEFAULT_CACHE", tmp_path / "cache")
    shapes = synthetic_run / "shapes"
    folder = tmp_path / "flickr-style"
    (folder / "images").mkdir(parents=True)
    names = [p.name for p in sorted((shapes / "images").glob("test-*.png"))[:20]]
    for name in names:
        (folder / "images" / name).write_bytes((shapes / "images" / name).read_bytes())
    captions = read_captions(shapes / "captions.csv")
    (folder / "Flickr8k.token.txt").write_text("".join(
        f"{n}#{i}\t{c}\n" for n in names for i, c in enumerate(captions[n])))
    (folder / "Flickr_8k.testImages.txt").write_text("\n".join(names) + "\n")
    assert cli_main(["evaluate", "--ckpt", str(synthetic_run / "run" / "model.pt"), "--data-dir",
                     str(folder), "--split", "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"bleu1", "bleu2", "bleu3", "bleu4", "cider"} <= result.keys()
    assert result["images"] == 20 and result["bleu4"] > 50


def test_self_critical_fine_tuning_starts_from_a_trained_captioner(synthetic_run, tmp_path):
    run = tmp_path / "scst"
    command = [sys.executable, str(ROOT / "recipes" / "captioning.py"), "--dry-run", "--quiet",
               "--run-dir", str(run), "--self-critical", str(synthetic_run / "run" / "model.pt"),
               "--keep-best-by", "val_cider", "--scst.samples=3"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "self-critical from" in proc.stderr
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_cider" in m for m in metrics)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["exact_match"] > 0.5  # still knows
    for bad, message in ((tmp_path / "missing.pt", "not found|No such file"),
                         (synthetic_run / "result.json", "checkpoint")):
        proc = subprocess.run(command[:-5] + ["--self-critical", str(bad)], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert re.search(message, proc.stderr.strip().splitlines()[-1])


def test_recipe_dry_run():
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "captioning.py"), "--dry-run",
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bleu4" in json.loads(proc.stdout.strip().splitlines()[-1])


def test_fine_tuning_runs_the_cnn_inside_the_model(flickr_dir, tmp_path, capsys):
    pytest.importorskip("efficientnet_lite_pytorch")
    from seqgen.io.loaded import LoadedModel
    from seqgen.nn.backbones import build_backbone as fresh

    run = tmp_path / "ft"
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "captioning.py"), "--dry-run",
                           "--quiet", "--data-dir", str(flickr_dir), "--fine-tune", "1",
                           "--run-dir", str(run), "--data.min_freq=1", "--data.batch_size=6"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = LoadedModel.from_file(run / "model.pt")
    tuned = loaded.model.encoder.backbone.body.net
    pretrained = fresh("efficientnet_lite0").body.net
    assert not torch.equal(tuned._conv_head.weight, pretrained._conv_head.weight)  # trained
    assert torch.equal(tuned._conv_stem.weight, pretrained._conv_stem.weight)  # frozen
    image = str(flickr_dir / "images" / "5.jpg")
    assert cli_main(["caption", "--ckpt", str(run / "model.pt"), image, "--max-len", "5"]) == 0
    assert capsys.readouterr().out.startswith(image + "\t")
