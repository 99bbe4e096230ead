"""Summaries of documents with a trained model, and their evaluation: ROUGE-1/2/L F1 beside the
lead baseline (the document's first 12 words after its dateline) on the same rows."""
from __future__ import annotations

from typing import Any, Sequence

from ...data.carve import VAL, carve
from ...decoding.by_length import decode_by_length
from ...decoding.generation import GenerationConfig
from ...decoding.search import Hypothesis, generate
from ...io.loaded import LoadedModel
from ...metrics import rouge_scorer, rouge_scores
from ...training.self_critical import Reward
from ...vocab import Vocab
from ..saved import saved_data_config
from .data import SummarizationDataConfig, document_batch, lead, read_rows

HELDOUT = "heldout"  # the validation rows the model's own run carved out of its training data


def summarize(loaded: LoadedModel, documents: Sequence[str], config: GenerationConfig, *,
              attention: bool = False, batch_size: int = 64) -> list[list[Hypothesis]]:
    """Hypotheses per document, in input order, searched as ``config`` says (batched by
    length); an empty document gets an empty summary without touching the model."""
    limit = int(loaded.task_config.get("data", {}).get("max_src_len", 100))
    searcher = config.searcher(attention=attention)

    def decode(rows: list[Sequence[int]]) -> list[list[Hypothesis]]:
        return generate(loaded.model, document_batch(rows).to(loaded.model.device), searcher)

    rows = [loaded.src_vocab.encode(loaded.src_tokenizer.tokenize(d)[:limit]) if d.strip()
            else None for d in documents]
    return decode_by_length(rows, decode, batch_size=batch_size)


def score_summaries(loaded: LoadedModel, documents: Sequence[str], references: Sequence[str],
                    config: GenerationConfig) -> dict:
    """The model's ROUGE and the lead baseline's on the same (document, reference) rows."""
    summaries = [loaded.decode(h[0].tokens) for h in summarize(loaded, documents, config)]
    model = rouge_scores(summaries, references)
    baseline = rouge_scores([lead(d) for d in documents], references)
    return {**model, **{f"lead_{k}": v for k, v in baseline.items()},
            "rougeL_over_lead": round(model["rougeL"] - baseline["rougeL"], 2),
            "documents": len(documents)}


def data_config(loaded: LoadedModel, data_dir: str) -> SummarizationDataConfig:
    """The model's own data settings (carve share and seed, limits), reading ``data_dir``."""
    return saved_data_config(SummarizationDataConfig, loaded, data_dir=data_dir, pairs="",
                             src_file="", tgt_file="", dataset="")


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
