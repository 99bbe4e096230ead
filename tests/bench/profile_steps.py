"""Where the time goes: torch.profiler over training steps and beam-search decoding steps.

    python tests/bench/profile_steps.py                  # translation (shipped model) + headlines
    python tests/bench/profile_steps.py --top 25

For each workload it prints the operators with the most self CPU time and a summary by kind
(RNN kernel, matrix products, attention, softmax / loss, optimizer, copies and reindexing,
everything else = Python and small ops). Data: ``../shared/data`` (Multi30k, AG News).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from machine import machine_line
from torch.profiler import ProfilerActivity, profile

from seqgen.decoding.generation import GenerationConfig
from seqgen.io.loaded import LoadedModel
from seqgen.resources import resource_path
from seqgen.tasks.headlines.data import HeadlineData, HeadlineDataConfig
from seqgen.tasks.translation.data import TranslationDataConfig
from seqgen.tasks.translation.inference import translate
from seqgen.tasks.translation.splits import load_pairs
from seqgen.training.trainer import TrainConfig, Trainer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
KINDS = [  # (kind, substrings of operator names), first match wins
    ("rnn kernel", ("gru", "lstm", "rnn", "mkldnn_rnn")),
    ("matrix products", ("addmm", "mm", "matmul", "linear", "bmm", "baddbmm")),
    ("softmax / loss", ("softmax", "cross_entropy", "nll", "log_softmax")),
    ("search: topk / sort", ("topk", "sort", "argmax", "multinomial")),
    ("reindexing / copies", ("index_select", "gather", "cat", "copy_", "stack", "clone",
                             "contiguous", "to", "scatter", "where", "masked_fill", "index")),
    ("optimizer", ("adam", "foreach", "_fused", "clip_grad", "norm", "lerp", "sqrt", "addcdiv")),
    ("packing", ("pack_padded", "pad_packed", "_pack", "_pad")),
    ("embedding", ("embedding",)),
    ("elementwise", ("tanh", "sigmoid", "mul", "add", "div", "sub", "dropout", "relu", "exp")),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def report(title: str, prof, total_s: float, top: int) -> None:
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    events.sort(key=lambda e: -e.self_cpu_time_total)
    measured = sum(e.self_cpu_time_total for e in events) / 1e6
    by_kind: dict[str, float] = defaultdict(float)
    for e in events:
        by_kind[kind_of(e.key)] += e.self_cpu_time_total / 1e6
    print(f"\n## {title}: {total_s:.2f} s wall, {measured:.2f} s in operators "
          f"({max(total_s - measured, 0):.2f} s Python and framework overhead)")
    for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:22s} {seconds:7.3f} s  {100 * seconds / max(total_s, 1e-9):5.1f}%")
    print("  top operators (self CPU):")
    for e in events[:top]:
        print(f"    {e.key[:48]:48s} {e.self_cpu_time_total / 1e6:7.3f} s  x{e.count}")


def profile_training(trainer: Trainer, steps: int) -> tuple[object, float]:
    plan = trainer.data.train_plan(0)
    for indices in plan[:3]:  # warm-up: oneDNN builds kernels per shape
        trainer._train_step(trainer.data.make_batch(indices))
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for indices in plan[3:3 + steps]:
            trainer._train_step(trainer.data.make_batch(indices))
    return prof, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"error: data folder not found: {SHARED}", file=sys.stderr)
        return 2
    torch.manual_seed(0)

    # translation: the recipe's default model, training steps, then beam-5 decoding
    from seqgen.tasks.translation.task import Translation, TranslationConfig

    config = TranslationConfig()
    config.data.data_dir = str(SHARED / "multi30k")
    built = Translation().build(config, None)
    trainer = Trainer(built.model, built.data, TrainConfig(lr=1e-3, max_steps=10**6, device="cpu"))
    prof, seconds = profile_training(trainer, args.steps)
    report(f"translation training, {args.steps} steps of 64 pairs ({trainer.precision})", prof,
           seconds, args.top)

    loaded = LoadedModel.from_file(resource_path("assets", "models", "multi30k-de-en.pt"))
    sources, _ = load_pairs(TranslationDataConfig(data_dir=str(SHARED / "multi30k")),
                            "test_2016_flickr")
    searcher = GenerationConfig(beam=5, max_len=120)
    translate(loaded, sources[:64], searcher)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        translate(loaded, sources[:300], searcher)
    seconds = time.perf_counter() - start
    report(f"beam-5 decoding, 300 test sentences ({300 / seconds:.0f} sentences/s, fp32)", prof,
           seconds, args.top)

    # headlines: the default recipe model
    data = HeadlineData(HeadlineDataConfig(data_dir=str(SHARED / "ag_news")))
    from seqgen.nn.decoder import DecoderConfig
    from seqgen.nn.model import EncoderDecoder, ModelConfig

    model = EncoderDecoder(ModelConfig(decoder=DecoderConfig(cell="lstm", emb_dim=64,
                                                             hidden_dim=512, dropout=0.3)),
                           src_vocab_size=len(data.vocab), tgt_vocab_size=len(data.vocab))
    trainer = Trainer(model, data, TrainConfig(lr=1e-3, max_steps=10**6, device="cpu"))
    prof, seconds = profile_training(trainer, args.steps)
    report(f"headline training, {args.steps} steps of 64 titles ({trainer.precision})", prof,
           seconds, args.top)
    print(machine_line({"translation training": "see above", "decoding": "fp32"}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
