"""Word-level headlines end to end: the recipe trains on a text file, the pipeline loads the model,
and streaming gives the same text as sampling in one go (the CLI promises it for a fixed seed)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_model

from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import load_checkpoint
from seqgen.io.loaded import LoadedModel
from seqgen.pipeline import Pipeline
from seqgen.tokenizers import WordTokenizer
from seqgen.vocab import SPECIALS, Vocab

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the cat dog sat ran on a mat rug fast slow big small red".split()
OPTIONS = GenerationConfig(temperature=1.0, seed=0, max_len=15)


@pytest.fixture(scope="module")
def word_model(tmp_path_factory) -> Path:
    """Trains the recipe for 20 steps on 60 lines of random words; returns its model.pt."""
    folder = tmp_path_factory.mktemp("word-level")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(60)]
    text = folder / "text.txt"
    text.write_text("\n".join(lines) + "\n")
    run = folder / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQGEN_CACHE_DIR": str(folder / "cache")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "headlines.py"), "--level", "word", "--text-file",
         str(text), "--run-dir", str(run), "--no-resume", "--quiet", "--minutes", "0",
         "--train.max_steps=20", "--train.eval_every=10", "--model.decoder.hidden_dim=32",
         "--model.decoder.emb_dim=16", "--data.batch_size=8", "--train.precision=fp32"],
        capture_output=True, text=True, timeout=180, env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"bits_per_token"' in proc.stdout  # word level reports per token, not per char
    return run / "model.pt"


@pytest.mark.slow  # the word_model fixture runs the recipe in a subprocess
def test_the_recipe_writes_a_word_level_model(word_model):
    ckpt = load_checkpoint(word_model)
    assert ckpt["task"] == "headlines" and ckpt["tgt_tokenizer"]["level"] == "word"
    assert set(ckpt["tgt_vocab"]) == set(SPECIALS) | set(WORDS)
    assert ckpt["trainer"] is None  # model.pt is the export, without optimizer state


@pytest.mark.parametrize("prompt", ["the cat", "Today", ""])
@pytest.mark.slow  # the word_model fixture runs the recipe in a subprocess
def test_generated_text_is_the_prompt_then_words_separated_by_spaces(word_model, prompt):
    pipe = Pipeline.load(word_model)
    [result] = pipe.predict([prompt], OPTIONS)
    text = result.text
    assert result.ok and text.startswith(prompt)
    rest = text[len(prompt):]
    if prompt:
        assert rest == "" or rest.startswith(" ")
    words = rest.split(" ")[1:] if prompt else rest.split(" ")
    assert words and all(w in WORDS for w in words), text  # single spaces, vocabulary words only
    again = pipe.predict([prompt], OPTIONS)[0].text
    assert again == text  # seeded: reproducible


@pytest.mark.parametrize("prompt", ["the cat", "", "Today big"])
@pytest.mark.slow  # the word_model fixture runs the recipe in a subprocess
def test_streaming_gives_the_same_text_as_sampling(word_model, prompt):
    pipe = Pipeline.load(word_model)
    streamed = list(pipe.stream(prompt, OPTIONS))
    [first] = list(pipe.iter_samples(prompt, OPTIONS, n=1))
    assert streamed[0] == prompt and len(streamed) > 1
    assert "".join(streamed) == first.text


@pytest.mark.slow  # the word_model fixture runs the recipe in a subprocess
def test_streaming_a_prompt_that_ends_in_a_space(word_model):
    pipe = Pipeline.load(word_model)
    streamed = "".join(pipe.stream("the cat ", OPTIONS))
    assert streamed == next(pipe.iter_samples("the cat ", OPTIONS, n=1)).text


def test_streaming_punctuation_matches_sampling():
    tokenizer = WordTokenizer()
    vocab = Vocab.build([tokenizer.tokenize("the cat sat on the mat . a dog ran , fast !")])
    model = tiny_model(vocab=len(vocab), seed=0)
    with torch.no_grad():  # make punctuation likely, so the sample surely holds some
        model.decoder.output.bias[vocab.stoi["."]] = 3.0
        model.decoder.output.bias[vocab.stoi[","]] = 3.0
    pipe = Pipeline(LoadedModel(model, "headlines", vocab, tokenizer))
    first = next(pipe.iter_samples("the cat", OPTIONS, n=1)).text
    assert "." in first or "," in first
    assert "".join(pipe.stream("the cat", OPTIONS)) == first
