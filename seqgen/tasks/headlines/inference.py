"""Headline task glue shared by the recipe and the CLI: prompting, sample tables, evaluation."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ...data.batch import Batch, prompt_batch
from ...data.stream import read_stream, split_stream
from ...data.token_cache import DEFAULT_TOKEN_CACHE
from ...decoding.generation import GenerationConfig
from ...decoding.search import generate
from ...io.loaded import LoadedModel
from ...metrics import (corpus_nll, distinct_ngrams, language_model_scores, repeated_ngram_share,
                        stream_nll)
from ...vocab import BOS
from ..saved import saved_data_config
from .data import examples_to_batches
from .stream import VAL_WINDOW, StreamSpan, text_file_in

PROMPTS = ("Today ", "On Sunday ", "Moscow, ", "President ", "Little red riding hood ")
TEMPERATURES = (0.3, 0.8, 1.0, 1.3, 1.8)


def is_stream(loaded: LoadedModel) -> bool:
    """Whether the model learnt one continuous text (``--stream``) rather than examples."""
    return bool(loaded.task_config.get("data", {}).get("stream"))


def start_symbol(loaded: LoadedModel) -> int:
    """What a prompt starts from: BOS for a model of examples (each began with it); a stream
    model never saw BOS, so it starts from a line break, where its text's parts start."""
    if is_stream(loaded) and "\n" in loaded.tgt_vocab:
        return loaded.tgt_vocab.stoi["\n"]
    return BOS


def prompt_ids(loaded: LoadedModel, texts: Sequence[str]) -> Batch:
    """Prompts as a batch; symbols unseen in training become UNK instead of failing."""
    prompt, lengths = prompt_batch([loaded.tgt_vocab.encode(loaded.tgt_tokenizer.tokenize(t))
                                    for t in texts], start=start_symbol(loaded))
    return Batch(prompt=prompt.to(loaded.model.device), prompt_lengths=lengths)


def continue_prompts(loaded: LoadedModel, prompts: Sequence[str], config: GenerationConfig, *,
                     num_samples: int = 1) -> list[list[str]]:
    """For each prompt, ``num_samples`` texts: the prompt followed by what the model wrote."""
    results = generate(loaded.model, prompt_ids(loaded, prompts), config.searcher(),
                       num_samples=num_samples)
    return [[join_prompt(loaded, prompt, loaded.decode(h.tokens)) for h in hyps]
            for prompt, hyps in zip(prompts, results)]


def join_prompt(loaded: LoadedModel, prompt: str, text: str) -> str:
    """Prompt + continuation: glued for characters, one space between words."""
    if loaded.tgt_tokenizer.level == "char" or not prompt.strip():
        return prompt + text
    return f"{prompt.rstrip()} {text}" if text else prompt.rstrip()


def greedy(config: GenerationConfig) -> GenerationConfig:
    """``config`` without beam or sampling (its length limits and penalties kept)."""
    return replace(config, beam=1, n_best=1, temperature=None, top_k=None, top_p=None)


def at_temperature(config: GenerationConfig, temperature: float) -> GenerationConfig:
    """``config`` sampling at ``temperature`` (seed 0 unless it names one)."""
    return replace(greedy(config), temperature=temperature,
                   seed=0 if config.seed is None else config.seed)


def sample_table(loaded: LoadedModel, config: GenerationConfig, prompts: Sequence[str] = PROMPTS,
                 temperatures: Sequence[float] = TEMPERATURES) -> list[str]:
    """The lesson's table: every prompt greedily and at each temperature, one line each (the
    other settings, the length limit among them, from ``config``)."""
    lines = [f"[greedy] {texts[0]}" for texts in continue_prompts(loaded, prompts, greedy(config))]
    for t in temperatures:
        found = continue_prompts(loaded, prompts, at_temperature(config, t))
        lines += [f"[T={t}] {texts[0]}" for texts in found]
    return lines


