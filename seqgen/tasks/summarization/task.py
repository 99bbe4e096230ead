"""Summarization's training spec: an article (AG News description) in, its headline out.

The shared bidirectional GRU encoder reads the article; the shared decoder attends over it and,
with ``decoder.copy`` (on by default), copies pieces of it: names and numbers come from the article
instead of being invented. One SentencePiece model serves both sides, so the embeddings are tied
and shared. Models are kept by greedy validation ROUGE-L; the final scores use beam search, beside
the lead baseline (the article's first 12 words). A trained model can then be fine-tuned
self-critically on the ROUGE-L of its own samples (``--self-critical MODEL.pt``), which trains for
the metric and the length it is judged by. Transfer: ``--pretrain=true`` trains a model to restore
the training rows' damaged text (``denoising.py``), and ``--init MODEL.pt`` fine-tunes it on the
pairs. How to run it: ``recipes/summarization.py``.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...decoding.generation import GenerationConfig
from ...io.checkpoint import load_trainable
from ...io.loaded import LoadedModel
from ...nn.decoder import DecoderConfig
from ...nn.encoders import EncoderConfig
from ...nn.model import EncoderDecoder, ModelConfig
from ...tokenizers import tokenizer_from_dict
from ...training.self_critical import SelfCritical, SelfCriticalConfig, self_critical_preset
from ...training.trainer import TrainConfig
from ...vocab import Vocab
from ..spec import Built, Task
from .adapter import SummarizationAdapter
from .data import SummarizationData, SummarizationDataConfig, lead
from .denoising import DenoisingData
from .inference import rouge_reward, score_summaries, summarize


@dataclass
class SummarizationConfig:
    data: SummarizationDataConfig = field(default_factory=SummarizationDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=256, hidden_dim=256, dropout=0.3),
        decoder=DecoderConfig(cell="gru", emb_dim=256, hidden_dim=512, dropout=0.3,
                              attention="general", bridge=True, tie_weights=True, copy=True),
        share_embeddings=True, label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=2e-3, max_epochs=100, max_minutes=4.0, warmup_steps=200, eval_every=400,
        clip_norm=1.0))
    run_dir: str = "runs/summarization"
    beam: int = 4  # the final scores' search, recorded in the model as its default
    length_penalty: float = 1.0
    no_repeat_ngram: int = 3
    val_metric_rows: int = 300  # validation articles summarised (greedily) at each evaluation
    pretrain: bool = False  # denoising pre-training on the training rows' own text
    init: str = ""  # start from this trained summarizer (weights, vocabulary, tokenizer)
    self_critical: str = ""  # a trained summarizer to fine-tune on its own samples' ROUGE-L
    scst: SelfCriticalConfig = field(default_factory=lambda: SelfCriticalConfig(max_len=30))


class Summarization(Task):
    """Headlines from article text (AG News descriptions -> titles, or any pairs)."""

    name = "summarization"
    position = 40
    config = SummarizationConfig
    adapter = SummarizationAdapter()
    monitor, mode = "val_rougeL", "max"
    presets = {"self-critical": self_critical_preset}
    shortcuts = {
        "--data-dir": ("data.data_dir", "AG News folder (train.csv[.gz]: class, title, "
                       "description)"),
        "--pairs": ("data.pairs", "TSV / CSV / JSONL file of (document, summary) rows"),
        "--pairs-format": ("data.pairs_format", "tsv, csv or jsonl (default: by extension)"),
        "--src-field": ("data.src_field", "the document's column: 0-based index or name"),
        "--tgt-field": ("data.tgt_field", "the summary's column: 0-based index or name"),
        "--src-file": ("data.src_file", "line-aligned documents"),
        "--tgt-file": ("data.tgt_file", "line-aligned summaries"),
        "--dataset": ("data.dataset", "Hugging Face dataset name (online), e.g. gigaword"),
        "--beam": ("beam", "beam size for the final scores (default 4)"),
        "--init": ("init", "start from this trained summarizer (a .pt file: its weights, "
                   "vocabulary and tokenizer), e.g. one pre-trained with --pretrain=true"),
        "--self-critical": ("self_critical", "fine-tune this trained summarizer (a .pt file) on "
                            "the ROUGE-L of its own samples (self-critical training; "
                            "--scst.samples=5)"),
    }

    def default_preset(self, config: SummarizationConfig) -> str | None:
        return "self-critical" if config.self_critical else None

    def dry_run(self, config: SummarizationConfig) -> None:
        config.data.limit, config.data.vocab_size, config.val_metric_rows = 300, 300, 20

    def build(self, config: SummarizationConfig, previous: dict | None) -> Built:
        if config.self_critical:
            return self.build_self_critical(config)
        if config.init:  # the model, vocabulary and tokenizer of a trained summarizer
            _, data, model = self.start_from(config.init, config.data)
        else:
            saved = {}
            if previous:  # resume with the vocabulary and tokenizer the run started with
                saved = dict(vocab=Vocab(previous["tgt_vocab"]),
                             tokenizer=tokenizer_from_dict(previous["tgt_tokenizer"]))
            data = SummarizationData(config.data, **saved)
            model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                                   tgt_vocab_size=len(data.vocab))
        train_data = DenoisingData(data, seed=config.data.seed) if config.pretrain else None
        origin = (f" (pre-training: {len(train_data)} damaged texts to restore)" if train_data
                  else "") + (f" from {config.init}" if config.init else "")
        decoding = {"beam": config.beam, "length_penalty": config.length_penalty,
                    "no_repeat_ngram": config.no_repeat_ngram}
        return Built(data, model, data.vocab, data.tokenizer, data.vocab, data.tokenizer,
                     {"data": asdict(config.data), "decoding": decoding, "carve": data.carve},
                     train_data=train_data,
                     summary=f"{len(data)} training pairs{origin}, {len(data.val)} validation, "
                     f"vocabulary {len(data.vocab)}, copy {config.model.decoder.copy}, "
                     f"{model.num_parameters():,} parameters")

    def start_from(self, path: str, data_config: SummarizationDataConfig
                   ) -> tuple[dict, SummarizationData, EncoderDecoder]:
        """A trained summarizer's checkpoint, the data read with its vocabulary and tokenizer
        (the validation rows carved again by the same seed), and its model ready to train."""
        start = load_trainable(path, self.name)
        loaded = LoadedModel.from_checkpoint(start)
        data = SummarizationData(data_config, vocab=loaded.tgt_vocab,
                                 tokenizer=loaded.tgt_tokenizer)
        return start, data, loaded.model.train()

    def build_self_critical(self, config: SummarizationConfig) -> Built:
        """The given summarizer's model, vocabulary and tokenizer (its validation rows carved
        again by the same seed), and the self-critical objective rewarded by ROUGE-L F1 against
        each training pair's summary."""
        start, data, model = self.start_from(config.self_critical, config.data)
        task_config = {**start["task_config"], "data": asdict(config.data), "carve": data.carve}
        reward = rouge_reward(data.train_targets, data.vocab, data.tokenizer)
        return Built(data, model, data.vocab, data.tokenizer, data.vocab, data.tokenizer,
                     task_config, objective=SelfCritical(reward, config.scst),
                     summary=f"self-critical from {config.self_critical}: {len(data)} training "
                     f"pairs x {config.scst.samples} samples, {len(data.val)} validation, "
                     f"{model.num_parameters():,} parameters")

    def metrics(self, built: Built, model: EncoderDecoder, config: SummarizationConfig) -> dict:
        rows = built.data.val[:config.val_metric_rows]
        scores = score_summaries(built.loaded(self.name, model), [d for d, _ in rows],
                                 [s for _, s in rows], GenerationConfig(max_len=30).searcher())
        return {"val_rougeL": scores["rougeL"], "val_rouge2": scores["rouge2"]}

    def samples(self, built: Built, model: EncoderDecoder, config: SummarizationConfig
                ) -> list[str]:
        rows = built.data.val[:3]
        loaded = built.loaded(self.name, model)
        hyps = summarize(loaded, [d for d, _ in rows], GenerationConfig(max_len=30).searcher())
        return [f"{loaded.decode(h[0].tokens)}  |  {s}" for h, (_, s) in zip(hyps, rows)]

    def final(self, built, loaded, config, *, dry_run):
        search = GenerationConfig(beam=config.beam, length_penalty=config.length_penalty,
                                  no_repeat_ngram=config.no_repeat_ngram, max_len=30)
        rows = built.data.val
        scores = score_summaries(loaded, [d for d, _ in rows], [s for _, s in rows],
                                 search.searcher())
        shown = random.Random(0).sample(rows, min(10, len(rows)))  # by a fixed seed, not by hand
        hyps = summarize(loaded, [d for d, _ in shown], search.searcher())
        lines = [f"{loaded.decode(h[0].tokens)}  |  {s}  |  lead: {lead(d)}"
                 for h, (d, s) in zip(hyps, shown)]
        return [*lines, json.dumps({"split": "validation", **scores, **search.given()})]

    def hint(self, built: Built, path: Path) -> str:
        return f"seqgen summarize --ckpt {path} \"{built.data.val[0][0][:80]}\""


TASK = Summarization()
