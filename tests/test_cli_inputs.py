"""Bad input and odd input at the command line and in the pipeline: text in = text out line for
line, undecodable bytes, out-of-range options, unwritable outputs, bounded memory, Ctrl-C."""
from __future__ import annotations

import io
import signal
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import seqgen.pipeline as pipeline_module
from seqgen.cli.main import main as cli
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import load_checkpoint
from seqgen.io.fileio import decode_lines, split_lines
from seqgen.pipeline import Pipeline

SEPARATORS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\r"]


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


# -- lines --------------------------------------------------------------------------------------
def test_lines_split_on_newlines_only():
    text = "a\u2028b\nc\x0cd\r\ne\rf\n"
    assert split_lines(text) == ["a\u2028b", "c\x0cd", "e\rf"]
    assert split_lines("") == [] and split_lines("\n") == [""] and split_lines("x") == ["x"]


def test_undecodable_lines_become_empty_and_are_numbered():
    lines, bad = decode_lines(b"\xef\xbb\xbfgood\nf\xe4hrt\r\n\xff\xfe\nlast")
    assert lines == ["good", "", "", "last"] and bad == [2, 3]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                                     blacklist_characters="\n") | st.sampled_from(SEPARATORS),
                              max_size=12), max_size=6),
       broken=st.sets(st.integers(min_value=0, max_value=5)))
def test_translate_gives_one_output_line_per_input_line(tiny_checkpoints, capsys, monkeypatch,
                                                        lines, broken):
    raw = b"\n".join(line.encode() + (b"\xff" if i in broken else b"")
                     for i, line in enumerate(lines)) + (b"\n" if lines else b"")
    feed_stdin(monkeypatch, raw)
    status = cli(["translate", "--ckpt", str(tiny_checkpoints["translation"]), "--max-len", "3",
                  "--beam", "2"])
    out, err = capsys.readouterr()
    bad = [i + 1 for i in range(len(lines)) if i in broken]
    assert out.count("\n") == len(lines)
    assert status == (1 if bad else 0)
    assert [int(w.split("line ")[1].split()[0]) for w in err.splitlines() if "UTF-8" in w] == bad


def test_an_undecodable_line_does_not_lose_the_others(tiny_checkpoints, capsys, monkeypatch,
                                                      tmp_path):
    feed_stdin(monkeypatch, b"Ein Hund l\xe4uft .\nEin Hund .\n")
    assert cli(["translate", "--ckpt", str(tiny_checkpoints["translation"]), "--max-len", "4"]) == 1
    out, err = capsys.readouterr()
    assert out.split("\n")[0] == "" and out.count("\n") == 2
    assert err.strip() == "seqgen translate: warning: line 1 is not valid UTF-8; its output line is empty"
    source = tmp_path / "in.txt"
    source.write_bytes("A\u2028B\nC\x0cD\n".encode())
    assert cli(["translate", "--ckpt", str(tiny_checkpoints["translation"]), "--input",
                str(source), "--max-len", "4"]) == 0
    assert capsys.readouterr().out.count("\n") == 2


