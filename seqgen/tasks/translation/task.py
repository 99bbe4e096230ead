"""The translation task's training spec: its default config (what ``recipes/translation.py`` and
``seqgen train translation`` run) and how data and model are built from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ...decoding.generation import GenerationConfig
from ...decoding.shortlist import Shortlist
from ...io.checkpoint import load_checkpoint
from ...io.fileio import atomic_save
from ...io.loaded import LoadedModel, vocabularies
from ...nn.decoder import DecoderConfig
from ...nn.encoders import EncoderConfig
from ...nn.model import EncoderDecoder, ModelConfig
from ...training.config import TrainConfig
from ...training.runfiles import average_weights, run_checkpoints
from ...training.self_critical import SelfCriticalConfig, self_critical_preset
from ..fine_tuning import self_critical_built, trained_start
from ..session import Session
from ..spec import Built, Report, Task, ignore
from .adapter import TranslationAdapter
from .data import TranslationData, TranslationDataConfig
from .inference import bleu_reward, evaluate_split, translate_texts
from .splits import split_file

GREEDY = GenerationConfig(beam=1)  # training-time scores: quick, for model selection


@dataclass
class TranslationConfig:
    data: TranslationDataConfig = field(default_factory=TranslationDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=256, hidden_dim=256, dropout=0.3),
        decoder=DecoderConfig(cell="gru", emb_dim=256, hidden_dim=512, dropout=0.3,
                              attention="general", bridge=True, tie_weights=True),
        share_embeddings=True, label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=2e-3, max_epochs=100, max_minutes=4.0, warmup_steps=200, eval_every=500, clip_norm=1.0))
    run_dir: str = "runs/translation"
    beam: int = 5
    length_penalty: float = 1.0
    average_last: int = 0  # average the last N evaluation checkpoints; kept if better on val
    shortlist: bool = True  # learn candidate target words per source word (IBM Model 1), saved
    # with the model: beam search then scores only a batch's candidates (seqgen.decoding.shortlist)
    test_split: str = "test_2016_flickr"
    self_critical: str = ""  # a trained translator to fine-tune on its own samples' sentence BLEU
    scst: SelfCriticalConfig = field(default_factory=lambda: SelfCriticalConfig(max_len=80))


class Translation(Task):
    """Sentence translation (Multi30k, a pairs file or a Hugging Face data set): a GRU encoder,
    the shared attending decoder, scored with sacreBLEU (recipes/translation.py shows how)."""

    name = "translation"
    position = 20
    adapter = TranslationAdapter()
    config = TranslationConfig
    monitor, mode = "val_bleu", "max"
    presets = {"self-critical": self_critical_preset}
    shortcuts = {
        "--data-dir": ("data.data_dir", "folder with train/val/test_2016_flickr.{lang}[.gz]"),
        "--pairs": ("data.pairs", "a TSV / CSV (with header) / JSONL file of pairs, plain or .gz"),
        "--pairs-format": ("data.pairs_format", "tsv, csv or jsonl (default: by extension)"),
        "--src-field": ("data.src_field", "source column of --pairs: 0-based index or header/key "
                        "(default 0)"),
        "--tgt-field": ("data.tgt_field", "target column of --pairs (default 1)"),
        "--val-pairs": ("data.val_pairs", "validation pairs file (default: carved from --pairs)"),
        "--test-pairs": ("data.test_pairs", "test pairs file (default: carved from --pairs)"),
        "--cache-dir": ("data.cache_dir", "token cache folder (default ~/.cache/seqgen/tokens)"),
        "--dataset": ("data.dataset", "Hugging Face dataset name, e.g. bentrevett/multi30k"),
        "--src": ("data.src", "source language code (default de)"),
        "--tgt": ("data.tgt", "target language code (default en)"),
        "--beam": ("beam", "beam size for the final scores (default 5)"),
        "--self-critical": ("self_critical", "fine-tune this trained translator (a .pt file) on "
                            "the sentence BLEU of its own samples (self-critical training; "
                            "--scst.samples=5)"),
    }

    def default_preset(self, config: TranslationConfig) -> str | None:
        return "self-critical" if config.self_critical else None

    def dry_run(self, config: TranslationConfig) -> None:
        config.data.limit, config.data.val_limit, config.data.vocab_size = 300, 40, 500
        config.data.val_max = min(config.data.val_max or 40, 40)

    def build(self, config: TranslationConfig, previous: dict | None) -> Built:
        if config.self_critical:
            return self.build_self_critical(config)
        # resume with the vocabularies and tokenizers the run started with
        data = TranslationData(config.data, **(vocabularies(previous) if previous else {}))
        # word level has two vocabularies, so nothing to share
        model_config = replace(config.model, share_embeddings=config.model.share_embeddings
                               and data.joint)
        model = EncoderDecoder(model_config, src_vocab_size=len(data.src_vocab),
                               tgt_vocab_size=len(data.tgt_vocab))
        decoding = {"beam": config.beam, "length_penalty": config.length_penalty}
        shortlist = None
        if config.shortlist:
            shortlist = (Shortlist.from_dict(previous["shortlist"])
                         if previous and previous.get("shortlist") else
                         Shortlist.learn(data.train_src_ids, data.train_tgt_ids,
                                         src_vocab_size=len(data.src_vocab),
                                         tgt_vocab_size=len(data.tgt_vocab),
                                         max_pairs=config.data.shortlist_pairs))
        task_config = {"data": asdict(config.data), "decoding": decoding, "carve": data.carve}
        return Built(data, model, data.tgt_vocab, data.tgt_tokenizer, data.src_vocab,
                     data.src_tokenizer, task_config,
                     summary=f"{len(data)} training pairs ({data.dropped} too long dropped), "
                     f"{len(data.val_src)} validation, vocabulary {len(data.src_vocab)}/"
                     f"{len(data.tgt_vocab)}, {model.num_parameters():,} parameters",
                     shortlist=shortlist)

    def build_self_critical(self, config: TranslationConfig) -> Built:
        """The given translator's model, vocabularies, tokenizers and shortlist, and the
        self-critical objective rewarded by sentence BLEU against each pair's reference."""
        ckpt, loaded = trained_start(config.self_critical, self.name)
        data = TranslationData(config.data, src_vocab=loaded.src_vocab, tgt_vocab=loaded.tgt_vocab,
                               src_tokenizer=loaded.src_tokenizer,
                               tgt_tokenizer=loaded.tgt_tokenizer)
        return self_critical_built(config.self_critical, ckpt, loaded, data,
                                   data_config=config.data, scst=config.scst,
                                   reward=bleu_reward(data.train_tgt, loaded),
                                   rows=f"{len(data)} training pairs", val=len(data.val_src))

    def metrics(self, built: Built, model: EncoderDecoder, config: TranslationConfig) -> dict:
        scores = self.validation_scores(built.loaded(self.name, model), built, GREEDY)
        return {"val_bleu": scores["bleu"]}

    def validation_scores(self, loaded: LoadedModel, built: Built,
                          caller: GenerationConfig | None = None) -> dict:
        """The adapter's scores on the run's validation pairs, searched with the model's own
        settings under ``caller``'s (greedy while training: quick, for model selection)."""
        data = built.data
        return self.adapter.score(Session(loaded), (data.val_src, data.val_tgt),
                                  self.adapter.settings(loaded, caller))

    def samples(self, built: Built, model: EncoderDecoder, config: TranslationConfig) -> list[str]:
        sources, loaded = built.data.val_src[:3], built.loaded(self.name, model)
        hyps = translate_texts(loaded, sources, self.adapter.settings(loaded, GREEDY))
        return [f"{s}  ->  {h}" for s, h in zip(sources, hyps)]

    def keep(self, config: TranslationConfig) -> int:
        return config.average_last

    def final_checkpoint(self, run_dir: Path, built: Built, config: TranslationConfig, *,
                         report: Report = ignore) -> Path:
        """best.pt, or the average of the last N checkpoints when that scores higher on val
        (both greedy BLEU scores are reported)."""
        steps = run_checkpoints(run_dir)[-config.average_last:] if config.average_last else []
        best = super().final_checkpoint(run_dir, built, config)
        if len(steps) < 2:
            return best
        averaged = {**load_checkpoint(steps[-1]), "model": average_weights(steps), "trainer": None}
        atomic_save(averaged, run_dir / "averaged.pt")
        scores = {path: self.validation_scores(LoadedModel.from_file(path), built, GREEDY)["bleu"]
                  for path in (best, run_dir / "averaged.pt")}
        report({f"val_bleu_{path.stem}": score for path, score in scores.items()})
        return max(scores, key=scores.get)

    def final(self, built, loaded, config, *, dry_run):
        data = built.data
        lines = [json.dumps({"split": config.data.val_split,
                             **self.validation_scores(loaded, built)}, ensure_ascii=False)]
        settings = self.adapter.settings(loaded)
        if data.test_src:  # given with --test-pairs, or carved from --pairs
            lines.append(json.dumps({"split": "test", **self.adapter.score(
                Session(loaded), (data.test_src, data.test_tgt), settings)}, ensure_ascii=False))
        elif not (config.data.dataset or config.data.pairs or dry_run) and _has_split(config):
            lines.append(json.dumps(evaluate_split(loaded, config.data.data_dir, config.test_split,
                                                   settings), ensure_ascii=False))
        return lines

    def hint(self, built: Built, path: Path) -> str:
        return f"seqgen translate --ckpt {path} \"{built.data.val_src[0]}\""


def _has_split(config: TranslationConfig) -> bool:
    try:
        split_file(config.data.data_dir, config.test_split, config.data.src)
    except FileNotFoundError:
        return False
    return True


TASK = Translation()
