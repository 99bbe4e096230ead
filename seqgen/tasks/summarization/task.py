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
from ...io.loaded import LoadedModel, vocabularies
from ...nn.decoder import DecoderConfig
from ...nn.encoders import EncoderConfig
from ...nn.model import EncoderDecoder, ModelConfig
from ...training.config import TrainConfig
from ...training.self_critical import SelfCriticalConfig, self_critical_preset
from ..fine_tuning import self_critical_built, trained_start
from ..session import Session
from ..spec import Built, Task
from .adapter import SummarizationAdapter
from .data import SummarizationData, SummarizationDataConfig, lead
from .denoising import DenoisingData
from .inference import rouge_reward, summarize

# training-time scores: greedy and unblocked, quick, for model selection
GREEDY = GenerationConfig(beam=1, no_repeat_ngram=0)


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
            ckpt, loaded = trained_start(config.init, self.name)
            data, model = self.read(config.data, vocabularies(ckpt)), loaded.model
        else:  # a resumed run keeps the vocabulary and tokenizer it started with
            data = self.read(config.data, vocabularies(previous) if previous else None)
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

    @staticmethod
    def read(data_config: SummarizationDataConfig, vocabs: dict | None) -> SummarizationData:
        """The data, read with a checkpoint's vocabulary and tokenizer when given
        (:func:`~seqgen.io.loaded.vocabularies`; the validation rows are carved again by the same
        seed), else with new ones learnt from it."""
        if vocabs is None:
            return SummarizationData(data_config)
        return SummarizationData(data_config, vocab=vocabs["tgt_vocab"],
                                 tokenizer=vocabs["tgt_tokenizer"])

    def build_self_critical(self, config: SummarizationConfig) -> Built:
        """The given summarizer's model, vocabulary and tokenizer (its validation rows carved
        again by the same seed), and the self-critical objective rewarded by ROUGE-L F1 against
        each training pair's summary."""
        ckpt, loaded = trained_start(config.self_critical, self.name)
        data = self.read(config.data, vocabularies(ckpt))
        return self_critical_built(
            config.self_critical, ckpt, loaded, data, data_config=config.data,
            scst=config.scst, reward=rouge_reward(data.train_targets, data.vocab, data.tokenizer),
            rows=f"{len(data)} training pairs", val=len(data.val),
            task_config={"carve": data.carve})

    def metrics(self, built: Built, model: EncoderDecoder, config: SummarizationConfig) -> dict:
        rows = built.data.val[:config.val_metric_rows]
        scores = self.validation_scores(built.loaded(self.name, model), rows, GREEDY)
        return {"val_rougeL": scores["rougeL"], "val_rouge2": scores["rouge2"]}

    def validation_scores(self, loaded: LoadedModel, rows: list[tuple[str, str]],
                          caller: GenerationConfig | None = None) -> dict:
        """The adapter's scores on (document, summary) rows, searched with the model's own
        settings under ``caller``'s."""
        return self.adapter.score(Session(loaded), ([d for d, _ in rows], [s for _, s in rows]),
                                  self.adapter.settings(loaded, caller))

    def samples(self, built: Built, model: EncoderDecoder, config: SummarizationConfig
                ) -> list[str]:
        rows, loaded = built.data.val[:3], built.loaded(self.name, model)
        hyps = summarize(loaded, [d for d, _ in rows], self.adapter.settings(loaded, GREEDY))
        return [f"{loaded.decode(h[0].tokens)}  |  {s}" for h, (_, s) in zip(hyps, rows)]

    def final(self, built, loaded, config, *, dry_run):
        rows, settings = built.data.val, self.adapter.settings(loaded)
        scores = self.validation_scores(loaded, rows)
        shown = random.Random(0).sample(rows, min(10, len(rows)))  # by a fixed seed, not by hand
        hyps = summarize(loaded, [d for d, _ in shown], settings)
        lines = [f"{loaded.decode(h[0].tokens)}  |  {s}  |  lead: {lead(d)}"
                 for h, (d, s) in zip(hyps, shown)]
        return [*lines, json.dumps({"split": "validation", **scores, "max_len": settings.max_len})]

    def hint(self, built: Built, path: Path) -> str:
        return f"seqgen summarize --ckpt {path} \"{built.data.val[0][0][:80]}\""


TASK = Summarization()
