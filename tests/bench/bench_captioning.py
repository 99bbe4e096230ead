"""Benchmark: the Flickr8k captioner's quality and speed.

    python tests/bench/bench_captioning.py --ckpt assets/models/flickr8k-lite0.pt
    python tests/bench/bench_captioning.py --quick     # under 3 minutes: speed figures only

Figures (on ../shared/data/flickr8k, 6,000 train / 1,000 dev images, 5 captions each):
1. dev BLEU-1..4 (sacreBLEU, lower-cased, 5 references) and CIDEr-D with beam 3, for ``--ckpt``;
2. captioning throughput in images per second, batched, from JPEG files: decoding, resizing, the
   EfficientNet-Lite0 CNN and beam-3 search all included;
3. the feature cache's effect: seconds per training epoch when batches read cached grid features
   vs. when every batch runs the frozen CNN on its images (measured on a few batches, scaled to
   the 30,000 captions of an epoch);
4. ``seqgen export --int8`` (int8 decoder; the CNN as measured: a static int8 EfficientNet-Lite0
   made with torch's FX quantisation ran 0.32x as fast here and cost 2.75 BLEU-4) against the
   float model: images/s and dev BLEU-4 on the same photos.
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import machine, machine_line
from PIL import Image

from seqgen.data.batch import Batch, target_pair
from seqgen.data.captions import read_captions, read_split
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.loaded import LoadedModel
from seqgen.nn.ensemble import Ensemble
from seqgen.nn.int8 import is_quantized
from seqgen.pipeline import Pipeline
from seqgen.tasks.captioning.features import FeatureCache, extract
from seqgen.tasks.captioning.inference import backbone_of, evaluation_batches
from seqgen.tasks.captioning.photo_sets import caption_set, flickr_layout
from seqgen.training.runfiles import run_minutes

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "flickr8k"


def images_per_second(pipe: Pipeline, paths: list[str], beam: int = 3) -> float:
    """JPEG files to captions through the inference API: decoding, the CNN and beam search (each
    in the precision the pipeline measured for it)."""
    options = GenerationConfig(beam=beam, max_len=40)
    # warm-up at the measured batch size: the one-off precision timing, and oneDNN's kernels,
    # which are prepared per input shape
    pipe.predict(paths[:32], options, batch_size=32)
    start = time.perf_counter()
    pipe.predict(paths, options, batch_size=32)
    return len(paths) / (time.perf_counter() - start)


def upscaled_photos(paths: list[str], folder: Path, size: tuple[int, int] = (2048, 1536)
                    ) -> list[str]:
    """Full-size camera-like JPEGs made by upscaling the 224x224 set (quality 90)."""
    out = []
    for i, path in enumerate(paths):
        target = folder / f"large-{i:03d}.jpg"
        with Image.open(path) as image:
            image.convert("RGB").resize(size, Image.BICUBIC).save(target, quality=90)
        out.append(str(target))
    return out


def cache_effect(loaded: LoadedModel, paths: list[str], refs: list[list[str]], *,
                 batches: int, cache_dir: Path) -> dict:
    """Seconds per epoch of training steps fed from the cache vs. from the CNN. The steps train a
    copy: the loaded model is scored on these same dev photos afterwards."""
    model, backbone = copy.deepcopy(loaded.model).train(), backbone_of(loaded)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = 32
    chunks = [paths[i * size:(i + 1) * size] for i in range(batches)]
    captions = [[loaded.tgt_vocab.encode(loaded.tgt_tokenizer.tokenize(r[0]))
                 for r in refs[i * size:(i + 1) * size]] for i in range(batches)]
    cache = FeatureCache(cache_dir, backbone)
    cache.get([p for chunk in chunks for p in chunk])  # fill it (not timed: done once per run)

    def step(features: torch.Tensor, ids: list[list[int]]) -> None:
        tgt_in, tgt_out = target_pair(ids)
        total, n = model.loss(Batch(features=features.float(), tgt_in=tgt_in, tgt_out=tgt_out))
        optimizer.zero_grad()
        (total / n).backward()
        optimizer.step()

    timings = {}
    for mode in ("cached", "cnn"):
        start = time.perf_counter()
        for chunk, ids in zip(chunks, captions):
            if mode == "cached":
                found, _ = cache.get(chunk)
                features = torch.stack([found[p] for p in chunk])
            else:
                found, _ = extract(backbone, chunk, batch_size=size)
                features = torch.stack([found[p] for p in chunk])
            step(features, ids)
        timings[mode] = (time.perf_counter() - start) / (batches * size)  # seconds per caption
    per_epoch = 30_000
    return {"epoch_seconds_cached": round(timings["cached"] * per_epoch, 1),
            "epoch_seconds_cnn": round(timings["cnn"] * per_epoch, 1),
            "cache_speedup": round(timings["cnn"] / timings["cached"], 1)}


def int8_figures(ckpt: Path, pipe: Pipeline, data_dir: str, paths: list[str], *, limit: int,
                 folder: Path) -> dict:
    """``seqgen export --int8`` (int8 decoder; the CNN as measured) against the float model
    decoding in its measured precision: images/s and dev BLEU-4 on the same photos."""
    from seqgen.io.export import export_checkpoint

    int8_path = folder / "int8.pt"
    export_checkpoint(ckpt, int8_path, int8=True)
    small = Pipeline.load(int8_path)
    speed = {"float": images_per_second(pipe, paths), "int8": images_per_second(small, paths)}
    cache = str(folder / "cache")
    def dev_bleu4(side: Pipeline) -> float:  # decoded as the pipeline would, not in fp32
        batches = evaluation_batches(side.loaded, data_dir, "dev", limit=limit, cache_dir=cache)
        settings = side.generation_config(GenerationConfig(beam=3))
        return side.adapter.score(side, batches, settings)["bleu4"]

    bleu = {"float": dev_bleu4(pipe), "int8": dev_bleu4(small)}
    print(f"int8 export: {speed['int8']:.1f} vs {speed['float']:.1f} images/s "
          f"({speed['int8'] / speed['float']:.2f}x, {pipe.precision.name} decoding); dev BLEU-4 "
          f"on {limit} photos {bleu['int8']} vs {bleu['float']}; "
          f"{int8_path.stat().st_size / 1e6:.1f} MB vs {ckpt.stat().st_size / 1e6:.1f} MB",
          file=sys.stderr)
    return {"int8_images_per_s": round(speed["int8"], 1),
            "int8_speedup": round(speed["int8"] / speed["float"], 2),
            "int8_bleu4_change": round(bleu["int8"] - bleu["float"], 2),
            "int8_mb": round(int8_path.stat().st_size / 1e6, 1)}


def cnn_precision(pipe: Pipeline):
    """What the captioner's CNN runs in (chosen when the pipeline first builds it)."""
    pipe.adapter.backbone(pipe)
    return pipe.state["cnn_precision"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="speed figures only, under 3 minutes")
    parser.add_argument("--ckpt", default=str(ROOT / "assets" / "models" / "flickr8k-lite0.pt"))
    parser.add_argument("--run-dir", help="the training run of --ckpt (for its training time)")
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--cache-dir", help="feature cache (default ~/.cache/seqgen/features)")
    parser.add_argument("--limit", type=int, default=0, help="dev images to use (0: all)")
    args = parser.parse_args()
    ckpt = Path(args.ckpt)
    if not Path(args.data_dir).is_dir() or not ckpt.is_file():
        print(f"error: need {args.data_dir} and {ckpt}", file=sys.stderr)
        return 2
    loaded = LoadedModel.from_file(ckpt)
    images, captions_file, split_path = flickr_layout(args.data_dir, "dev")
    dev = caption_set(images, read_captions(captions_file), read_split(split_path))
    n_speed = args.limit or (96 if args.quick else 320)
    pipe = Pipeline(loaded)
    speed = images_per_second(pipe, dev.paths[:n_speed])
    print(f"captioning, CNN included ({cnn_precision(pipe).name}: {cnn_precision(pipe).note}), "
          f"beam 3 ({pipe.precision.name}: {pipe.precision.note}): {speed:.1f} images/s",
          file=sys.stderr)
    effect = {}
    if not is_quantized(loaded.model) and not isinstance(
            loaded.model, Ensemble):  # training speed: only for a model that trains
        with tempfile.TemporaryDirectory() as tmp:
            effect = cache_effect(loaded, dev.paths, dev.refs, batches=3 if args.quick else 6,
                                  cache_dir=Path(tmp))
        print(f"training epoch: {effect['epoch_seconds_cached']} s with cached features, "
              f"{effect['epoch_seconds_cnn']} s running the CNN ({effect['cache_speedup']}x)",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        large = upscaled_photos(dev.paths[:16 if args.quick else 64], Path(tmp))
        speed_large = images_per_second(pipe, large)
    print(f"captioning full-size photos (2048x1536 JPEG, decoded at reduced size): "
          f"{speed_large:.1f} images/s", file=sys.stderr)
    result = {"images_per_s": round(speed, 1), "images_per_s_2048x1536": round(speed_large, 1),
              **effect}
    with tempfile.TemporaryDirectory() as tmp:
        result.update(int8_figures(ckpt, pipe, args.data_dir, dev.paths[:n_speed],
                                   limit=300 if args.quick else args.limit or 1000,
                                   folder=Path(tmp)))
    if not args.quick:
        scores = pipe.evaluate(args.data_dir, "dev", GenerationConfig(beam=3), limit=args.limit,
                               cache_dir=args.cache_dir)
        print(f"dev: {json.dumps(scores)}", file=sys.stderr)
        result.update(dev_bleu1=scores["bleu1"], dev_bleu2=scores["bleu2"],
                      dev_bleu3=scores["bleu3"], dev_bleu4=scores["bleu4"],
                      dev_cider=scores["cider"],
                      train_minutes=run_minutes(Path(args.run_dir) if args.run_dir else ckpt.parent))
    precision = {"cnn": cnn_precision(pipe).name, "decoder": pipe.precision.name}
    print(machine_line(precision), file=sys.stderr)
    result["machine"] = machine(precision)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
