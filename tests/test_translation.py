"""Translation: data module, tokenisation, masks, the translate CLI and bad input."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image

from seqgen.cli.main import main as cli_main
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import make_checkpoint
from seqgen.io.fileio import atomic_save
from seqgen.io.loaded import LoadedModel
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.encoders import EncoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.pipeline import Pipeline
from seqgen.tasks.translation.data import TranslationData, TranslationDataConfig, pair_batch
from seqgen.tasks.translation.inference import bleu_reward, translate, translate_texts
from seqgen.tasks.translation.splits import load_pairs, split_file
from seqgen.tokenizers import SubwordTokenizer, WordTokenizer
from seqgen.vocab import EOS, PAD, UNK

ROOT = Path(__file__).resolve().parents[1]
DE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest ein Buch.",
      "Ein Kind isst einen Apfel.", "Der Mann spielt Gitarre.", "Zwei Frauen gehen im Park.",
      "Ein Hund läuft am Strand.", "Ein Junge springt ins Wasser."]
EN = ["A man rides a bike.", "Two dogs play in the snow.", "A woman reads a book.",
      "A child eats an apple.", "The man plays guitar.", "Two women walk in the park.",
      "A dog runs on the beach.", "A boy jumps into the water."]


def write_pairs(folder: Path, split: str, src: list[str], tgt: list[str], *, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for lang, lines in (("de", src), ("en", tgt)):
        data = ("\n".join(lines) + "\n").encode()
        name = f"{split}.{lang}" + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture()
def multi30k_dir(tmp_path) -> Path:
    folder = tmp_path / "m30k"
    write_pairs(folder, "train", DE * 3, EN * 3)
    write_pairs(folder, "val", DE[:3], EN[:3], gz=False)
    write_pairs(folder, "test_2016_flickr", DE[3:6], EN[3:6])
    return folder


def tiny_config(folder: Path, tokenizer: str = "word") -> TranslationDataConfig:
    return TranslationDataConfig(data_dir=str(folder), tokenizer=tokenizer, min_freq=1,
                                 vocab_size=60, batch_size=4)


def tiny_translator(data: TranslationData, *, seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=8, hidden_dim=6),
        decoder=DecoderConfig(cell="gru", emb_dim=8, hidden_dim=10, attention="general"))
    return EncoderDecoder(config, src_vocab_size=len(data.src_vocab),
                          tgt_vocab_size=len(data.tgt_vocab)).eval()


@pytest.fixture()
def tiny_ckpt(multi30k_dir, tmp_path) -> Path:
    data = TranslationData(tiny_config(multi30k_dir))
    model = tiny_translator(data)
    path = tmp_path / "tiny-mt.pt"
    atomic_save(make_checkpoint(model, task="translation", tgt_vocab=data.tgt_vocab,
                                tgt_tokenizer=data.tgt_tokenizer, src_vocab=data.src_vocab,
                                src_tokenizer=data.src_tokenizer,
                                task_config={"data": {"src": "de", "tgt": "en"}}), path)
    return path


# -- data ------------------------------------------------------------------------------------
def test_reads_plain_and_gzipped_aligned_files(multi30k_dir):
    config = tiny_config(multi30k_dir)
    assert load_pairs(config, "val") == (DE[:3], EN[:3])  # plain
    assert load_pairs(config, "test") == (DE[3:6], EN[3:6])  # .gz, "test" alias
    assert split_file(multi30k_dir, "dev", "de").name == "val.de"


def test_misaligned_or_missing_files_are_named(multi30k_dir):
    (multi30k_dir / "val.en").write_text("only one line\n")
    with pytest.raises(ValueError, match="line-aligned"):
        load_pairs(tiny_config(multi30k_dir), "val")
    with pytest.raises(FileNotFoundError, match="train.fr"):
        load_pairs(TranslationDataConfig(data_dir=str(multi30k_dir), tgt="fr"), "train")


def test_subword_round_trip_is_exact_and_unseen_characters_map_to_unk():
    tokenizer = SubwordTokenizer.train(DE + EN, vocab_size=80)
    for text in DE + EN:
        assert tokenizer.detokenize(tokenizer.tokenize(text)) == text
    data_words = [tokenizer.tokenize(t) for t in DE + EN]
    from seqgen.vocab import Vocab
    vocab = Vocab.build(data_words)
    ids = vocab.encode(tokenizer.tokenize("Ein Mann 漢字"))
    assert UNK in ids and PAD not in ids


def test_word_tokenizer_round_trip_keeps_punctuation_attached():
    tokenizer = WordTokenizer()
    for text in EN:
        assert tokenizer.detokenize(tokenizer.tokenize(text)) == text


def test_batches_have_eos_terminated_sources_and_shifted_targets(multi30k_dir):
    data = TranslationData(tiny_config(multi30k_dir, "subword"))
    assert data.joint and data.src_vocab is data.tgt_vocab
    plan = data.train_plan(epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(len(data)))
    batch = data.make_batch(plan[0])
    for row, length in zip(batch.src, batch.src_lengths):
        assert row[length - 1] == EOS and (row[length:] == PAD).all()
    words = (batch.tgt_out[:, :-1] != PAD) & (batch.tgt_out[:, :-1] != EOS)
    assert (batch.tgt_in[:, 1:][words] == batch.tgt_out[:, :-1][words]).all()
    assert ((batch.tgt_out == EOS).sum(1) == 1).all()
    assert data.train_plan(epoch=1) != plan and data.train_plan(epoch=0) == plan


def test_attention_ignores_source_padding(multi30k_dir):
    data = TranslationData(tiny_config(multi30k_dir))
    model = tiny_translator(data)
    short, long = data.encode_sources(["Ein Hund."])[0], data.encode_sources([DE[5]])[0]
    tgt = [data.tgt_vocab.encode(["A", "dog", "."])]
    alone = pair_batch([short], tgt)
    padded = pair_batch([short, long], tgt * 2)
    assert padded.src.size(1) > alone.src.size(1)
    logits_alone = model.decoder(alone.tgt_in, model._encode(alone))[0]
    state = model._encode(padded)
    logits_padded, out_state = model.decoder(padded.tgt_in, state)
    torch.testing.assert_close(logits_padded[:1], logits_alone, atol=1e-5, rtol=1e-5)
    pad_positions = ~state.mask[0]
    assert pad_positions.any() and (out_state.attention[0][:, pad_positions] == 0).all()


# -- translating --------------------------------------------------------------------------
def test_empty_lines_translate_to_empty_output_and_long_lines_are_cut(tiny_ckpt):
    pipe = Pipeline.load(tiny_ckpt)
    texts = ["Ein Mann fährt Fahrrad.", "", "   ", " ".join(["Hund"] * 500)]
    results = pipe.predict(texts, GenerationConfig(beam=3, max_len=8))
    assert len(results) == 4 and results[1].text == "" and results[2].text == ""
    assert not results[0].warnings and "500 source pieces" in results[3].warnings[0]
    config = pipe.generation_config(GenerationConfig(beam=3, max_len=8))
    assert translate_texts(pipe.loaded, texts, config) == [r.text for r in results]


def test_batched_beam_search_matches_one_at_a_time(tiny_ckpt):
    loaded = LoadedModel.from_file(tiny_ckpt)
    config = GenerationConfig(beam=3, max_len=8)
    together = [h[0].tokens for h in translate(loaded, DE, config, batch_size=8)]
    alone = [translate(loaded, [t], config)[0][0].tokens for t in DE]
    assert together == alone


@pytest.mark.slow  # part of it runs the CLI in a subprocess
def test_translate_cli_argument_stdin_nbest_and_attention(tiny_ckpt, tmp_path, capsys, monkeypatch):
    assert cli_main(["translate", "--ckpt", str(tiny_ckpt), "--max-len", "6", DE[0], ""]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 3 and lines[1] == ""  # two inputs, two lines (the empty one stays empty)

    inputs = tmp_path / "in.de"
    inputs.write_text("\n".join(DE[:3]) + "\n")
    png = tmp_path / "attn.png"
    assert cli_main(["translate", "--ckpt", str(tiny_ckpt), "--input", str(inputs), "--beam", "3",
                     "--n-best", "2", "--max-len", "6", "--attention", str(png)]) == 0
    out = capsys.readouterr().out.strip().split("\n")
    assert len(out) == 6 and [line.split("\t")[0] for line in out] == ["0", "0", "1", "1", "2", "2"]
    for i in (1, 2, 3):  # each picture shows its weights in colour, not a blank canvas
        with Image.open(tmp_path / f"attn-{i}.png") as picture:
            rgb = np.asarray(picture.convert("RGB"), dtype=np.int32)  # (H, W, 3)
        assert ((rgb.max(-1) - rgb.min(-1)) > 60).mean() > 0.2

    proc = subprocess.run([sys.executable, "-m", "seqgen.cli", "translate", "--ckpt",
                           str(tiny_ckpt), "--max-len", "6"], input="\n".join(DE[:2]) + "\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2


def test_translate_cli_errors_are_one_line(tiny_ckpt, tmp_path, capsys):
    assert cli_main(["translate", "--ckpt", str(tiny_ckpt), "--input", str(tmp_path / "no")]) == 2
    assert cli_main(["translate", "--ckpt", str(tiny_ckpt), "--beam", "0", "x"]) == 2
    assert cli_main(["generate", "--ckpt", str(tiny_ckpt)]) == 2  # wrong task
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 3 and "input file not found" in err[0] and "--beam" in err[1]
    assert "translation model" in err[2]


def test_evaluate_prints_bleu_chrf_and_signature(tiny_ckpt, multi30k_dir, capsys):
    assert cli_main(["evaluate", "--ckpt", str(tiny_ckpt), "--data-dir", str(multi30k_dir),
                     "--split", "test_2016_flickr", "--beam", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"bleu", "chrf", "signature"} <= result.keys() and result["sentences"] == 3
    assert "tok:13a" in result["signature"] and "case:mixed" in result["signature"]


@pytest.mark.slow  # the recipe in a subprocess
def test_recipe_dry_run_on_the_bundled_sample(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "translation.py"), "--dry-run",
                           "--quiet", "--run-dir", str(tmp_path / "run"), "--beam", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "bleu" in result and (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.slow  # three recipe runs in subprocesses (~24 s)
def test_self_critical_fine_tuning_starts_from_a_trained_translator(tmp_path, tiny_checkpoints):
    recipe = [sys.executable, str(ROOT / "recipes" / "translation.py"), "--dry-run", "--quiet"]
    proc = subprocess.run([*recipe, "--run-dir", str(tmp_path / "xe")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = tmp_path / "xe" / "model.pt"
    command = [*recipe, "--run-dir", str(tmp_path / "scst"), "--self-critical", str(start),
               "--scst.samples=3", "--scst.max_len=20"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "self-critical from" in proc.stderr
    metrics = [json.loads(line) for line in (tmp_path / "scst" / "metrics.jsonl").read_text()
               .splitlines()]
    assert any("val_bleu" in m for m in metrics)
    config = json.loads((tmp_path / "scst" / "config.json").read_text())
    assert (config["train"]["lr"], config["data"]["batch_size"]) == (5e-5, 32)  # its preset
    tuned, begun = (torch.load(p, weights_only=True) for p in (tmp_path / "scst" / "model.pt", start))
    assert tuned["src_vocab"] == begun["src_vocab"] and begun["shortlist"] is not None
    assert all(torch.equal(tuned["shortlist"][k], v) for k, v in begun["shortlist"].items())
    assert any(not torch.equal(tuned["model"][k], begun["model"][k]) for k in begun["model"])
    for bad, message in ((tmp_path / "missing.pt", "not found"),
                         (tiny_checkpoints["headlines"], "not a float translation checkpoint")):
        proc = subprocess.run([*command[:-4], "--self-critical", str(bad)], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert message in proc.stderr.strip().splitlines()[-1]


def test_bleu_reward_scores_samples_against_their_own_pair(multi30k_dir, tiny_ckpt):
    data = TranslationData(tiny_config(multi30k_dir))
    batch = data.make_batch([2, 5])
    assert batch.ids.tolist() == [2, 5] and data.train_tgt[5] == EN[5]
    reward = bleu_reward(data.train_tgt, LoadedModel.from_file(tiny_ckpt))
    own = [data.train_tgt_ids[5], data.train_tgt_ids[2]]
    assert reward([5, 2], own) == pytest.approx([1.0, 1.0])
    swapped = reward([2, 5], own)
    assert all(0 <= r < 0.5 for r in swapped)


@pytest.mark.skipif(not (SHARED_DATA / "multi30k").is_dir(), reason="../shared/data absent")
def test_reads_the_real_multi30k_files():
    src, tgt = load_pairs(TranslationDataConfig(data_dir=str(SHARED_DATA / "multi30k")), "val")
    assert len(src) == len(tgt) == 1014
