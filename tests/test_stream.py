"""A character model of one continuous text (``--stream``): the state carried across windows is
the state of reading the whole text at once, a run resumed mid-stream continues bitwise exactly,
validation scores every held-out character once, and bad texts are refused in one line."""
from __future__ import annotations

import gzip
import json
import random

import numpy as np
import pytest
import torch
from conftest import tiny_model

from seqgen.cli import main as cli
from seqgen.data import stream as stream_io
from seqgen.data.batch import Batch
from seqgen.data.stream import StreamError, read_stream
from seqgen.io.checkpoint import load_checkpoint
from seqgen.metrics import stream_nll
from seqgen.tasks.headlines.data import HeadlineDataConfig
from seqgen.tasks.headlines.stream import StreamData
from seqgen.training.runner import run
from seqgen.training.tbptt import CarriedState

LINES = ["First Citizen:", "Before we proceed any further, hear me speak.", "", "All:",
         "Speak, speak.", "You are all resolved rather to die than to famish?"]
TINY = ["--stream", "--quiet", "--data.batch_size=4", "--data.window=16",
        "--model.decoder.hidden_dim=16", "--model.decoder.emb_dim=8", "--train.eval_every=3",
        "--train.precision=fp32", "--train.warmup_steps=0"]


def write_text(path, n_lines: int = 400, seed: int = 0):
    rng = random.Random(seed)
    path.write_text("\n".join(rng.choice(LINES) for _ in range(n_lines)) + "\n")
    return path


