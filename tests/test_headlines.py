"""Headlines: data module, recipe dry run, the generate / evaluate CLI on a tiny model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, TITLES, write_ag_news

from seqgen.cli.main import main as cli
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.loaded import LoadedModel
from seqgen.tasks.headlines.data import (DESCRIPTION_MARK, HeadlineData, HeadlineDataConfig,
                                         clean_text, load_texts, read_ag_news_csv)
from seqgen.tasks.headlines.inference import continue_prompts
from seqgen.vocab import BOS, PAD, UNK

ROOT = Path(__file__).resolve().parents[1]


def test_reads_plain_and_gzipped_csv_alike(tmp_path):
    gz = write_ag_news(tmp_path / "a", gz=True)
    plain = write_ag_news(tmp_path / "b", gz=False)
    assert read_ag_news_csv(gz) == read_ag_news_csv(plain) == TITLES
    both = read_ag_news_csv(gz, field="title+description")
    assert both[0].startswith(TITLES[0] + ". A description")


def test_empty_titles_are_dropped_and_bad_rows_named(tmp_path):
    (tmp_path / "train.csv").write_text('"1","",""\n"2","Real title","x"\n"3","   ","y"\n')
    assert read_ag_news_csv(tmp_path / "train.csv") == ["Real title"]
    (tmp_path / "bad.csv").write_text('"1"\n')
    with pytest.raises(ValueError, match="row 1 has 1 column"):
        read_ag_news_csv(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="no test.csv"):
        load_texts(HeadlineDataConfig(data_dir=str(tmp_path)), "test")


def test_cleaning_undoes_ag_news_escapes():
    assert clean_text("Fed #39;s rate  cut &lt;b&gt;...&lt;/b&gt;") == "Fed's rate cut ..."
    assert clean_text("Guaranteed  #36;1.88M") == "Guaranteed $1.88M"
    assert clean_text(" quot;nuts, quot; he said") == '"nuts," he said'


def test_vocab_comes_from_training_text_and_unseen_symbols_become_unk(ag_news_dir):
    data = HeadlineData(HeadlineDataConfig(data_dir=str(ag_news_dir), val_fraction=0.2))
    assert len(data.train_texts) == 8 and len(data.val_texts) == 2
    train_chars = set("".join(data.train_texts))
    assert set(data.vocab.itos[4:]) == train_chars
    assert data.encode("Ωmega")[0] == UNK
    batch = data.make_batch(data.train_plan(0)[0])
    assert batch.tgt_in[:, 0].eq(BOS).all()
    assert batch.tgt_in.shape == batch.tgt_out.shape


def test_descriptions_train_in_the_first_epochs_only_and_never_from_held_out_rows(ag_news_dir):
    titles_only = HeadlineData(HeadlineDataConfig(data_dir=str(ag_news_dir), val_fraction=0.2))
    config = HeadlineDataConfig(data_dir=str(ag_news_dir), val_fraction=0.2, description_epochs=2,
                                batch_size=4)
    data = HeadlineData(config)
    assert data.val_texts == titles_only.val_texts  # the same held-out titles as before
    assert data.train_texts == titles_only.train_texts
    described = {d[1:] for d in data.description_texts}
    assert all(d.startswith(DESCRIPTION_MARK) for d in data.description_texts)
    assert described == {f"A description of {t.lower()}." for t in data.train_texts}
    assert not described & {f"A description of {t.lower()}." for t in data.val_texts}
    n_titles = len(data.train_texts)
    for epoch, expected in ((0, 2 * n_titles), (1, 2 * n_titles), (2, n_titles), (5, n_titles)):
        plan = data.train_plan(epoch)
        assert sorted(i for batch in plan for i in batch) == list(range(expected))
    batch = data.make_batch([n_titles])  # the first description
    assert data.vocab.itos[int(batch.tgt_out[0, 0])] == DESCRIPTION_MARK
    with pytest.raises(ValueError, match="descriptions"):
        HeadlineData(HeadlineDataConfig(description_epochs=1), texts=["a b", "c d", "e f"])


@pytest.mark.slow  # the recipe in a subprocess
def test_word_level_on_a_plain_text_file(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("Once upon a time there was a girl.\n\nShe walked into the wood.\n" * 5)
    data = HeadlineData(HeadlineDataConfig(text_file=str(book), level="word", val_fraction=0.2))
    assert "wood" in data.vocab and "girl" in data.vocab and "." in data.vocab
    assert data.tokenizer.detokenize(data.tokenizer.tokenize("She walked.")) == "She walked."


def tiny_run(tmp_path: Path, *extra: str) -> Path:
    write_ag_news(tmp_path / "ag", TITLES * 3)
    write_ag_news(tmp_path / "ag", TITLES[:5], split="test")
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "headlines.py"), "--data-dir", str(tmp_path / "ag"),
         "--run-dir", str(run), "--quiet", "--minutes", "0", "--train.max_steps=30",
         "--train.eval_every=10", "--data.batch_size=8", "--model.decoder.hidden_dim=32",
         "--model.decoder.emb_dim=16", *extra], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[T=1.8] Moscow, " in result.stdout and "[greedy] Today " in result.stdout
    return run / "model.pt"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("headlines"))


def test_sampler_never_emits_padding_at_any_temperature(tiny_ckpt):
    """The lesson's notebook crashed with KeyError: 0 when sampling hit the padding index."""
    loaded = LoadedModel.from_file(tiny_ckpt)
    with torch.no_grad():
        loaded.model.decoder.output.bias[PAD] += 50.0  # even when padding is the favourite
    for t in (0.3, 0.8, 1.0, 1.3, 1.8, 10.0):
        texts = continue_prompts(loaded, ["Today ", "Ωx "],
                                 GenerationConfig(temperature=t, seed=0, max_len=40),
                                 num_samples=5)
        assert all(s.startswith(("Today ", "Ωx ")) for group in texts for s in group)
        assert all("<pad>" not in s and "<bos>" not in s for group in texts for s in group)


