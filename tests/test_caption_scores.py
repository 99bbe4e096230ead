"""Caption scores checked on values: BLEU-1/2/3 from clipped n-gram counts and the brevity
penalty, CIDEr-D from its tf-idf vectors, the exact-match and distinct shares, each worked out by
hand in the comments on a case small enough to follow; then the toolkit's own CIDEr-D."""
from __future__ import annotations

import math

import pytest

from seqgen.metrics import caption_bleu
from seqgen.tasks.captioning.cider import CiderD, cider_d
from seqgen.tasks.captioning.inference import score_captions

# Two images, two references each, one caption each: short enough to score by hand.
REFS = [["a dog runs", "a dog sits"], ["a cat sleeps", "the cat sleeps"]]
HYPS = ["a dog runs", "cat runs"]


def test_bleu_by_hand_from_clipped_counts_and_the_brevity_penalty():
    # Corpus BLEU adds the clipped n-gram matches of every caption (each n-gram counted at most
    # as often as in the reference that has it most) over the n-grams of the captions.
    #   "a dog runs"  1-grams a, dog, runs: all in "a dog runs"       -> 3 of 3
    #                 2-grams "a dog", "dog runs": both there           -> 2 of 2
    #                 3-gram  "a dog runs": there                       -> 1 of 1
    #   "cat runs"    1-grams cat (in both refs), runs (in neither)     -> 1 of 2
    #                 2-gram  "cat runs": in neither                    -> 0 of 1
    #   p1 = 4/5, p2 = 2/3, p3 = 1/1
    # Brevity: the captions have c = 3 + 2 = 5 words; the closest reference lengths are 3 and 3,
    # r = 6, and c < r, so BP = exp(1 - r/c) = exp(1 - 6/5) = exp(-0.2) = 0.8187.
    #   BLEU-1 = BP * p1                    = 0.8187 * 0.8               = 65.50
    #   BLEU-2 = BP * (p1 * p2) ** (1/2)    = 0.8187 * sqrt(0.5333)      = 59.79
    #   BLEU-3 = BP * (p1 * p2 * p3) ** (1/3) = 0.8187 * 0.5333 ** (1/3) = 66.40
    bp = math.exp(1 - 6 / 5)
    scores = caption_bleu(HYPS, REFS)
    assert scores["bleu1"] == pytest.approx(100 * bp * 4 / 5, abs=0.005)
    assert scores["bleu2"] == pytest.approx(100 * bp * (4 / 5 * 2 / 3) ** (1 / 2), abs=0.005)
    assert scores["bleu3"] == pytest.approx(100 * bp * (4 / 5 * 2 / 3 * 1) ** (1 / 3), abs=0.005)
    assert (scores["bleu1"], scores["bleu2"], scores["bleu3"]) == (65.5, 59.79, 66.4)
    # the same words in another case are the same words (BLEU here is lower-cased)
    assert caption_bleu(["A Dog RUNS", "Cat runs"], REFS) == scores