@pytest.fixture
def book(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGEN_CACHE_DIR", str(tmp_path / "cache"))
    return write_text(tmp_path / "book.txt")


def config(path, tmp_path, **given) -> HeadlineDataConfig:
    return HeadlineDataConfig(text_file=str(path), stream=True, cache_dir=str(tmp_path / "tok"),
                              **{"batch_size": 4, "window": 16, **given})


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carrying_the_state_across_windows_equals_reading_the_text_at_once(cell):
    model = tiny_model(cell=cell, layers=2, vocab=12, seed=3)
    ids = torch.randint(4, 12, (3, 97))
    whole, n_whole, end = model.stream_loss(Batch(tgt_in=ids[:, :-1], tgt_out=ids[:, 1:]))
    carried, total, count = CarriedState(), 0.0, 0
    for t, pos in enumerate(range(0, 96, 16)):  # windows of 16, the last one shorter
        piece = ids[:, pos:pos + 17]
        loss, n = carried(model, Batch(tgt_in=piece[:, :-1], tgt_out=piece[:, 1:], window=t))
        total, count = total + float(loss.detach()), count + int(n)
    assert count == int(n_whole) == 3 * 96
    assert total == pytest.approx(float(whole), rel=1e-5)
    last = carried.state.hidden
    for mine, theirs in zip(last if cell == "lstm" else [last], end.hidden if cell == "lstm"
                            else [end.hidden]):
        assert torch.allclose(mine, theirs, atol=1e-5)
    assert not any(h.requires_grad for h in (last if cell == "lstm" else [last]))  # detached


def test_stream_nll_is_the_same_whatever_the_window_and_counts_each_symbol_once():
    model = tiny_model(layers=1, vocab=12, seed=4)
    ids = np.random.default_rng(0).integers(4, 12, 300)
    small = stream_nll(model, ids, start=100, stop=300, window=7)
    large = stream_nll(model, ids, start=100, stop=300, window=1000)
    assert small[1] == large[1] == 200  # every symbol of the span, once
    assert small[0] == pytest.approx(large[0], rel=1e-5)
    assert stream_nll(model, ids, start=0, stop=50)[1] == 49  # the very first has no context


def test_validation_covers_every_held_out_character_exactly_once(book, tmp_path):
    data = StreamData(config(book, tmp_path))
    n = len(data.ids)
    assert (data.train.stop, data.val.start, data.val.stop) == (int(n * 0.9), int(n * 0.9), n)
    total, count = data.validation_loss(tiny_model(vocab=len(data.vocab)))
    assert count == data.val.stop - data.val.start and total > 0
    targets = [t for b in data.val_batches() for t in b.tgt_out[0].tolist()]
    assert targets == data.ids[data.val.start + 1:data.val.stop].tolist()


def test_windows_are_contiguous_streams_and_epochs_shift_their_edges(book, tmp_path):
    data = StreamData(config(book, tmp_path))
    plan = data.train_plan(0)
    first, second = data.make_batch(plan[0]), data.make_batch(plan[1])
    assert first.window == 0 and second.window == 1 and first.tgt_in.shape == (4, 16)
    assert torch.equal(first.tgt_out[:, -1], second.tgt_in[:, -1 - 15])  # stream b runs on
    assert torch.equal(second.tgt_in[:, 0], first.tgt_out[:, -1])
    assert data.layout(0)[0] == 0 and data.layout(1) == data.layout(1)  # seeded, repeatable
    assert any(data.layout(e)[0] for e in range(1, 5))
    rows = np.asarray(data.ids[: data.train.stop])
    assert all(b.tgt_out.max() < len(data.vocab) for b in map(data.make_batch, plan[:5]))
    assert int(first.tgt_in[1, 0]) == rows[data.layout(0)[1]]  # stream 1 starts a share in


# ------------------------------------------------------------------------------------------------
def test_a_run_resumed_mid_stream_is_bitwise_the_run_that_never_stopped(book, tmp_path):
    """(A constant rate, so a run of 4 steps and its resumption to 8 follow the schedule of a
    run of 8; dropout on, so the restored RNG matters too.)"""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    flags = [*TINY, "--train.schedule=constant", "--model.decoder.dropout=0.3"]
    assert run("headlines", argv=["--text-file", str(book), "--run-dir", str(straight), *flags,
                                  "--train.max_steps=8"]) == 0
    assert run("headlines", argv=["--text-file", str(book), "--run-dir", str(resumed), *flags,
                                  "--train.max_steps=4"]) == 0
    saved = load_checkpoint(resumed / "last.pt")["trainer"]
    assert saved["state"]["batch_in_epoch"] == 4 and saved["objective"]["hidden"] is not None
    assert run("headlines", argv=["--text-file", str(book), "--run-dir", str(resumed), *flags,
                                  "--train.max_steps=8"]) == 0
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for x, y in zip(a["trainer"]["objective"]["hidden"], b["trainer"]["objective"]["hidden"]):
        assert torch.equal(x, y)


def test_a_stream_model_generates_evaluates_and_streams_long_text(book, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run("headlines", argv=["--text-file", str(book), "--run-dir", str(run_dir), *TINY,
                                  "--train.max_steps=6"]) == 0
    model = str(run_dir / "model.pt")
    capsys.readouterr()
    assert cli(["generate", "--ckpt", model, "--prompt", "All:", "--temperature", "0.8",
                "--max-len", "2000", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("All:") and len(text) == 4 + 2000 + 1  # never ends early
    assert "\n" in text[:-1]  # one text asked for: printed with its line breaks
    assert cli(["evaluate", "--ckpt", model, "--data-dir", str(book), "--split", "heldout"]) == 0
    scores = json.loads(capsys.readouterr().out)
    held = len(read_stream(book, tmp_path / "cache2")[0])
    assert scores["n_chars"] == held - int(held * 0.9) and scores["nats_per_char"] > 0
    assert scores["bits_per_char"] == pytest.approx(scores["nats_per_char"] / np.log(2), abs=1e-3)


# ------------------------------------------------------------------------------------------------
def bad(tmp_path, capsys, path, *extra) -> str:
    code = run("headlines", argv=["--text-file", str(path), "--run-dir", str(tmp_path / "r"),
                                  *TINY, "--train.max_steps=2", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ")
    return err[-1]


def test_bad_texts_are_refused_in_one_line(book, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in bad(tmp_path, capsys, tmp_path / "empty.txt")
    (tmp_path / "short.txt").write_text("To be, or not to be.\n" * 3)
    assert "fewer than one window of 16 for each of 4 streams" in bad(
        tmp_path, capsys, tmp_path / "short.txt")
    (tmp_path / "photo.bin").write_bytes(bytes(range(256)) * 40)
    assert "not UTF-8 text" in bad(tmp_path, capsys, tmp_path / "photo.bin")
    (tmp_path / "nul.txt").write_bytes(b"abc\x00def" * 500)
    assert "NUL bytes" in bad(tmp_path, capsys, tmp_path / "nul.txt")
    assert "text file not found" in bad(tmp_path, capsys, tmp_path / "missing.txt")
    assert "--level char" in bad(tmp_path, capsys, book, "--level", "word")


def test_resuming_on_a_text_with_new_characters_is_refused_in_one_line(book, tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert run("headlines", argv=["--text-file", str(book), "--run-dir", str(run_dir), *TINY,
                                  "--train.max_steps=3", "--train.max_epochs=1"]) == 0
    book.write_text(book.read_text() + "Ωmega Ünicode\n")
    message = bad(tmp_path, capsys, book, "--train.max_steps=6")
    assert "the vocabulary lacks (first: ' ')" not in message and "lacks" in message
    assert "--no-resume" in message


def test_a_text_is_read_in_chunks_and_cached(tmp_path, monkeypatch):
    """Memory stays flat: the text is decoded and encoded chunk by chunk (a multi-byte character
    cut between two chunks included), and a second reading opens the cached ids."""
    path = tmp_path / "book.txt.gz"
    text = "Ωμέγα and ASCII.\n" * 2000
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    monkeypatch.setattr(stream_io, "CHUNK", 1001)  # odd: cuts the two-byte characters
    ids, vocab = read_stream(path, tmp_path / "cache")
    assert "".join(vocab.decode(ids.tolist())) == text and isinstance(ids, np.memmap)
    with pytest.raises(StreamError, match="vocabulary lacks"):
        read_stream(path, tmp_path / "other", vocab=type(vocab)(["a", "b"]))
    monkeypatch.setattr(stream_io, "_encode", lambda *a: pytest.fail("encoded twice"))
    again, _ = read_stream(path, tmp_path / "cache")
    assert np.array_equal(ids, again)
