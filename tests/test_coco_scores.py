"""The COCO caption toolkit's metrics beside seqgen's own: every metric that cannot run is skipped
with one line saying why, and the others are still reported."""
import shutil

import pytest

from seqgen.tasks.captioning import coco_scores as coco
from seqgen.tasks.captioning.cider import cider_d

pytest.importorskip("pycocoevalcap")

HYPS = ["a dog runs on the grass .", "a man rides a bike"]
REFS = [["A dog is running on grass.", "a brown dog runs on the grass"],
        ["A man riding a bicycle.", "a person rides a bike"]]


def test_without_java_bleu_rouge_and_cider_remain_and_one_line_says_what_was_skipped(monkeypatch):
    monkeypatch.setattr(coco.shutil, "which", lambda name: None)
    scores, notes = coco.coco_scores(HYPS, REFS)
    assert set(scores) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d"}
    assert len(notes) == 1 and "Java" in notes[0] and "\n" not in notes[0]
    tokens = [coco.simple_tokens(h) for h in HYPS]
    assert tokens[0] == "a dog runs on the grass"
    expected = cider_d(tokens, [[coco.simple_tokens(r) for r in refs] for refs in REFS])
    assert scores["cider_d"] == pytest.approx(expected, abs=1e-4)


def test_a_java_step_that_hangs_or_dies_is_a_note_not_a_traceback(monkeypatch):
    notes: list[str] = []
    monkeypatch.setattr(coco.sys, "executable", shutil.which("sleep") or "/bin/sleep")
    assert coco._java_step("meteor", {}, 5.0, notes) is None  # "sleep -m ..." fails at once
    assert notes and notes[0].startswith("METEOR skipped")
    notes.clear()
    monkeypatch.setattr(coco.subprocess, "run", _times_out)
    assert coco._java_step("spice", {}, 2.0, notes) is None
    assert notes == ["SPICE skipped: no answer within 2 s"]


def _times_out(*args, timeout=None, **kwargs):
    raise coco.subprocess.TimeoutExpired(args[0], timeout)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_with_java_meteor_is_reported_as_the_toolkit_computes_it():
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    scores, notes = coco.coco_scores(HYPS, REFS, timeout=300)
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({str(i): [{"caption": r} for r in refs] for i, refs in enumerate(REFS)})
    res = tokenizer.tokenize({str(i): [{"caption": h}] for i, h in enumerate(HYPS)})
    assert scores["meteor"] == pytest.approx(100 * Meteor().compute_score(gts, res)[0], abs=0.01)
    assert all("METEOR" not in note for note in notes)
