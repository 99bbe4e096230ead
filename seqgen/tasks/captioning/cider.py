"""CIDEr-D (Vedantam et al. 2015) as the COCO caption toolkit computes it, in plain Python.

The maintained implementation, pycocoevalcap, is a 100 MB install (Stanford tools for its Java
tokenizer and SPICE), too heavy for a dependency; this re-states the metric, and a test checks
that it gives the same number as pycocoevalcap's ``Cider`` where that is installed: tf-idf weighted n-gram vectors (n = 1..4, document frequencies over
the reference sets of the evaluated images), cosine similarity with the hypothesis' weights
clipped at the reference's, a Gaussian penalty on the length difference (sigma 6), averaged over
n and over references, times 10. Tokenisation is lower-cased words without punctuation (COCO
uses the PTB tokenizer, which differs only on rare punctuation cases).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _ngrams(text: str, n_max: int) -> Counter:
    words = _WORD.findall(text.lower())
    return Counter(tuple(words[i:i + n]) for n in range(1, n_max + 1)
                   for i in range(len(words) - n + 1))


def _vector(counts: Counter, df: Counter, log_n_images: float, n_max: int
            ) -> tuple[list[dict], list[float], int]:
    vec: list[dict] = [{} for _ in range(n_max)]
    norm = [0.0] * n_max
    length = 0
    for gram, tf in counts.items():
        n = len(gram) - 1
        weight = tf * (log_n_images - math.log(max(1.0, df[gram])))
        vec[n][gram] = weight
        norm[n] += weight * weight
        if n == 1:  # the toolkit measures length in bigrams; kept for comparable numbers
            length += tf
    return vec, [math.sqrt(x) for x in norm], length


class CiderD:
    """CIDEr-D with document frequencies fixed by one collection of reference sets: the evaluated
    images' for the corpus score, the training images' for self-critical rewards (where each
    sampled caption is scored alone against its image's references)."""

    def __init__(self, references: Sequence[Sequence[str]], *, n_max: int = 4,
                 sigma: float = 6.0) -> None:
        self.n_max, self.sigma = n_max, sigma
        counts = [[_ngrams(r, n_max) for r in refs] for refs in references]
        self.df: Counter = Counter()
        for sets in counts:
            self.df.update(set(g for c in sets for g in c))
        self.log_n = math.log(float(max(len(references), 1)))
        self.refs = [[_vector(c, self.df, self.log_n, n_max) for c in sets] for sets in counts]

    def score(self, hypothesis: str, index: int) -> float:
        """One caption's CIDEr-D against reference set ``index``."""
        refs = self.refs[index]
        h_vec, h_norm, h_len = _vector(_ngrams(hypothesis, self.n_max), self.df, self.log_n,
                                       self.n_max)
        score = 0.0
        for r_vec, r_norm, r_len in refs:
            penalty = math.exp(-((h_len - r_len) ** 2) / (2 * self.sigma ** 2))
            for n in range(self.n_max):
                dot = sum(min(w, r_vec[n].get(g, 0.0)) * r_vec[n].get(g, 0.0)
                          for g, w in h_vec[n].items())
                if h_norm[n] and r_norm[n]:
                    dot /= h_norm[n] * r_norm[n]
                score += dot * penalty / self.n_max
        return 10.0 * score / max(len(refs), 1)


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, n_max: int = 4,
            sigma: float = 6.0) -> float:
    """Corpus CIDEr-D (the usual x10 scale: a perfect match of common captions is well above 1)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} captions for {len(references)} reference sets")
    if not hypotheses:
        return 0.0
    scorer = CiderD(references, n_max=n_max, sigma=sigma)
    return sum(scorer.score(h, i) for i, h in enumerate(hypotheses)) / len(hypotheses)
