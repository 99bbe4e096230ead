"""Captioning recipe: CNN grid features initialise and are attended to by the shared decoder.

    python recipes/captioning.py                         # synthetic shapes set, about a minute
    python recipes/captioning.py --data-dir ../shared/data/flickr8k --minutes 35
    python recipes/captioning.py --images DIR --captions captions.csv   # other layouts
    python recipes/captioning.py --dry-run               # a few steps, for CI

Show, Attend and Tell style: a frozen CNN (EfficientNet-Lite0 for photos, a raw patch grid for the
synthetic set) turns each image into a grid of feature vectors, computed once and cached on disk;
their mean starts the decoder through its bridge and the grid is the memory it attends over while
it writes the caption word by word. Models are chosen on dev BLEU-4 (greedy during training).
Config overrides: --model.decoder.hidden_dim=256, --data.min_freq=5, --train.lr=1e-3.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from seqgen.checkpoint import LoadedModel, export_checkpoint, make_checkpoint
from seqgen.data.captions import CaptionData, CaptionDataConfig
from seqgen.decoder import DecoderConfig
from seqgen.encoders import EncoderConfig
from seqgen.model import EncoderDecoder, ModelConfig
from seqgen.runs import (apply_run_flags, parse_args, previous_run, recipe_parser,
                         setup_logging, train)
from seqgen.search import build_searcher, generate
from seqgen.tasks.captioning import evaluate_batches
from seqgen.train import TrainConfig
from seqgen.vocab import Vocab


@dataclass
class CaptioningConfig:
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        encoder=EncoderConfig(kind="features", hidden_dim=512, dropout=0.3),
        decoder=DecoderConfig(cell="lstm", emb_dim=256, hidden_dim=512, dropout=0.4,
                              attention="general", bridge=True, tie_weights=True),
        label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=2e-3, max_epochs=200, max_minutes=1.5, warmup_steps=100, eval_every=300))
    run_dir: str = "runs/captioning"
    beam: int = 3


def synthetic_model() -> ModelConfig:
    """The shapes set has 19 words and 64 patches: a small model learns it in about a minute."""
    return ModelConfig(encoder=EncoderConfig(kind="features", hidden_dim=128),
                       decoder=DecoderConfig(cell="lstm", emb_dim=64, hidden_dim=192,
                                             attention="general", bridge=True, input_feeding=True))


def build(config: CaptioningConfig, previous: dict | None = None
          ) -> tuple[CaptionData, EncoderDecoder]:
    image_encoder = config.model.encoder.kind == "image"  # the model fine-tunes its own CNN
    data = CaptionData(config.data, vocab=Vocab(previous["tgt_vocab"]) if previous else None,
                       pixels=image_encoder)
    config.model.encoder.feature_dim = data.backbone.feature_dim
    if image_encoder:
        config.model.encoder.backbone = data.backbone.name
        config.model.encoder.image_size = data.backbone.image_size
    model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                           tgt_vocab_size=len(data.vocab))
    return data, model


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__)
    parser.add_argument("--data-dir", help="Flickr8k-style folder (images/, Flickr8k.token.txt, "
                        "Flickr_8k.*Images.txt)")
    parser.add_argument("--images", help="image folder (other layouts)")
    parser.add_argument("--captions", help="captions file: Flickr8k token format or CSV image,caption")
    parser.add_argument("--train-split", help="list of training image file names")
    parser.add_argument("--val-split", help="list of validation image file names")
    parser.add_argument("--dataset", help="Hugging Face dataset name (online)")
    parser.add_argument("--backbone", help="efficientnet_lite0, resnet18, resnet50, "
                        "mobilenet_v3_large or pixels")
    parser.add_argument("--cache-dir", help="feature cache folder (default ~/.cache/seqgen/features)")
    parser.add_argument("--fine-tune", type=int, metavar="N",
                        help="run the CNN inside the model and fine-tune its last N blocks "
                        "(no feature cache; much slower)")
    parser.add_argument("--beam", type=int, help="beam size for the final scores (default 3)")
    config = CaptioningConfig()
    args, config = parse_args(parser, argv, config)
    setup_logging()
    for flag in ("data_dir", "images", "captions", "train_split", "val_split", "dataset",
                 "backbone", "cache_dir"):
        if getattr(args, flag):
            setattr(config.data, flag, getattr(args, flag))
    if not config.data.synthetic and argv_lacks(argv, "--data.min_freq"):
        config.data.min_freq = 5  # real captions: rare words become UNK
    if config.data.synthetic and argv_lacks(argv, "--model."):
        config.model = synthetic_model()
    apply_run_flags(args, config)
    if args.fine_tune:
        config.model.encoder.kind, config.model.encoder.trainable_blocks = "image", args.fine_tune
    if args.beam:
        config.beam = args.beam
    if args.dry_run:
        config.data.synthetic_train, config.data.val_limit = 200, 30
        config.data.synthetic_dir = tempfile.mkdtemp(prefix="seqgen-shapes-")
        config.data.cache_dir = str(Path(config.data.synthetic_dir) / "cache")
        config.train.max_steps, config.train.eval_every, config.train.max_minutes = 6, 3, 0
        config.run_dir = args.run_dir or tempfile.mkdtemp(prefix="seqgen-dry-")

    previous = previous_run(config.run_dir, resume=not args.no_resume and not args.dry_run)
    try:
        data, model = build(config, previous)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(data.train.paths)} training images ({len(data)} captions), {len(data.val.paths)} "
          f"validation, {len(data.vocab)} words, backbone {data.backbone.name}, "
          f"{model.num_parameters():,} parameters", file=sys.stderr)
    task_config = {"data": vars(config.data),
                   "backbone": {"name": data.backbone.name, "image_size": data.backbone.image_size}}

    def loaded_of(m: EncoderDecoder) -> LoadedModel:
        return LoadedModel(m, "captioning", data.vocab, data.tokenizer, task_config=task_config)

    def payload(m: EncoderDecoder, trainer_state: dict | None) -> dict:
        return make_checkpoint(m, task="captioning", tgt_vocab=data.vocab,
                               tgt_tokenizer=data.tokenizer, task_config=task_config,
                               trainer_state=trainer_state)

    def val_metrics(m: EncoderDecoder) -> dict:
        scores = evaluate_batches(loaded_of(m), data.image_batches("val"), beam=1)
        return {"val_bleu4": scores["bleu4"], "val_exact": scores["exact_match"]}

    def samples(m: EncoderDecoder) -> list[str]:
        batch, refs = next(data.image_batches("val", batch_size=3))
        hyps = generate(m, batch.to(m.device), build_searcher(max_len=30))
        return [f"{m_.decode(h[0].tokens)}  |  {r[0]}" for h, r, m_ in
                zip(hyps, refs, [loaded_of(m)] * 3)]

    trainer = train(model=model, data=data, config=config.train, run_dir=config.run_dir,
                    payload=payload, resume_from=previous, metric_fn=val_metrics,
                    sample_fn=samples, monitor="val_bleu4", mode="max", full_config=config,
                    quiet=args.quiet)
    if not trainer.is_main:  # under torchrun, rank 0 alone writes and reports
        return 0

    run_dir = Path(config.run_dir)
    export_checkpoint(run_dir / "best.pt", run_dir / "model.pt", half=False)
    loaded = LoadedModel.from_file(run_dir / "model.pt")
    results = evaluate_batches(loaded, data.image_batches("val"), beam=config.beam)
    print(json.dumps({"split": "val", **results, "beam": config.beam}))
    example = data.val.paths[0] if data.val.paths else "photo.jpg"
    print(f"model saved to {run_dir / 'model.pt'}; try: seqgen caption --ckpt "
          f"{run_dir / 'model.pt'} {example}", file=sys.stderr)
    return 0


def argv_lacks(argv: list[str] | None, key: str) -> bool:
    return not any(a.startswith(key) for a in (sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
