"""``seqgen export`` (half precision by default, same outputs) and ``seqgen train`` (runs a recipe)."""
from __future__ import annotations

import sys

import pytest
import torch

from seqgen.cli.main import main
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import load_checkpoint
from seqgen.io.loaded import LoadedModel
from seqgen.pipeline import Pipeline
from seqgen.tasks.translation.data import source_batch

GREEDY = GenerationConfig(max_len=12)


def export(ckpt, out, *extra: str) -> dict:
    assert main(["export", "--ckpt", str(ckpt), "--out", str(out), *extra]) == 0
    return load_checkpoint(out)


@pytest.mark.parametrize("task", ["headlines", "translation"])
def test_export_is_half_precision_by_default_and_float32_on_request(tiny_checkpoints, tmp_path, task):
    original = load_checkpoint(tiny_checkpoints[task])
    half = export(tiny_checkpoints[task], tmp_path / "half.pt")
    full = export(tiny_checkpoints[task], tmp_path / "full.pt", "--float32")
    for name, weight in original["model"].items():
        if weight.is_floating_point():
            assert half["model"][name].dtype == torch.float16, name
            assert torch.allclose(half["model"][name].float(), weight, atol=1e-3, rtol=1e-3), name
            assert full["model"][name].dtype == weight.dtype == torch.float32, name
        else:
            assert half["model"][name].dtype == weight.dtype, name
        assert torch.equal(full["model"][name], weight), name
    for ckpt in (half, full):
        assert ckpt["trainer"] is None and ckpt["tgt_vocab"] == original["tgt_vocab"]
        assert ckpt["task"] == task and ckpt["model_config"] == original["model_config"]
    assert (tmp_path / "half.pt").stat().st_size < (tmp_path / "full.pt").stat().st_size


def test_exported_headline_model_generates_the_same_text(tiny_checkpoints, tmp_path):
    export(tiny_checkpoints["headlines"], tmp_path / "half.pt")
    before, after = Pipeline.load(tiny_checkpoints["headlines"]), Pipeline.load(tmp_path / "half.pt")
    assert next(after.loaded.model.parameters()).dtype == torch.float32  # loaded back as float32
    prompts = ["Stocks ", "Rain", ""]
    assert [r.text for r in after.predict(prompts, GREEDY)] == \
        [r.text for r in before.predict(prompts, GREEDY)]


def test_exported_translation_model_gives_close_logits_and_the_same_translation(
        tiny_checkpoints, tmp_path):
    export(tiny_checkpoints["translation"], tmp_path / "half.pt")
    before = LoadedModel.from_file(tiny_checkpoints["translation"])
    after = LoadedModel.from_file(tmp_path / "half.pt")
    sentences = ["Ein Hund läuft .", "Team wins the cup final"]
    batch = source_batch([before.src_vocab.encode(before.src_tokenizer.tokenize(s))
                          for s in sentences])
    logits = []
    for loaded in (before, after):
        with torch.no_grad():
            state, first = loaded.model.init_state(batch)
            logits.append(loaded.model.step(first, state)[0])
    assert not torch.equal(logits[0], logits[1])  # the weights really were rounded
    assert torch.allclose(logits[0], logits[1], atol=1e-2)
    texts = [Pipeline(x).predict(sentences, GREEDY) for x in (before, after)]
    assert [r.text for r in texts[0]] == [r.text for r in texts[1]]


@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads fight and run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_runs_the_headlines_recipe_dry(tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the command replaces argv for the recipe
    run_dir = tmp_path / "run"
    assert main(["train", "headlines", "--dry-run", "--quiet", "--run-dir", str(run_dir)]) == 0
    ckpt = load_checkpoint(run_dir / "model.pt")
    assert ckpt["task"] == "headlines" and ckpt["trainer"] is None
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["state"]["step"] == 6  # the dry run's
    assert (run_dir / "config.json").is_file()


def test_train_reports_a_bad_override_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert main(["train", "headlines", "--dry-run", "--run-dir", str(tmp_path / "run"),
                 "--train.lr=fast"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_export_records_the_search_chosen_on_validation(tiny_checkpoints, tmp_path):
    out = tmp_path / "tuned.pt"
    ckpt = export(tiny_checkpoints["translation"], out, "--beam", "4", "--length-penalty", "1.5",
                  "--no-repeat-ngram", "2")
    assert ckpt["task_config"]["decoding"] == {"beam": 4, "length_penalty": 1.5,
                                               "no_repeat_ngram": 2}
    chosen = Pipeline.load(out).generation_config()
    assert (chosen.beam, chosen.length_penalty, chosen.no_repeat_ngram) == (4, 1.5, 2)


def test_export_stores_tied_and_shared_embeddings_once(tmp_path):
    from seqgen.io.checkpoint import make_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.nn.decoder import DecoderConfig
    from seqgen.nn.encoders import EncoderConfig
    from seqgen.nn.model import EncoderDecoder, ModelConfig
    from seqgen.tokenizers import WordTokenizer
    from seqgen.vocab import Vocab

    words = WordTokenizer()
    vocab = Vocab.build([[f"w{i}" for i in range(400)]])
    config = ModelConfig(encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=32, hidden_dim=8),
                         decoder=DecoderConfig(cell="gru", emb_dim=32, hidden_dim=8,
                                               attention="general", tie_weights=True),
                         share_embeddings=True)
    model = EncoderDecoder(config, src_vocab_size=len(vocab), tgt_vocab_size=len(vocab))
    source = tmp_path / "tied.pt"
    atomic_save(make_checkpoint(model, task="summarization", tgt_vocab=vocab, tgt_tokenizer=words,
                                src_vocab=vocab, src_tokenizer=words), source)
    weights = export(source, tmp_path / "small.pt")["model"]
    tied = [weights[k] for k in ("encoder.embed.weight", "decoder.embed.weight",
                                 "decoder.output.weight")]
    assert len({t.data_ptr() for t in tied}) == 1  # one matrix on disk, not three
    untied = DecoderConfig(cell="gru", emb_dim=32, hidden_dim=8, attention="general")
    separate = EncoderDecoder(ModelConfig(encoder=config.encoder, decoder=untied),
                              src_vocab_size=len(vocab), tgt_vocab_size=len(vocab))
    atomic_save(make_checkpoint(separate, task="summarization", tgt_vocab=vocab,
                                tgt_tokenizer=words, src_vocab=vocab, src_tokenizer=words), source)
    export(source, tmp_path / "big.pt")
    matrix = len(vocab) * 32 * 2  # bytes of one fp16 vocabulary matrix
    assert (tmp_path / "small.pt").stat().st_size < (tmp_path / "big.pt").stat().st_size - matrix
    Pipeline.load(tmp_path / "small.pt")  # loads back into three parameters
