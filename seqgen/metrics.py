"""Metrics: cross-entropy, bits per symbol and perplexity; sacreBLEU corpus BLEU and chrF;
multi-reference caption BLEU-1..4; and the repeated n-gram share that makes greedy loops visible.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .data.batch import Batch


@torch.no_grad()
def corpus_nll(model: torch.nn.Module, batches: Iterable) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) and number of target tokens (EOS in, PAD out)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for batch in batches:
        loss, n = model.loss(batch.to(device))
        total, count = total + float(loss), count + int(n)
    model.train(was_training)
    return total, count


@torch.no_grad()
def stream_nll(model: torch.nn.Module, ids: Sequence[int], *, start: int, stop: int,
               window: int = 2048) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the symbols ``ids[start:stop]`` of one
    continuous text, read as one stream: each is predicted once, from everything before it in
    the span (the state carried from window to window; the first from ``ids[start - 1]``, the
    symbol before the span, where there is one). Memory is one window's, whatever the span.

    Returns:
        (summed NLL, number of symbols scored: ``stop - max(start, 1)``).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, state = 0.0, 0, None
    for pos in range(max(start, 1), stop, window):
        end = min(pos + window, stop)
        span = torch.as_tensor(np.asarray(ids[pos - 1:end], dtype=np.int64), device=device)
        batch = Batch(tgt_in=span[None, :-1], tgt_out=span[None, 1:])
        loss, n, state = model.stream_loss(batch, state)
        total, count = total + float(loss), count + int(n)
    model.train(was_training)
    return total, count


def language_model_scores(nll_nats: float, n_tokens: int) -> dict[str, float]:
    """Cross-entropy per token in nats, bits per token, and perplexity."""
    if n_tokens <= 0:
        raise ValueError("no target tokens to score")
    ce = nll_nats / n_tokens
    return {"cross_entropy": ce, "bits_per_token": ce / math.log(2), "perplexity": math.exp(ce)}


def repeated_ngram_share(texts: Sequence[Sequence[str]], n: int = 4) -> float:
    """Share of n-grams that already occurred earlier in the same text (0 = no repetition).

    A greedy loop such as "for the strike for the strike" scores close to 1.
    """
    repeated = total = 0
    for symbols in texts:
        seen: set[tuple] = set()
        for i in range(len(symbols) - n + 1):
            gram = tuple(symbols[i:i + n])
            repeated += gram in seen
            total += 1
            seen.add(gram)
    return repeated / total if total else 0.0


def distinct_ngrams(texts: Sequence[Sequence[str]], n: int = 2) -> float:
    """Distinct-n: unique n-grams over all n-grams across the texts (diversity of samples)."""
    grams = Counter(tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1))
    return len(grams) / max(sum(grams.values()), 1)


# ------------------------------------------------------------------------------------------------
def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """sacreBLEU corpus BLEU (cased, 13a, detokenised) and chrF, with BLEU's signature."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2),
            "signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def caption_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Multi-reference corpus BLEU-1..4 (0-100), lower-cased, via sacreBLEU.

    Images may have different numbers of references; sacreBLEU wants equal-length reference
    streams, so shorter lists are padded with None, which it skips.
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} captions for {len(references)} reference sets")
    width = max((len(r) for r in references), default=0)
    streams = [[(refs[i] if i < len(refs) else None) for refs in references] for i in range(width)]
    out = {}
    for order in range(1, 5):
        bleu = sacrebleu.metrics.BLEU(lowercase=True, max_ngram_order=order)
        out[f"bleu{order}"] = round(bleu.corpus_score(list(hypotheses), streams).score, 2)
    return out


def rouge_scorer(types: Sequence[str]) -> Any:
    """A ``rouge-score`` scorer of ``types`` with its default tokenizer, Porter-stemmed (given
    explicitly, so the package does not log "Using default tokenizer." on every use)."""
    from rouge_score import rouge_scorer as scorers, tokenizers

    return scorers.RougeScorer(list(types), tokenizer=tokenizers.DefaultTokenizer(use_stemmer=True))


def rouge_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (0-100, Porter-stemmed, as the ``rouge-score`` package
    computes them for summarization papers), averaged over the pairs."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} summaries for {len(references)} references")
    if not hypotheses:
        raise ValueError("no summaries to score")
    scorer = rouge_scorer(["rouge1", "rouge2", "rougeL"])
    totals = Counter()
    for hyp, ref in zip(hypotheses, references):
        for name, score in scorer.score(ref, hyp).items():
            totals[name] += score.fmeasure
    return {name: round(100 * totals[name] / len(hypotheses), 2)
            for name in ("rouge1", "rouge2", "rougeL")}
