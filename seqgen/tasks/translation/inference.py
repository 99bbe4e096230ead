"""Translation task glue shared by the recipe, the CLI and the benchmark: batched translation,
sacreBLEU evaluation, the vocabulary shortlist and the self-critical reward. Every search takes
one resolved :class:`~seqgen.decoding.generation.GenerationConfig`."""
from __future__ import annotations

import logging
from typing import Sequence

from ...decoding.by_length import decode_by_length
from ...decoding.generation import GenerationConfig
from ...decoding.search import Hypothesis, generate
from ...decoding.shortlist import Shortlist, generate_shortlisted
from ...io.loaded import LoadedModel
from ...metrics import translation_scores
from ...training.self_critical import Reward
from ..saved import saved_data_config
from .data import TranslationDataConfig, encode_sources, source_batch
from .splits import load_pairs

MAX_SOURCE_TOKENS = 200  # longer inputs are cut (the pipeline warns)
log = logging.getLogger(__name__)


def translate(loaded: LoadedModel, texts: Sequence[str], config: GenerationConfig, *,
              attention: bool = False, batch_size: int = 128) -> list[list[Hypothesis]]:
    """Hypotheses per input sentence, in input order, searched as ``config`` says.

    Sentences are batched by length; empty lines get one empty hypothesis without touching the
    model. With ``config.shortlist`` and a checkpoint that has one, each batch decodes over its
    candidate target words only (see :mod:`seqgen.decoding.shortlist`).
    """
    if loaded.src_vocab is None or loaded.src_tokenizer is None:
        raise ValueError("this checkpoint has no source vocabulary; is it a translation model?")
    searcher = config.searcher(attention=attention)
    shortlist = loaded.shortlist if config.value("shortlist") else None

    def decode(rows: list[Sequence[int]]) -> list[list[Hypothesis]]:
        batch = source_batch(rows).to(loaded.model.device)
        if shortlist is not None:
            return generate_shortlisted(loaded.model, batch, searcher, shortlist)
        return generate(loaded.model, batch, searcher)

    ids = encode_sources(texts, loaded.src_tokenizer, loaded.src_vocab, MAX_SOURCE_TOKENS)
    rows = [row if text.strip() else None for text, row in zip(texts, ids)]
    return decode_by_length(rows, decode, batch_size=batch_size)


def translate_texts(loaded: LoadedModel, texts: Sequence[str], config: GenerationConfig, *,
                    batch_size: int = 128) -> list[str]:
    """The best translation of each sentence as detokenised text."""
    return [loaded.decode(h[0].tokens)
            for h in translate(loaded, texts, config, batch_size=batch_size)]


def evaluate_texts(loaded: LoadedModel, sources: Sequence[str], references: Sequence[str],
                   config: GenerationConfig, *, batch_size: int = 128) -> dict:
    """sacreBLEU BLEU (cased, 13a, detokenised) and chrF of the translations of ``sources``,
    and whether a vocabulary shortlist was used."""
    hyps = translate_texts(loaded, sources, config, batch_size=batch_size)
    return {**translation_scores(hyps, references),
            "shortlist": bool(config.value("shortlist")) and loaded.shortlist is not None}


def data_config(loaded: LoadedModel, data_dir: str) -> TranslationDataConfig:
    """A Multi30k-style folder read in the language pair the model was trained on."""
    return saved_data_config(TranslationDataConfig, loaded, keep=("src", "tgt"),
                             data_dir=data_dir)


def evaluate_split(loaded: LoadedModel, data_dir: str, split: str, config: GenerationConfig, *,
                   limit: int = 0) -> dict:
    """Scores one split of a Multi30k-style folder (``{split}.{src}`` / ``{split}.{tgt}``)."""
    data = data_config(loaded, data_dir)
    sources, references = load_pairs(data, split)
    if limit:
        sources, references = sources[:limit], references[:limit]
    if not any(s.strip() for s in sources):
        raise ValueError(f"split {split!r} in {data_dir} has no sentences to translate")
    log.info("translating %d sentences (%s->%s, beam %d)", len(sources), data.src, data.tgt,
             config.beam)
    scores = evaluate_texts(loaded, sources, references, config)
    return {**scores, "split": split, "sentences": len(sources), "beam": config.beam,
            "length_penalty": config.length_penalty}


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