def test_generate_cli_prints_each_sample_with_its_prompt(tiny_ckpt, capsys):
    assert cli(["generate", "--ckpt", str(tiny_ckpt), "--prompt", "Today ", "--temperature", "0.8",
                "-n", "3", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("Today ") for line in lines)
    assert cli(["generate", "--ckpt", str(tiny_ckpt), "--prompt", "Oil", "--beam", "3",
                "--n-best", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_evaluate_cli_prints_bits_per_char(tiny_ckpt, tmp_path, capsys):
    write_ag_news(tmp_path, TITLES[:4], split="test", gz=False)
    assert cli(["evaluate", "--ckpt", str(tiny_ckpt), "--data-dir", str(tmp_path), "--split",
                "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bits_per_char"] > 0 and result["perplexity"] > 1
    assert 0 <= result["repeated_3gram_share_greedy"] <= 1


def test_evaluate_heldout_scores_the_rows_training_held_out(tiny_ckpt, capsys):
    folder = tiny_ckpt.parent.parent / "ag"
    assert cli(["evaluate", "--ckpt", str(tiny_ckpt), "--data-dir", str(folder), "--split",
                "heldout"]) == 0
    result = json.loads(capsys.readouterr().out)
    held_out = HeadlineData(HeadlineDataConfig(data_dir=str(folder))).val_texts
    assert result["split"] == "heldout" and result["examples"] == len(held_out) > 0
    assert result["n_chars"] == sum(len(t) + 1 for t in held_out)  # every character, and EOS


@pytest.mark.parametrize("argv,message", [
    (["generate", "--ckpt", "missing.pt"], "checkpoint not found"),
    (["generate", "--temperature", "0", "--ckpt", "{ckpt}"], "use greedy"),
    (["generate", "--top-p", "1.5", "--ckpt", "{ckpt}"], "top_p"),
    (["generate", "--beam", "0", "--ckpt", "{ckpt}"], "--beam"),
    (["evaluate", "--ckpt", "{ckpt}", "--data-dir", "nowhere"], "data folder not found"),
    (["translate", "--ckpt", "{ckpt}", "Hallo"], "headlines model"),
])
def test_cli_errors_are_one_line(tiny_ckpt, capsys, argv, message):
    argv = [a.replace("{ckpt}", str(tiny_ckpt)) for a in argv]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


@pytest.mark.slow  # the recipe in a subprocess
def test_recipe_dry_run_on_the_bundled_sample():
    result = subprocess.run([sys.executable, str(ROOT / "recipes" / "headlines.py"), "--dry-run",
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["bits_per_char"] > 0


@pytest.mark.slow  # the CLI in a subprocess
def test_seqgen_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "seqgen.cli.main", "--help"], capture_output=True,
                         text=True).stdout
    for command in ("train", "generate", "translate", "caption", "evaluate"):
        assert command in out


@pytest.mark.skipif(not (SHARED_DATA / "ag_news" / "train.csv.gz").exists(),
                    reason="shared AG News sample not present")
def test_reads_the_real_ag_news_sample():
    texts = load_texts(HeadlineDataConfig(data_dir=str(SHARED_DATA / "ag_news")))
    assert len(texts) > 11_000 and all(texts)