def evaluate_texts(loaded: LoadedModel, texts: Sequence[str], config: GenerationConfig, *,
                   batch_size: int = 128, n_prompts: int = 100) -> dict:
    """Bits per symbol and perplexity on held-out texts (PAD excluded, EOS included), and the
    share of repeated word 3-grams in continuations of their first words, greedy and at
    temperature 0.8 (searched with ``config``'s other settings: its length limit, penalties and
    n-gram blocking)."""
    ids = [loaded.tgt_vocab.encode(loaded.tgt_tokenizer.tokenize(t)) for t in texts if t.strip()]
    if not ids:
        raise ValueError("no evaluation text (all examples empty)")
    nll, count = corpus_nll(loaded.model, examples_to_batches(ids, batch_size))
    scores = language_model_scores(nll, count)
    unit = "char" if loaded.tgt_tokenizer.level == "char" else "token"
    out = {f"bits_per_{unit}": round(scores["bits_per_token"], 4),
           "perplexity": round(scores["perplexity"], 4),
           "cross_entropy": round(scores["cross_entropy"], 4), f"n_{unit}s": count}
    prompts = [" ".join(t.split()[:2]) + " " for t in texts[:n_prompts] if t.split()]
    for name, search in (("greedy", greedy(config)), ("t0.8", at_temperature(config, 0.8))):
        samples = [s[0].split() for s in continue_prompts(loaded, prompts, search)]
        out[f"repeated_3gram_share_{name}"] = round(repeated_ngram_share(samples, 3), 4)
        out[f"distinct_2_{name}"] = round(distinct_ngrams(samples, 2), 4)
    return {**out, "max_len": config.max_len}


HELDOUT = "heldout"  # the validation rows carved out of the training file, as in training
STREAM_SPLITS = {HELDOUT: "val", "val": "val", "validation": "val", "train": "train",
                 "all": "all"}  # a stream model's splits: its held-out tail, its head, all


def evaluate_stream(loaded: LoadedModel, span: StreamSpan) -> dict:
    """Nats and bits per character of a stream's span, every character predicted once from all
    before it (the state carried from window to window)."""
    if len(span) < 2:
        raise ValueError("no evaluation text: the span holds fewer than two characters")
    nll, count = stream_nll(loaded.model, span.ids, start=span.start, stop=span.stop,
                            window=VAL_WINDOW)
    scores = language_model_scores(nll, count)
    return {"nats_per_char": round(scores["cross_entropy"], 4),
            "bits_per_char": round(scores["bits_per_token"], 4),
            "perplexity": round(scores["perplexity"], 4), "n_chars": count}


def stream_split(loaded: LoadedModel, path: str, split: str, *, limit: int = 0) -> StreamSpan:
    """A split of a stream model's text (or of another file): ``heldout`` (or ``val``) is the
    tail its run held out, by the fraction the run recorded; ``train`` the rest; ``all`` all."""
    if split not in STREAM_SPLITS:
        raise ValueError(f"a stream model's splits are {', '.join(STREAM_SPLITS)} (got {split!r})")
    ids, _ = read_stream(text_file_in(path), loaded.task_config.get("data", {}).get(
        "cache_dir", DEFAULT_TOKEN_CACHE), vocab=loaded.tgt_vocab)
    fraction = loaded.task_config.get("data", {}).get("val_fraction", 0.1)
    train, val = split_stream(len(ids), val_fraction=fraction)
    part = {"val": val, "train": train, "all": slice(0, len(ids))}[STREAM_SPLITS[split]]
    stop = min(part.stop, part.start + limit) if limit else part.stop
    return StreamSpan(ids, part.start, stop)


def evaluate_split(loaded: LoadedModel, data_dir: str, split: str, config: GenerationConfig, *,
                   limit: int = 0) -> dict:
    """Scores one split of an AG News-style folder (``{split}.csv`` or ``.csv.gz``), or, for
    ``heldout``, the rows the model's own training run held out of ``train``: the same share and
    seed (from the checkpoint) carve the same rows again, so a data folder without a test file
    still gives a held-out score."""
    from .data import HeadlineDataConfig, load_rows, load_texts, split_validation

    if is_stream(loaded):
        span = stream_split(loaded, data_dir, split, limit=limit)
        return {"split": split, **evaluate_stream(loaded, span)}
    data = saved_data_config(HeadlineDataConfig, loaded, keep=("field", "clean"),
                             data_dir=data_dir)
    if split == HELDOUT:
        saved = loaded.task_config.get("data", {})
        fraction, seed = saved.get("val_fraction", 0.1), saved.get("seed", 0)
        if not fraction:
            raise ValueError("this model held nothing out of its training file (val_fraction 0)")
        texts = [t for t, _ in split_validation(load_rows(data, "train"), fraction, seed)[1]]
    else:
        texts = load_texts(data, split)
    texts = texts[:limit] if limit else texts
    return {"split": split, "examples": len(texts), **evaluate_texts(loaded, texts, config)}
