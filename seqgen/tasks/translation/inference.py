"""Translation task glue shared by the recipe, the CLI and the benchmark: batched translation,
sacreBLEU evaluation, attention heatmaps and the self-critical reward."""
from __future__ import annotations

import logging
from typing import Sequence

import torch

from ...decoding.search import Hypothesis, build_searcher, generate
from ...decoding.shortlist import Shortlist, generate_shortlisted
from ...io.loaded import LoadedModel
from ...metrics import translation_scores
from ...training.self_critical import Reward
from .data import TranslationDataConfig, encode_sources, load_pairs, source_batch

MAX_SOURCE_TOKENS = 200  # longer inputs are cut (the pipeline warns)
log = logging.getLogger(__name__)


def translate(loaded: LoadedModel, texts: Sequence[str], searcher: object, *,
              batch_size: int = 128, shortlist: bool = True) -> list[list[Hypothesis]]:
    """Hypotheses per input sentence, in input order.

    Sentences are batched by length; empty lines get one empty hypothesis without touching the
    model, so one blank line never breaks a batch. With ``shortlist`` and a checkpoint that has
    one, each batch decodes over its candidate target words only (see :mod:`seqgen.decoding.shortlist`).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1 (got {batch_size})")
    if loaded.src_vocab is None or loaded.src_tokenizer is None:
        raise ValueError("this checkpoint has no source vocabulary; is it a translation model?")
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t.strip()]
    ids = encode_sources([texts[i] for i in todo], loaded.src_tokenizer, loaded.src_vocab,
                         MAX_SOURCE_TOKENS)
    order = sorted(range(len(todo)), key=lambda j: len(ids[j]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = source_batch([ids[j] for j in chunk]).to(loaded.model.device)
        hypotheses = (generate_shortlisted(loaded.model, batch, searcher, loaded.shortlist)
                      if shortlist and loaded.shortlist is not None
                      else generate(loaded.model, batch, searcher))
        for j, hyps in zip(chunk, hypotheses):
            results[todo[j]] = hyps
    return results


def translate_texts(loaded: LoadedModel, texts: Sequence[str], *, beam: int = 5,
                    length_penalty: float = 1.0, max_len: int = 120, batch_size: int = 128,
                    shortlist: bool = True, no_repeat_ngram: int = 0) -> list[str]:
    """The best translation of each sentence as detokenised text."""
    searcher = build_searcher(beam=beam, length_penalty=length_penalty, max_len=max_len,
                              no_repeat_ngram=no_repeat_ngram)
    return [loaded.decode(h[0].tokens) for h in translate(loaded, texts, searcher,
                                                          batch_size=batch_size,
                                                          shortlist=shortlist)]


def evaluate_texts(loaded: LoadedModel, sources: Sequence[str], references: Sequence[str], *,
                   beam: int = 5, length_penalty: float = 1.0, batch_size: int = 128,
                   shortlist: bool = True, no_repeat_ngram: int = 0) -> dict:
    """sacreBLEU BLEU (cased, 13a, detokenised) and chrF of the translations of ``sources``,
    and whether a vocabulary shortlist was used."""
    hyps = translate_texts(loaded, sources, beam=beam, length_penalty=length_penalty,
                           batch_size=batch_size, shortlist=shortlist,
                           no_repeat_ngram=no_repeat_ngram)
    return {**translation_scores(hyps, references),
            "shortlist": shortlist and loaded.shortlist is not None}


def data_config(loaded: LoadedModel, data_dir: str) -> TranslationDataConfig:
    """A Multi30k-style folder read in the language pair the model was trained on."""
    saved = loaded.task_config.get("data", {})
    return TranslationDataConfig(data_dir=data_dir, src=saved.get("src", "de"),
                                 tgt=saved.get("tgt", "en"))


def evaluate_split(loaded: LoadedModel, data_dir: str, split: str, *, beam: int = 5,
                   length_penalty: float = 1.0, limit: int = 0, shortlist: bool = True,
                   no_repeat_ngram: int = 0) -> dict:
    """Scores one split of a Multi30k-style folder (``{split}.{src}`` / ``{split}.{tgt}``)."""
    config = data_config(loaded, data_dir)
    sources, references = load_pairs(config, split)
    if limit:
        sources, references = sources[:limit], references[:limit]
    if not any(s.strip() for s in sources):
        raise ValueError(f"split {split!r} in {data_dir} has no sentences to translate")
    log.info("translating %d sentences (%s->%s, beam %d)", len(sources), config.src, config.tgt,
             beam)
    scores = evaluate_texts(loaded, sources, references, beam=beam, length_penalty=length_penalty,
                            shortlist=shortlist, no_repeat_ngram=no_repeat_ngram)
    return {**scores, "split": split, "sentences": len(sources), "beam": beam,
            "length_penalty": length_penalty}


def learn_shortlist(loaded: LoadedModel, data_dir: str, *, split: str = "train") -> Shortlist:
    """A vocabulary shortlist for a trained translator, learnt from the sentence pairs of one
    split of a Multi30k-style folder with the model's own tokenizers (what the recipe learns at
    training time, for checkpoints made without one)."""
    if loaded.src_vocab is None or loaded.src_tokenizer is None:
        raise ValueError("this checkpoint has no source vocabulary; is it a translation model?")
    saved = loaded.task_config.get("data", {})
    sources, targets = load_pairs(data_config(loaded, data_dir), split)
    pairs = [(s, t) for s, t in zip(sources, targets) if s.strip() and t.strip()]
    if not pairs:
        raise ValueError(f"split {split!r} in {data_dir} has no sentence pairs")
    max_len = int(saved.get("max_len", MAX_SOURCE_TOKENS))
    src_ids = encode_sources([s for s, _ in pairs], loaded.src_tokenizer, loaded.src_vocab, max_len)
    tgt_ids = encode_sources([t for _, t in pairs], loaded.tgt_tokenizer, loaded.tgt_vocab, max_len)
    return Shortlist.learn(src_ids, tgt_ids, src_vocab_size=len(loaded.src_vocab),
                           tgt_vocab_size=len(loaded.tgt_vocab))


@torch.no_grad()
def greedy_bleu(loaded: LoadedModel, sources: Sequence[str], references: Sequence[str]) -> float:
    """Quick validation BLEU with greedy search, for model selection during training."""
    return evaluate_texts(loaded, sources, references, beam=1)["bleu"]


def bleu_reward(references: Sequence[str], loaded: LoadedModel) -> Reward:
    """Self-critical reward: each sampled translation's sentence BLEU (0-1; sacreBLEU, cased, 13a,
    with effective n-gram order so short sentences are not all zero) against the reference of its
    training pair (``references[id]``), on detokenised text as the corpus score sees it."""
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU(effective_order=True)

    def reward(ids: Sequence[int], samples: Sequence[Sequence[int]]) -> list[float]:
        return [bleu.sentence_score(loaded.decode(list(tokens)), [references[i]]).score / 100
                for i, tokens in zip(ids, samples)]
    return reward