def test_the_long_input_warning_names_its_own_line(tiny_checkpoints, capsys):
    long = " ".join(["Hund"] * 250)
    assert cli(["translate", "--ckpt", str(tiny_checkpoints["translation"]), "--max-len", "3",
                "", "Ein Hund .", long]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqgen translate: warning: line 3: 250 source pieces")


# -- options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["generate", "-n", "0"], "-n/--num"),
    (["generate", "--beam", "3", "-n", "5"], "--n-best"),
    (["generate", "--repetition-penalty", "nan"], "--repetition-penalty"),
    (["generate", "--length-penalty", "nan"], "--length-penalty"),
    (["generate", "--temperature", "1e-45"], "temperature must be from"),
    (["generate", "--temperature", "inf", "--no-repeat-ngram", "2"], "--temperature"),
    (["generate", "--beam", "2", "--n-best", "3"], "n-best must be at most"),
    (["generate", "--max-len", "100000000"], "max_len"),
    (["generate", "--device", "foo"], "unknown device"),
    (["translate", "--beam", "0", "x"], "--beam"),
    (["translate", "--batch-size", "0", "x"], "--batch-size"),
    (["evaluate", "--beam", "0", "--data-dir", "."], "--beam"),
    (["evaluate", "--limit", "-995", "--data-dir", "."], "--limit"),
])
def test_out_of_range_options_are_one_line_errors(tiny_checkpoints, capsys, argv, message):
    task = "translation" if argv[0] == "translate" else "headlines"
    assert cli([*argv, "--ckpt", str(tiny_checkpoints[task])]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_named(tiny_checkpoints, capsys):
    assert cli(["generate", "--ckpt", str(tiny_checkpoints["headlines"]), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_text_live_and_in_a_pipe(tiny_checkpoints):
    pipe = Pipeline.load(tiny_checkpoints["headlines"])
    options = GenerationConfig(temperature=1.0, seed=7, max_len=30)
    live = "".join(pipe.stream("Oil ", options))
    piped = next(pipe.iter_samples("Oil ", options, n=1)).text
    assert live == piped and live.startswith("Oil ")


# -- outputs that cannot be written, damaged files ---------------------------------------------
def test_an_unwritable_attention_picture_is_one_failed_item(tiny_checkpoints, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status = cli(["translate", "--ckpt", str(tiny_checkpoints["translation"]), "--max-len", "3",
                  "--attention", str(blocker / "a.png"), "Ein Hund .", "Ein Hund läuft ."])
    out, err = capsys.readouterr()
    assert status == 1 and out.count("\n") == 2
    assert err.count("cannot write") == 2 and "Traceback" not in err


def test_export_to_a_folder_or_an_unwritable_place_is_refused(tiny_checkpoints, capsys, tmp_path):
    ckpt = str(tiny_checkpoints["headlines"])
    assert cli(["export", "--ckpt", ckpt, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli(["export", "--ckpt", ckpt, "--out", str(blocker / "m.pt")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert cli(["export", "--ckpt", ckpt, "--out", str(tmp_path / "m.pt")]) == 0
    assert load_checkpoint(tmp_path / "m.pt")["model"]


def test_a_checkpoint_missing_its_parts_is_named(tiny_checkpoints, capsys, tmp_path):
    ckpt = load_checkpoint(tiny_checkpoints["headlines"])
    for key in ("model", "tgt_vocab", "model_config"):
        damaged = {k: v for k, v in ckpt.items() if k != key}
        torch.save(damaged, tmp_path / "d.pt")
        assert cli(["generate", "--ckpt", str(tmp_path / "d.pt")]) == 2
        err = capsys.readouterr().err
        assert key in err and "\n" not in err.strip() and "Traceback" not in err


# -- data splits --------------------------------------------------------------------------------
def test_evaluate_prefers_the_split_named_and_refuses_an_empty_one(tiny_checkpoints, capsys,
                                                                   tmp_path):
    ckpt = str(tiny_checkpoints["translation"])
    (tmp_path / "test.de").write_text("Ein Hund .\n")
    (tmp_path / "test.en").write_text("A dog .\n")
    (tmp_path / "test_2016_flickr.de").write_text("x\ny\n")
    (tmp_path / "test_2016_flickr.en").write_text("x\ny\n")
    assert cli(["evaluate", "--ckpt", ckpt, "--data-dir", str(tmp_path), "--split", "test",
                "--beam", "2"]) == 0
    assert '"sentences": 1' in capsys.readouterr().out
    (tmp_path / "empty.de").write_text("")
    (tmp_path / "empty.en").write_text("")
    assert cli(["evaluate", "--ckpt", ckpt, "--data-dir", str(tmp_path), "--split", "empty"]) == 2
    assert "no sentences" in capsys.readouterr().err


# -- bounded memory -----------------------------------------------------------------------------
def test_many_samples_and_wide_beams_run_in_bounded_chunks(tiny_checkpoints, monkeypatch):
    import seqgen.tasks.headlines.adapter as headlines

    sizes: list[int] = []
    real = headlines.generate

    def spy(model, batch, searcher, **kwargs):
        results = real(model, batch, searcher, **kwargs)
        sizes.append(sum(len(r) for r in results) if kwargs.get("num_samples", 1) > 1
                     else batch.size)
        return results

    monkeypatch.setattr(pipeline_module, "MAX_ROWS", 8)
    monkeypatch.setattr(headlines, "generate", spy)
    pipe = Pipeline.load(tiny_checkpoints["headlines"])
    outputs = list(pipe.iter_samples("Oil", GenerationConfig(temperature=1.0, max_len=5), n=20))
    assert len(outputs) == 20 and sizes == [8, 8, 4]

    batches: list[int] = []
    import seqgen.tasks.translation.inference as translation

    real_generate = translation.generate
    monkeypatch.setattr(translation, "generate",
                        lambda m, b, s: batches.append(b.size) or real_generate(m, b, s))
    mt = Pipeline.load(tiny_checkpoints["translation"])
    results = mt.predict(["Ein Hund ."] * 7, GenerationConfig(beam=4, max_len=3), batch_size=64)
    assert len(results) == 7 and max(batches) == 2  # 8 rows / beam 4


# -- Ctrl-C -------------------------------------------------------------------------------------
@pytest.mark.slow  # the CLI in a subprocess
def test_ctrl_c_while_generating_exits_130_without_a_traceback(tiny_checkpoints):
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqgen.cli", "generate", "--ckpt",
         str(tiny_checkpoints["headlines"]), "--temperature", "1", "-n", "10000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a suite started in the background (`pytest &`) runs with SIGINT ignored, and children
        # inherit that: give this one the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline()  # it is generating
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().endswith("interrupted")


# -- lines answered as they arrive ---------------------------------------------------------------
@pytest.mark.slow  # the CLI in a subprocess
def test_stdin_lines_are_answered_before_the_input_ends(tiny_checkpoints):
    """Like typing at a terminal: the first line's output comes while stdin is still open."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqgen.cli", "translate", "--ckpt",
         str(tiny_checkpoints["translation"]), "--max-len", "4", "--precision", "fp32"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("Ein Hund .\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # would block until EOF if input were read whole
        proc.stdin.write("Eine Katze .\n")
        proc.stdin.close()
        rest = proc.stdout.read().splitlines()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert first.endswith("\n") and len(rest) == 1


def test_stdin_chunks_batch_what_is_waiting_and_keep_line_numbers():
    import os

    from seqgen.cli.inputs import stdin_chunks

    read, write = os.pipe()
    os.write(write, b"a\nb\nc\xff\nd")
    os.close(write)
    chunks = list(stdin_chunks(read, limit=2))
    os.close(read)
    assert [texts for texts, _ in chunks] == [["a", "b"], ["", "d"]]
    assert [bad for _, bad in chunks] == [[], [1]]  # the third line, first of its chunk
