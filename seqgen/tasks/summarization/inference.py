"""Summaries of documents with a trained model, and their evaluation: ROUGE-1/2/L F1 beside the
lead baseline (the document's first 12 words after its dateline) on the same rows."""
from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any, Sequence

from ...data.carve import VAL, carve
from ...decoding.search import Hypothesis, generate
from ...io.loaded import LoadedModel
from ...metrics import rouge_scorer, rouge_scores
from ...training.self_critical import Reward
from ...vocab import Vocab
from .data import SummarizationDataConfig, document_batch, lead, read_rows

HELDOUT = "heldout"  # the validation rows the model's own run carved out of its training data


def summarize(loaded: LoadedModel, documents: Sequence[str], searcher: Any, *,
              batch_size: int = 64, max_src_len: int | None = None) -> list[list[Hypothesis]]:
    """Hypotheses per document, in input order (batched by length); an empty document gets an
    empty summary without touching the model."""
    limit = max_src_len or int(loaded.task_config.get("data", {}).get("max_src_len", 100))
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in documents]
    todo = [i for i, d in enumerate(documents) if d.strip()]
    ids = {i: loaded.src_vocab.encode(loaded.src_tokenizer.tokenize(documents[i])[:limit])
           for i in todo}
    order = sorted(todo, key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = document_batch([ids[i] for i in chunk]).to(loaded.model.device)
        for i, hyps in zip(chunk, generate(loaded.model, batch, searcher)):
            results[i] = hyps
    return results


def score_summaries(loaded: LoadedModel, documents: Sequence[str], references: Sequence[str],
                    searcher: Any) -> dict:
    """The model's ROUGE and the lead baseline's on the same (document, reference) rows."""
    summaries = [loaded.decode(h[0].tokens) for h in summarize(loaded, documents, searcher)]
    model = rouge_scores(summaries, references)
    baseline = rouge_scores([lead(d) for d in documents], references)
    return {**model, **{f"lead_{k}": v for k, v in baseline.items()},
            "rougeL_over_lead": round(model["rougeL"] - baseline["rougeL"], 2),
            "documents": len(documents)}


def data_config(loaded: LoadedModel, data_dir: str) -> SummarizationDataConfig:
    """The model's own data settings (carve share and seed, limits), reading ``data_dir``."""
    saved = loaded.task_config.get("data", {})
    known = {f.name for f in dataclass_fields(SummarizationDataConfig)}
    config = SummarizationDataConfig(**{k: v for k, v in saved.items() if k in known})
    config.data_dir, config.pairs, config.src_file, config.tgt_file, config.dataset = (
        data_dir, "", "", "", "")
    return config


def evaluation_rows(loaded: LoadedModel, data_dir: str, split: str, limit: int = 0
                    ) -> tuple[list[str], list[str]]:
    """(documents, summaries) of an AG News-style folder's split, or for ``heldout`` the rows the
    model's training run carved out of ``train`` (the same share and seed carve them again)."""
    config = data_config(loaded, data_dir)
    if split == HELDOUT:
        rows = [(d.strip(), s.strip()) for d, s in read_rows(config) if d.strip() and s.strip()]
        if config.limit:
            rows = rows[:config.limit]
        marks, _ = carve(len(rows), val_fraction=config.val_fraction, val_max=config.val_max,
                         test_fraction=0.0, seed=config.seed)
        rows = [row for row, mark in zip(rows, marks) if mark == VAL]
    else:
        rows = [(d.strip(), s.strip()) for d, s in read_rows(config, split)
                if d.strip() and s.strip()]
    rows = rows[:limit] if limit else rows
    if not rows:
        raise ValueError(f"split {split!r} in {data_dir} has no (document, summary) rows")
    return [d for d, _ in rows], [s for _, s in rows]


def rouge_reward(references: Sequence[str], vocab: Vocab, tokenizer: Any) -> Reward:
    """Self-critical reward: each sampled summary's ROUGE-L F1 (0-1, stemmed, as the evaluation
    computes it) against the summary of its training pair (``references[id]``)."""
    scorer = rouge_scorer(["rougeL"])

    def reward(ids: Sequence[int], samples: Sequence[Sequence[int]]) -> list[float]:
        return [scorer.score(references[i], tokenizer.detokenize(vocab.decode(list(tokens))))
                ["rougeL"].fmeasure for i, tokens in zip(ids, samples)]
    return reward
