"""Benchmark: seqgen's headline generator against a faithful re-implementation of the lesson.

    python tests/bench/bench_headlines.py            # about 20 minutes: speed and quality
    python tests/bench/bench_headlines.py --quick    # about 7 minutes: the ratios, shorter budgets

The lesson (``shared/seeds/001_*``): Keras char tokenizer fitted on training titles, ``<eos>`` added,
batches of 8 titles tokenised per batch and *pre*-padded by ``pad_sequences``, one-hot inputs and
targets, Masking -> LSTM(128) -> Dense softmax, categorical cross-entropy, RMSprop(1e-3). Its
Masking layer masks all-zero vectors, but the one-hot of padding index 0 is not all zero, so padding
is in fact read and predicted; the re-implementation (headlines_lesson.py) does the same. Its
generator re-runs the whole prefix for every new character.

Figures (on ../shared/data/ag_news/train.csv.gz, 10% carved out for validation):
1. training throughput in real characters per second at the lesson's model size;
2. time to quality: the lesson loop trains for a budget (2 minutes with --quick, else --minutes);
   seqgen's fast-start configuration (LSTM 1x256, batches of 32, AdamW 1e-2 constant) then trains
   until its validation bits/char is at least as good, checked every 40 steps (the checks are not
   counted); the ratio of the two times. Both sides score the same symbols: every character after
   the first, and the end of the title;
3. validation bits/char after the same wall-clock budget (without --quick);
4. generation speed, characters per second: prompt-state stepping vs re-running the prefix, and
   the same model exported with ``seqgen export --int8`` against fp32 (speed and bits/char).
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from headlines_lesson import (LessonModel, LessonTokenizer, lesson_bpc, lesson_generate,
                              lesson_train)
from machine import machine, machine_line

from seqgen.decoding.processors import MinLength
from seqgen.decoding.search import GreedySearch, generate
from seqgen.metrics import corpus_nll, language_model_scores
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.int8 import dequantize_rows, quantize_linear_layers, quantize_rows
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.tasks.headlines.data import HeadlineData, HeadlineDataConfig
from seqgen.training.trainer import TrainConfig, Trainer
from seqgen.vocab import PAD

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ag_news"
PRECISION = {"lesson": "fp32", "seqgen": "fp32"}  # filled in by the runs


# ---------------------------------------------------------------------------------------- seqgen
DECODERS = {
    "lesson": DecoderConfig(cell="lstm", one_hot=True, hidden_dim=128),  # the lesson's size
    # quickest to the lesson's quality: one wide-enough layer, small batches, a high constant rate
    "fast": DecoderConfig(cell="lstm", emb_dim=64, hidden_dim=256),
    "best": DecoderConfig(cell="lstm", emb_dim=64, hidden_dim=384, num_layers=2, dropout=0.2),
}


def seqgen_model(vocab: int, kind: str) -> EncoderDecoder:
    return EncoderDecoder(ModelConfig(decoder=DECODERS[kind]), src_vocab_size=vocab,
                          tgt_vocab_size=vocab)


def seqgen_train(data: HeadlineData, model: EncoderDecoder, *, seconds: float, lr: float
                 ) -> tuple[float, float]:
    """Trains for ``seconds`` (no validation inside the budget); returns (chars/s, seconds)."""
    config = TrainConfig(lr=lr, max_minutes=seconds / 60, max_epochs=1000, warmup_steps=50,
                         eval_every=10**9, device="cpu")
    counting = _CountingData(data)
    trainer = Trainer(model, counting, config)  # may time fp32 vs bf16 once (cached)
    start = time.perf_counter()
    trainer.fit()
    used = time.perf_counter() - start
    PRECISION["seqgen"] = trainer.precision
    return counting.chars / used, used


class _CountingData:
    """The training side of a data module, counting the real characters it hands out."""

    def __init__(self, data: HeadlineData) -> None:
        self.data, self.chars = data, 0

    def train_plan(self, epoch: int) -> list[list[int]]:
        return self.data.train_plan(epoch)

    def make_batch(self, indices):
        self.chars += sum(len(self.data.train_ids[i]) for i in indices)
        return self.data.make_batch(indices)

    def val_batches(self):
        return iter(())


class _StopAtQuality:
    """Trainer callback: every ``every`` steps, scores validation bits/char outside the clock and
    stops once it reaches ``target``; ``seconds`` is the training time up to that point."""

    def __init__(self, data: HeadlineData, target: float, *, every: int) -> None:
        self.data, self.target, self.every = data, target, every
        self.seconds, self.reached, self.bpc = 0.0, False, math.inf
        self._start = 0.0

    def on_train_start(self, trainer) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, trainer, **_) -> None:
        if trainer.state.step % self.every:
            return
        self.seconds += time.perf_counter() - self._start
        with torch.autocast("cpu", dtype=trainer.amp_dtype, enabled=trainer.use_amp):
            self.bpc = bpc(trainer.model, self.data, first=False)
        if self.bpc <= self.target:
            self.reached, trainer.should_stop = True, True
        self._start = time.perf_counter()


def time_to_quality(data: HeadlineData, target: float, *, limit_seconds: float) -> dict:
    """Training seconds seqgen's fast-start configuration needs to reach ``target`` bits/char."""
    data = HeadlineData(replace(data.config, batch_size=32))
    model = seqgen_model(len(data.vocab), "fast")
    stop = _StopAtQuality(data, target, every=40)
    config = TrainConfig(lr=1e-2, schedule="constant", max_minutes=limit_seconds / 60,
                         max_epochs=1000, warmup_steps=20, eval_every=10**9, device="cpu")
    Trainer(model, data, config, callbacks=[stop]).fit()
    return {"seconds": stop.seconds, "reached": stop.reached, "bpc": stop.bpc}


