"""ROUGE against hand-computed values on two sentence pairs."""
from __future__ import annotations

import pytest

from seqgen.metrics import rouge_scores


def test_rouge_matches_hand_computed_f1():
    # 1) hyp "the cat sat on the mat", ref "the cat is on the mat":
    #    unigrams: 5 of 6 match (the x2, cat, on, mat) -> P = R = F = 5/6
    #    bigrams: "the cat", "on the", "the mat" match, 3 of 5 -> F = 3/5
    #    LCS "the cat on the mat" = 5 -> F = 5/6
    # 2) hyp "stocks rise", ref "oil prices rise sharply":
    #    unigrams: "rise" -> P = 1/2, R = 1/4, F = 1/3; no bigram; LCS 1 -> F = 1/3
    scores = rouge_scores(["the cat sat on the mat", "stocks rise"],
                          ["the cat is on the mat", "oil prices rise sharply"])
    assert scores["rouge1"] == pytest.approx(100 * (5 / 6 + 1 / 3) / 2, abs=0.01)
    assert scores["rouge2"] == pytest.approx(100 * (3 / 5 + 0) / 2, abs=0.01)
    assert scores["rougeL"] == pytest.approx(100 * (5 / 6 + 1 / 3) / 2, abs=0.01)


def test_rouge_stems_and_checks_its_input():
    assert rouge_scores(["prices rising"], ["price rises"])["rouge1"] == 100.0
    with pytest.raises(ValueError, match="2 summaries for 1"):
        rouge_scores(["a", "b"], ["a"])
