"""Benchmark: seqgen's Multi30k translator against a re-implementation of the anchor model.

    python tests/bench/bench_translation.py --ckpt runs/translation-m30k/model.pt
    python tests/bench/bench_translation.py --quick    # about 5 minutes: speed figures only

The anchor (translation_anchor.py) is Joey NMT 2.3's recurrent configuration, re-implemented
from its description: word-level vocabularies, bidirectional GRU-256 encoder, GRU-512 decoder with
Bahdanau (additive) attention and input feeding (the previous attentional vector is fed with the
next word, so the decoder must loop over time steps), bridge initialisation, batches of 64, Adam
1e-3. seqgen's decoder instead runs the fused GRU over the whole target and attends afterwards
(Luong style), so its teacher-forced pass is a few large matrix products.

Figures (on ../shared/data/multi30k, German->English):
1. test_2016_flickr sacreBLEU (cased, 13a, detokenised) and chrF, beam 5, of ``--ckpt``;
2. training throughput: target tokens per second for both (each in its own tokens: seqgen's are
   subword pieces, the anchor's words) and, unit-free, sentence pairs per second, whose ratio is
   the reported speed-up (the fastest of ``--repeats`` alternating 45-second rounds per side);
3. batched beam-5 decoding speed on the 1,000 test sentences (300 with --quick), as shipped, with
   a vocabulary shortlist learnt from the training pairs, and as an int8 export;
4. quality per minute: greedy validation BLEU of both after 10 minutes of training each
   (``--quality-minutes``; skipped with --quick).
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from machine import machine, machine_line
from translation_anchor import Anchor

from seqgen.decoding.generation import GenerationConfig
from seqgen.io.loaded import LoadedModel
from seqgen.metrics import translation_scores
from seqgen.pipeline import Pipeline
from seqgen.tasks.translation.data import TranslationDataConfig
from seqgen.tasks.translation.splits import load_pairs
from seqgen.training.runfiles import run_minutes
from seqgen.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "multi30k"


def anchor_throughput(src: list[str], tgt: list[str], seconds: float) -> dict:
    """Trains the anchor for ``seconds`` and reports target words and sentence pairs per second."""
    return Anchor(src, tgt).train(seconds)


def seqgen_throughput(data_dir: Path, seconds: float) -> dict:
    """Trains the recipe's default model for ``seconds`` through the real Trainer."""
    from seqgen.tasks.translation.task import Translation  # the recipe's own wiring
    from seqgen.tasks.translation.task import TranslationConfig

    config = TranslationConfig(shortlist=False)  # (decoding only: not needed to train)
    config.data.data_dir = str(data_dir)
    built = Translation().build(config, None)
    data, model = built.data, built.model
    counted = {"tokens": 0, "sentences": 0, "seconds": 0.0}
    sizes: list[int] = []
    make_batch = data.make_batch
    data.make_batch = lambda indices: (sizes.append(len(indices)), make_batch(indices))[1]

    class Meter:
        def on_step_end(self, trainer, *, n_tokens: int, seconds: float, **_):
            if trainer.state.step > 3:
                counted["tokens"] += n_tokens
                counted["seconds"] += seconds
                counted["sentences"] += sizes[-1]

    train_config = TrainConfig(lr=2e-3, max_minutes=seconds / 60, warmup_steps=200, eval_every=10**9,
                               max_epochs=1, schedule="constant")
    trainer = Trainer(model, data, train_config, callbacks=[Meter()])
    trainer.fit()
    return {"tokens_per_s": counted["tokens"] / counted["seconds"],
            "sentences_per_s": counted["sentences"] / counted["seconds"],
            "precision": trainer.precision}