def bpc(model: EncoderDecoder, data: HeadlineData, *, first: bool = True) -> float:
    """Validation bits/char; ``first=False`` leaves out each title's first character, as the
    lesson's figure does (it has no start symbol to predict it from)."""
    batches = data.val_batches()
    if not first:
        batches = (replace(b, tgt_out=b.tgt_out.index_fill(1, torch.tensor([0]), PAD))
                   for b in batches)
    nll, n = corpus_nll(model, batches)
    return language_model_scores(nll, n)["bits_per_token"]


def generation_speed(model: EncoderDecoder, data: HeadlineData, *, size: int, repeats: int,
                     batch: int = 1, rerun: bool = True) -> tuple[float, float]:
    """(stepping chars/s, re-running chars/s) for greedy continuations of 'Today '.

    EOS is banned until ``size`` characters so both generators do the same amount of work; the
    re-running side is the lesson's loop on the very same model. ``batch`` prompts are stepped
    together (the lesson's generator takes one prompt at a time).
    """
    model.eval()
    prompt = data.encode("Today ")
    searcher = GreedySearch(max_len=size, processors=[MinLength(size)])
    prompts = data.prompts(["Today "] * batch)
    stepping = size * batch / fastest(lambda: generate(model, prompts, searcher), repeats)
    if not rerun:
        return stepping, math.nan

    def run_all(tokens: torch.Tensor) -> torch.Tensor:
        return model.decoder(tokens, model.decoder.init_state(batch_size=1))[0]

    rerun = size / fastest(lambda: lesson_generate(model, run_all, [1, *prompt], size),
                           max(repeats // 2, 2))
    return stepping, rerun


def fastest(work, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` runs: the least disturbed by the rest of the machine,
    so ratios of two such figures are stable from run to run."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def generation_figures(small: EncoderDecoder, best: EncoderDecoder, data: HeadlineData, *,
                       repeats: int, say) -> dict:
    """Stepping vs re-running at the lesson's sizes (100 greedy, 300 sampled) and batched."""
    out = {}
    for name, model in (("lstm128", small), ("lstm2x384", best)):
        for size in (100, 300):
            stepping, rerun = generation_speed(model, data, size=size, repeats=repeats)
            say(f"generation {name}, {size} chars: stepping {stepping:,.0f} chars/s, "
                f"re-running {rerun:,.0f} chars/s ({stepping / rerun:.1f}x)")
            out[f"gen_speedup_{name}_{size}"] = round(stepping / rerun, 1)
            if name == "lstm128" and size == 300:
                out.update(gen_chars_per_s=round(stepping), lesson_gen_chars_per_s=round(rerun),
                           gen_speedup=round(stepping / rerun, 1))
    batched, _ = generation_speed(small, data, size=300, repeats=1, batch=64)
    say(f"generation lstm128, 64 prompts at once: {batched:,.0f} chars/s")
    out["gen_batch64_chars_per_s"] = round(batched)
    return out


def int8_copy(model: EncoderDecoder) -> EncoderDecoder:
    """The model as ``seqgen export --int8`` and loading would make it: int8 weight rows,
    dequantised, then the Linear layers as dynamically quantised int8 products."""
    copy = seqgen_model(model.decoder.vocab_size, "best")
    copy.load_state_dict(dequantize_rows(quantize_rows(model.state_dict())))
    return quantize_linear_layers(copy.eval())


def int8_figures(model: EncoderDecoder, data: HeadlineData, *, repeats: int, say) -> dict:
    """int8 against fp32 for the trained LSTM 2x384: greedy generation speed and bits/char."""
    int8 = int8_copy(model)
    speeds = {name: generation_speed(m, data, size=300, repeats=repeats, rerun=False)[0]
              for name, m in (("fp32", model), ("int8", int8))}
    quality = {name: bpc(m, data) for name, m in (("fp32", model), ("int8", int8))}
    say(f"int8 LSTM 2x384: {speeds['int8']:,.0f} vs {speeds['fp32']:,.0f} chars/s fp32 "
        f"({speeds['int8'] / speeds['fp32']:.2f}x); {quality['int8']:.4f} vs "
        f"{quality['fp32']:.4f} bits/char")
    return {"int8_speedup": round(speeds["int8"] / speeds["fp32"], 2),
            "int8_bpc_change": round(quality["int8"] - quality["fp32"], 4)}


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="speed ratios only, under 3 minutes")
    parser.add_argument("--minutes", type=float, default=5.0, help="quality budget for each side")
    parser.add_argument("--data-dir", default=str(DATA))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    config = HeadlineDataConfig(data_dir=args.data_dir, clean=False, val_fraction=0.1, batch_size=64)
    data = HeadlineData(config)
    titles, val = data.train_texts, data.val_texts
    say(f"{len(titles)} training / {len(val)} validation titles; torch threads {torch.get_num_threads()}")
    speed_seconds = 40.0 if args.quick else 60.0

    tok = LessonTokenizer(titles)
    lesson = LessonModel(tok.vocab_size)
    lesson_speed, _ = lesson_train(lesson, tok, titles, speed_seconds)
    say(f"lesson loop: {lesson_speed:,.0f} chars/s")
    small = seqgen_model(len(data.vocab), "lesson")
    seqgen_speed, _ = seqgen_train(data, small, seconds=speed_seconds, lr=3e-3)
    say(f"seqgen, lesson-size one-hot LSTM-128, batch 64: {seqgen_speed:,.0f} chars/s "
        f"({seqgen_speed / lesson_speed:.2f}x)")
    result = {"train_chars_per_s": round(seqgen_speed), "lesson_train_chars_per_s": round(lesson_speed),
              "train_speedup": round(seqgen_speed / lesson_speed, 2)}
    lesson_budget = (2.0 if args.quick else args.minutes) * 60
    lesson = LessonModel(tok.vocab_size)
    lesson_train(lesson, tok, titles, lesson_budget)
    target = lesson_bpc(lesson, tok, val)
    say(f"lesson loop after {lesson_budget / 60:g} min: {target:.3f} bits/char")
    reach = time_to_quality(data, target, limit_seconds=lesson_budget)
    speedup = lesson_budget / reach["seconds"] if reach["reached"] else 0.0
    say(f"seqgen (LSTM 1x256, batch 32, AdamW 1e-2) reached {reach['bpc']:.3f} bits/char after "
        f"{reach['seconds']:.1f} s of training"
        + (f" ({speedup:.1f}x sooner)" if reach["reached"] else " - NOT reached within the budget"))
    result.update(lesson_minutes_to_quality=round(lesson_budget / 60, 2),
                  minutes_to_quality=round(reach["seconds"] / 60, 3),
                  quality_bpc=round(target, 3), time_to_quality_speedup=round(speedup, 2))
    best = seqgen_model(len(data.vocab), "best")
    if not args.quick:
        budget = args.minutes * 60
        result["lesson_val_bpc"] = round(target, 3)  # the lesson's budget is the same
        say(f"lesson after {args.minutes} min: {result['lesson_val_bpc']} bits/char")
        seqgen_train(data, best, seconds=budget, lr=3e-3)
        result["val_bpc"] = round(bpc(best, data, first=False), 3)
        say(f"seqgen (LSTM 2x384, emb 64, dropout 0.2, AdamW 3e-3 cosine, bf16 autocast) after "
            f"{args.minutes} min: {result['val_bpc']} bits/char")
        result["budget_minutes"] = args.minutes
    result.update(generation_figures(small, best, data, repeats=3 if args.quick else 6, say=say))
    if args.quick:  # the int8 comparison needs trained weights: a short run stands in
        seqgen_train(data, best, seconds=30, lr=3e-3)
    result.update(int8_figures(best, data, repeats=3, say=say))
    say(machine_line(PRECISION))
    result["machine"] = machine(PRECISION)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
