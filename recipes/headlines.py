"""Headlines recipe: a character-level (or word-level) news-headline generator on AG News titles.

    python recipes/headlines.py                       # bundled sample, ~3 minutes on 2 cores
    python recipes/headlines.py --data-dir ../shared/data/ag_news --train.max_steps=12000  # ~20 min
    python recipes/headlines.py --level word --text-file book.txt
    python recipes/headlines.py --dry-run             # a few steps, for CI

The decoder has no encoder: the prompt is run through it once to build the state, then text is
generated one symbol at a time from that state. Config overrides: --model.decoder.hidden_dim=256.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from seqgen.checkpoint import LoadedModel, export_checkpoint, load_checkpoint, make_checkpoint
from seqgen.data.headlines import HeadlineData, HeadlineDataConfig
from seqgen.decoder import DecoderConfig
from seqgen.model import EncoderDecoder, ModelConfig
from seqgen.runs import (apply_run_flags, parse_args, previous_run, recipe_parser,
                         setup_logging, train)
from seqgen.tasks.headlines import PROMPTS, TEMPERATURES, evaluate_texts, sample_table
from seqgen.tokenizers import tokenizer_from_dict
from seqgen.train import TrainConfig
from seqgen.vocab import Vocab


@dataclass
class HeadlinesConfig:
    data: HeadlineDataConfig = field(default_factory=HeadlineDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(decoder=DecoderConfig(
        cell="lstm", emb_dim=64, hidden_dim=512, num_layers=1, dropout=0.3)))
    # steps, not minutes, define the run: a busy machine takes longer but gets the same numbers
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=8e-3, max_epochs=1000, max_steps=1600, warmup_steps=50, eval_every=100))
    run_dir: str = "runs/headlines"
    sample_every: int = 1  # show samples after every N-th evaluation (0: never)
    sample_temperatures: tuple[float, ...] = (0.5, 1.0)


def build(config: HeadlinesConfig, *, vocab: Vocab | None = None, tokenizer=None
          ) -> tuple[HeadlineData, EncoderDecoder]:
    data = HeadlineData(config.data, vocab=vocab, tokenizer=tokenizer)
    model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                           tgt_vocab_size=len(data.vocab))
    return data, model


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__)
    parser.add_argument("--data-dir", help="folder with AG News train.csv / test.csv (or .gz)")
    parser.add_argument("--dataset", help="Hugging Face dataset name, e.g. sh0416/ag_news")
    parser.add_argument("--text-file", help="plain-text file, one example per line")
    parser.add_argument("--level", choices=["char", "word"], help="symbol level (default char)")
    config = HeadlinesConfig()
    args, config = parse_args(parser, argv, config)
    setup_logging()
    for flag, key in (("data_dir", "data_dir"), ("dataset", "dataset"), ("text_file", "text_file"),
                      ("level", "level")):
        if getattr(args, flag):
            setattr(config.data, key, getattr(args, flag))
    apply_run_flags(args, config)
    if args.dry_run:
        config.data.limit, config.data.val_fraction = 256, 0.02
        config.train.max_steps, config.train.eval_every, config.train.max_minutes = 6, 3, 0
        config.run_dir = args.run_dir or tempfile.mkdtemp(prefix="seqgen-dry-")

    previous = previous_run(config.run_dir, resume=not args.no_resume and not args.dry_run)
    try:
        data, model = build(config,
                            vocab=Vocab(previous["tgt_vocab"]) if previous else None,
                            tokenizer=tokenizer_from_dict(previous["tgt_tokenizer"])
                            if previous else None)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(data.train_texts)} training / {len(data.val_texts)} validation examples, "
          f"{len(data.vocab)} symbols, {model.num_parameters():,} parameters", file=sys.stderr)

    def payload(m: EncoderDecoder, trainer_state: dict | None) -> dict:
        return make_checkpoint(m, task="headlines", tgt_vocab=data.vocab,
                               tgt_tokenizer=data.tokenizer, task_config={"data": vars(config.data)},
                               trainer_state=trainer_state)

    def samples(m: EncoderDecoder) -> list[str]:
        loaded = LoadedModel(m, "headlines", data.vocab, data.tokenizer)
        return sample_table(loaded, PROMPTS[:3], config.sample_temperatures, max_len=80)

    trainer = train(model=model, data=data, config=config.train, run_dir=config.run_dir,
                    payload=payload, resume_from=previous, full_config=config, quiet=args.quiet,
                    sample_fn=samples if config.sample_every else None,
                    sample_every=config.sample_every)
    if not trainer.is_main:  # under torchrun, rank 0 alone writes and reports
        return 0

    run_dir = Path(config.run_dir)
    export_checkpoint(run_dir / "best.pt", run_dir / "model.pt", half=False)
    loaded = LoadedModel.from_checkpoint(load_checkpoint(run_dir / "model.pt"))
    for line in sample_table(loaded, PROMPTS, TEMPERATURES, max_len=30 if args.dry_run else 100):
        print(line)
    metrics = evaluate_texts(loaded, data.val_texts, n_prompts=10 if args.dry_run else 100)
    print(json.dumps({"split": "validation", **metrics}))
    print(f"model saved to {run_dir / 'model.pt'}; try: seqgen generate --ckpt "
          f"{run_dir / 'model.pt'} --prompt 'Today ' --temperature 0.8 -n 5", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