def quality_after(minutes: float, data_dir: Path, src: list[str], tgt: list[str],
                  val_src: list[str], val_ref: list[str], say) -> dict:
    """Greedy validation BLEU of both sides after ``minutes`` of training each, one after the
    other on the same CPU: the anchor in its loop, seqgen through its recipe's configuration
    (cosine schedule over the same minutes)."""
    from seqgen.decoding.generation import GenerationConfig

    anchor = Anchor(src, tgt)
    anchor.train(minutes * 60)
    anchor_bleu = translation_scores(anchor.predict(val_src), val_ref)["bleu"]
    say(f"anchor after {minutes:g} min: val BLEU {anchor_bleu} (greedy)")
    from seqgen.tasks.translation.task import Translation, TranslationConfig

    config = TranslationConfig()
    config.data.data_dir = str(data_dir)
    config.train.max_minutes, config.train.eval_every = minutes, 10**9
    built = Translation().build(config, None)
    Trainer(built.model, built.data, config.train).fit()
    ours = Translation().validation_scores(built.loaded("translation", built.model), built,
                                           GenerationConfig(beam=1))["bleu"]
    say(f"seqgen after {minutes:g} min: val BLEU {ours} (greedy)")
    return {"quality_minutes": minutes, "anchor_val_bleu": anchor_bleu, "val_bleu": ours}


def decoding_speed(pipe: Pipeline, sources: list[str], beam: int = 5, *, shortlist: bool = True
                   ) -> tuple[float, list[str]]:
    """Sentences per second through the inference API (its measured precision), and the text."""
    options = GenerationConfig(beam=beam, max_len=120, shortlist=shortlist)
    # warm-up at the measured batch size: the one-off precision timing, and oneDNN's kernels,
    # which are prepared per input shape (a first call at a new size ran 20% slower)
    pipe.predict(sources[:100], options, batch_size=100)
    start = time.perf_counter()
    results = pipe.predict(sources, options, batch_size=100)
    return len(sources) / (time.perf_counter() - start), [r.text for r in results]


def int8_figures(ckpt: Path, sources: list[str], references: list[str]) -> dict:
    """Beam-5 speed and BLEU of ``seqgen export --int8`` against the same model in fp32 (both
    decode with float activations; the int8 one runs its Linear layers as int8 products)."""
    import tempfile

    from seqgen.io.export import export_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        export_checkpoint(ckpt, Path(tmp) / "int8.pt", int8=True)
        int8 = Pipeline(LoadedModel.from_file(Path(tmp) / "int8.pt"))
    fp32 = Pipeline(LoadedModel.from_file(ckpt), precision="fp32")
    (fast, hyps8), (slow, hyps32) = decoding_speed(int8, sources), decoding_speed(fp32, sources)
    bleu8 = translation_scores(hyps8, references)["bleu"]
    bleu32 = translation_scores(hyps32, references)["bleu"]
    print(f"int8 export: {fast:.1f} vs fp32 {slow:.1f} sentences/s ({fast / slow:.2f}x), "
          f"BLEU {bleu8} vs {bleu32}", file=sys.stderr)
    return {"int8_sentences_per_s": round(fast, 1), "fp32_sentences_per_s": round(slow, 1),
            "int8_speedup": round(fast / slow, 2), "int8_bleu_change": round(bleu8 - bleu32, 2)}