def test_cider_d_by_hand_from_tf_idf_vectors():
    # Document frequencies count the images whose references hold an n-gram; with N = 2 images,
    # idf = log(N / df): "a" is in both images' references (idf log 1 = 0), every other n-gram of
    # the references in one (idf log 2 = L); an n-gram in no reference counts as df 1 (idf L).
    # A vector's weight is tf * idf; CIDEr-D takes, per n (1..4), the cosine of caption and
    # reference with the caption's weights clipped at the reference's, times a length penalty
    # exp(-(lc - lr)**2 / (2 * 6**2)) (lengths in bigrams), averages over n and references, x 10.
    #
    # Image 1, "a dog runs" (bigram length 2, as both references: penalty 1):
    #   vs "a dog runs": n=1 {dog: L, runs: L} on itself: cos 1; n=2 cos 1; n=3 cos 1; n=4 none: 0
    #                    -> (1 + 1 + 1 + 0) / 4 = 3/4
    #   vs "a dog sits": n=1 {dog: L, runs: L}.{dog: L, sits: L} = L^2 over (L*sqrt2)^2: 1/2
    #                    n=2 {"a dog", "dog runs"} vs {"a dog", "dog sits"}: 1/2; n=3, n=4: 0
    #                    -> (1/2 + 1/2) / 4 = 1/4
    #   score = 10 * (3/4 + 1/4) / 2 = 5
    # Image 2, "cat runs" (bigram length 1 against 2: penalty exp(-1/72) = 0.98621):
    #   vs "a cat sleeps":   n=1 {cat: L, runs: L}.{cat: L, sleeps: L} (a weighs 0): cos 1/2
    #                        n=2 "cat runs" is not there: 0 -> (1/2) / 4
    #   vs "the cat sleeps": n=1 L^2 over (L*sqrt2)(L*sqrt3): cos 1/sqrt6 = 0.40825 -> 0.40825 / 4
    #   score = 10 * exp(-1/72) * (1/2 + 1/sqrt6) / 4 / 2 = 1.11965
    # Corpus CIDEr-D = (5 + 1.11965) / 2 = 3.05983
    image_2 = 10 * math.exp(-1 / 72) * (1 / 2 + 1 / math.sqrt(6)) / 8
    scorer = CiderD(REFS)
    assert scorer.score(HYPS[0], 0) == pytest.approx(5.0, rel=1e-12)
    assert scorer.score(HYPS[1], 1) == pytest.approx(image_2, rel=1e-12)
    assert image_2 == pytest.approx(1.11965, abs=1e-5)
    assert cider_d(HYPS, REFS) == pytest.approx((5 + image_2) / 2, rel=1e-12)


def test_score_captions_adds_the_exact_and_distinct_shares():
    scores = score_captions(HYPS, REFS)
    assert {k: scores[k] for k in ("bleu1", "bleu2", "bleu3")} == {
        k: v for k, v in caption_bleu(HYPS, REFS).items() if k != "bleu4"}
    assert scores["cider"] == 3.0598  # (5 + 1.11965) / 2, to four places
    # "a dog runs" is one of image 1's references, "cat runs" none of image 2's: 1 of 2
    assert scores["exact_match"] == 0.5
    assert scores["distinct"] == 1.0  # two captions, two different ones
    # case and a final full stop do not count: "a dog runs" and "A dog runs ." are one caption
    # (1 distinct of 2); the second is held against image 2's references, so 1 exact of 2
    same = score_captions(["a dog runs", "A dog runs ."], REFS)
    assert same["distinct"] == 0.5 and same["exact_match"] == 0.5


def test_scores_reward_matching_captions():
    refs = [["a dog runs on grass", "a brown dog runs"], ["two people walk in the snow"],
            ["a child plays with a ball", "a kid plays ball"]]
    good = score_captions(["a dog runs on grass", "two people walk in the snow",
                           "a child plays with a ball"], refs)
    bad = score_captions(["a cat sleeps", "a car parked", "the sea"], refs)
    assert good["bleu4"] == 100.0 and good["exact_match"] == 1.0 and bad["bleu4"] < 5
    assert good["cider"] > 2.0 and bad["cider"] < 0.1
    assert cider_d(["a b c"], [["a b c"]]) == 0.0  # one image: every n-gram has idf 0
    assert good["distinct"] == 1.0
    same = score_captions(["a dog runs .", "A dog runs", "a child plays with a ball"], refs)
    assert same["distinct"] == round(2 / 3, 4)  # case and the final full stop do not count


def test_cider_d_matches_the_coco_caption_toolkit():
    from pycocoevalcap.cider import cider  # installed by the test extra
    hyps = ["a dog runs on the grass", "two men are standing", "a child plays with a red ball",
            "a woman walks"]
    refs = [["a brown dog runs on grass", "a dog is running", "the dog runs"],
            ["two men stand outside", "men standing"],
            ["a kid plays with a ball", "a child is playing with a red ball"],
            ["a man walks down the street"]]
    expected, _ = cider.Cider().compute_score(dict(enumerate(refs)),
                                              {i: [h] for i, h in enumerate(hyps)})
    assert cider_d(hyps, refs) == pytest.approx(expected, rel=1e-9)
