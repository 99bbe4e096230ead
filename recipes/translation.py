"""Translation recipe: a Multi30k encoder-decoder (bidirectional GRU encoder, attending GRU decoder).

    python recipes/translation.py                      # bundled de-en sample, a few minutes
    python recipes/translation.py --data-dir ../shared/data/multi30k --src de --tgt en --minutes 60
    python recipes/translation.py --dataset bentrevett/multi30k   # Hugging Face, when online
    python recipes/translation.py --dry-run            # a few steps, for CI

The encoder folds the source sentence into memory and a summary; the shared decoder starts from the
summary (through its bridge) and attends over the memory while it writes the translation. Models
are chosen on validation BLEU (greedy during training); the final scores use beam search.
Config overrides: --model.decoder.hidden_dim=256, --data.tokenizer=word, --train.lr=1e-3.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from seqgen.checkpoint import (LoadedModel, atomic_save, average_weights, export_checkpoint,
                               load_checkpoint, make_checkpoint)
from seqgen.data.translation import TranslationData, TranslationDataConfig, split_file
from seqgen.decoder import DecoderConfig
from seqgen.encoders import EncoderConfig
from seqgen.model import EncoderDecoder, ModelConfig
from seqgen.runs import (apply_run_flags, parse_args, previous_run, recipe_parser,
                         setup_logging, train)
from seqgen.tasks.translation import evaluate_texts, greedy_bleu, translate_texts
from seqgen.tokenizers import tokenizer_from_dict
from seqgen.train import TrainConfig
from seqgen.vocab import Vocab


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
    test_split: str = "test_2016_flickr"


def build(config: TranslationConfig, previous: dict | None = None
          ) -> tuple[TranslationData, EncoderDecoder]:
    saved = {}
    if previous:  # resume with the vocabularies and tokenizers the run started with
        saved = dict(src_vocab=Vocab(previous["src_vocab"]), tgt_vocab=Vocab(previous["tgt_vocab"]),
                     src_tokenizer=tokenizer_from_dict(previous["src_tokenizer"]),
                     tgt_tokenizer=tokenizer_from_dict(previous["tgt_tokenizer"]))
    data = TranslationData(config.data, **saved)
    if not data.joint:
        config.model.share_embeddings = False
    model = EncoderDecoder(config.model, src_vocab_size=len(data.src_vocab),
                           tgt_vocab_size=len(data.tgt_vocab))
    return data, model


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__)
    parser.add_argument("--data-dir", help="folder with train/val/test_2016_flickr.{lang}[.gz]")
    parser.add_argument("--dataset", help="Hugging Face dataset name, e.g. bentrevett/multi30k")
    parser.add_argument("--src", help="source language code (default de)")
    parser.add_argument("--tgt", help="target language code (default en)")
    parser.add_argument("--beam", type=int, help="beam size for the final scores (default 5)")
    config = TranslationConfig()
    args, config = parse_args(parser, argv, config)
    setup_logging()
    for flag in ("data_dir", "dataset", "src", "tgt"):
        if getattr(args, flag):
            setattr(config.data, flag, getattr(args, flag))
    apply_run_flags(args, config)
    if args.beam:
        config.beam = args.beam
    if args.dry_run:
        config.data.limit, config.data.val_limit, config.data.vocab_size = 300, 40, 500
        config.train.max_steps, config.train.eval_every, config.train.max_minutes = 6, 3, 0
        config.run_dir = args.run_dir or tempfile.mkdtemp(prefix="seqgen-dry-")

    previous = previous_run(config.run_dir, resume=not args.no_resume and not args.dry_run)
    try:
        data, model = build(config, previous)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(data)} training pairs ({data.dropped} too long dropped), {len(data.val_src)} "
          f"validation, vocabulary {len(data.src_vocab)}/{len(data.tgt_vocab)}, "
          f"{model.num_parameters():,} parameters", file=sys.stderr)

    def loaded_of(m: EncoderDecoder) -> LoadedModel:
        return LoadedModel(m, "translation", data.tgt_vocab, data.tgt_tokenizer, data.src_vocab,
                           data.src_tokenizer, {"data": vars(config.data)})

    def payload(m: EncoderDecoder, trainer_state: dict | None) -> dict:
        return make_checkpoint(m, task="translation", tgt_vocab=data.tgt_vocab,
                               tgt_tokenizer=data.tgt_tokenizer, src_vocab=data.src_vocab,
                               src_tokenizer=data.src_tokenizer,
                               task_config={"data": vars(config.data)}, trainer_state=trainer_state)

    def val_metrics(m: EncoderDecoder) -> dict:
        return {"val_bleu": greedy_bleu(loaded_of(m), data.val_src, data.val_tgt)}

    def samples(m: EncoderDecoder) -> list[str]:
        hyps = translate_texts(loaded_of(m), data.val_src[:3], beam=1)
        return [f"{s}  ->  {h}" for s, h in zip(data.val_src[:3], hyps)]

    trainer = train(model=model, data=data, config=config.train, run_dir=config.run_dir,
                    payload=payload, resume_from=previous, metric_fn=val_metrics,
                    sample_fn=samples, monitor="val_bleu", mode="max",
                    keep=config.average_last, full_config=config, quiet=args.quiet)
    if not trainer.is_main:  # under torchrun, rank 0 alone writes and reports
        return 0

    run_dir = Path(config.run_dir)
    final = pick_final(run_dir, config, data, loaded_of)
    export_checkpoint(final, run_dir / "model.pt", half=False)
    loaded = LoadedModel.from_file(run_dir / "model.pt")
    results = {"split": config.data.val_split,
               **evaluate_texts(loaded, data.val_src, data.val_tgt, beam=config.beam,
                                length_penalty=config.length_penalty)}
    print(json.dumps(results, ensure_ascii=False))
    if not config.data.dataset and not args.dry_run:
        try:
            split_file(config.data.data_dir, config.test_split, config.data.src)
        except FileNotFoundError:
            pass
        else:
            from seqgen.tasks.translation import evaluate_split
            print(json.dumps(evaluate_split(loaded, config.data.data_dir, config.test_split,
                                            beam=config.beam), ensure_ascii=False))
    print(f"model saved to {run_dir / 'model.pt'}; try: seqgen translate --ckpt "
          f"{run_dir / 'model.pt'} \"{data.val_src[0]}\"", file=sys.stderr)
    return 0


def pick_final(run_dir: Path, config: TranslationConfig, data: TranslationData,
               loaded_of) -> Path:
    """best.pt, or the average of the last N checkpoints when that scores higher on validation."""
    steps = sorted(run_dir.glob("step-*.pt"))[-config.average_last:] if config.average_last else []
    if len(steps) < 2:
        return run_dir / "best.pt"
    averaged = {**load_checkpoint(steps[-1]), "model": average_weights(steps), "trainer": None}
    atomic_save(averaged, run_dir / "averaged.pt")
    scores = {}
    for path in (run_dir / "best.pt", run_dir / "averaged.pt"):
        scores[path] = greedy_bleu(LoadedModel.from_file(path), data.val_src, data.val_tgt)
    print("validation BLEU (greedy): " + ", ".join(f"{p.name} {s}" for p, s in scores.items()),
          file=sys.stderr)
    return max(scores, key=scores.get)


if __name__ == "__main__":
    sys.exit(main())