def shortlist_figures(ckpt: Path, data_dir: Path, sources: list[str], references: list[str]
                      ) -> dict:
    """Beam-5 speed and BLEU with a vocabulary shortlist learnt from the training pairs (as
    ``seqgen export --shortlist-data`` adds one), against the same model scoring every word."""
    import tempfile

    from seqgen.io.export import export_checkpoint
    from seqgen.tasks.translation.inference import learn_shortlist

    start = time.perf_counter()
    shortlist = learn_shortlist(LoadedModel.from_file(ckpt), str(data_dir))
    learn_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        export_checkpoint(ckpt, Path(tmp) / "listed.pt", shortlist=shortlist)
        listed = Pipeline(LoadedModel.from_file(Path(tmp) / "listed.pt"))
    fast, hyps = decoding_speed(listed, sources)
    slow, plain_hyps = decoding_speed(listed, sources, shortlist=False)
    bleu, plain_bleu = (translation_scores(h, references)["bleu"] for h in (hyps, plain_hyps))
    print(f"shortlist (learnt in {learn_s:.1f} s): {fast:.1f} vs {slow:.1f} sentences/s "
          f"({fast / slow:.2f}x), BLEU {bleu} vs {plain_bleu}", file=sys.stderr)
    return {"shortlist_sentences_per_s": round(fast, 1), "shortlist_speedup": round(fast / slow, 2),
            "shortlist_bleu_change": round(bleu - plain_bleu, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="speed figures only, about 5 minutes")
    parser.add_argument("--ckpt", default=str(ROOT / "assets" / "models" / "multi30k-de-en.pt"))
    parser.add_argument("--run-dir", help="the training run of --ckpt (for its training time)")
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--seconds", type=float, default=45.0, help="training time per side")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating training rounds per side; the fastest of each counts")
    parser.add_argument("--quality-minutes", type=float, default=None,
                        help="train each side this long and compare greedy validation BLEU "
                             "(default 10; 0 with --quick)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"error: data folder not found: {data_dir}", file=sys.stderr)
        return 2
    config = TranslationDataConfig(data_dir=str(data_dir))
    train_src, train_tgt = load_pairs(config, "train")
    test_src, test_ref = load_pairs(config, "test_2016_flickr")
    result: dict = {}

    anchors, runs = [], []
    for _ in range(args.repeats):  # alternating rounds; each side's fastest counts (2 cores and
        # a shared host make single 45-second windows vary by 10% and more)
        anchors.append(anchor_throughput(train_src, train_tgt, args.seconds))
        print(f"anchor (input feeding, stepped): {anchors[-1]['tokens_per_s']:,.0f} target "
              f"words/s, {anchors[-1]['sentences_per_s']:.1f} pairs/s", file=sys.stderr)
        runs.append(seqgen_throughput(data_dir, args.seconds))
        print(f"seqgen (fused GRU, Luong attention, {runs[-1]['precision']}): "
              f"{runs[-1]['tokens_per_s']:,.0f} target pieces/s, "
              f"{runs[-1]['sentences_per_s']:.1f} pairs/s", file=sys.stderr)
    anchor = max(anchors, key=lambda r: r["sentences_per_s"])
    ours = max(runs, key=lambda r: r["sentences_per_s"])
    result.update(train_tokens_per_s=round(ours["tokens_per_s"]),
                  reference_train_tokens_per_s=round(anchor["tokens_per_s"]),
                  train_sentences_per_s=round(ours["sentences_per_s"], 1),
                  reference_train_sentences_per_s=round(anchor["sentences_per_s"], 1),
                  train_speedup=round(ours["sentences_per_s"] / anchor["sentences_per_s"], 2))

    minutes = args.quality_minutes if args.quality_minutes is not None else (0 if args.quick else 10)
    if minutes > 0:
        val_src, val_ref = load_pairs(config, "val")
        say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
        result.update(quality_after(minutes, data_dir, train_src, train_tgt, val_src, val_ref, say))

    ckpt = Path(args.ckpt)
    if ckpt.is_file():
        loaded = LoadedModel.from_file(ckpt)
        pipe = Pipeline(loaded)
        speed, hyps = decoding_speed(pipe, test_src[:300] if args.quick else test_src)
        decoding = pipe.precision.name
        print(f"beam-5 decoding ({decoding}: {pipe.precision.note}): {speed:.1f} sentences/s",
              file=sys.stderr)
        result["beam5_sentences_per_s"] = round(speed, 1)
        sources = test_src[:300] if args.quick else test_src
        references = test_ref[:300] if args.quick else test_ref
        result.update(shortlist_figures(ckpt, data_dir, sources, references))
        result.update(int8_figures(ckpt, sources, references))
        if not args.quick:
            scores = translation_scores(hyps, test_ref)
            print(f"test_2016_flickr: BLEU {scores['bleu']} chrF {scores['chrf']} "
                  f"({scores['signature']})", file=sys.stderr)
            result.update(test_bleu=scores["bleu"], test_chrf=scores["chrf"],
                          train_minutes=run_minutes(args.run_dir or ckpt.parent))
    else:
        decoding = "none"
        print(f"no checkpoint at {ckpt}; decoding and BLEU skipped", file=sys.stderr)
    precision = {"anchor": "fp32", "seqgen": ours["precision"], "decoding": decoding}
    print(machine_line(precision), file=sys.stderr)
    result["machine"] = machine(precision)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
