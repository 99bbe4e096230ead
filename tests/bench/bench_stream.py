"""A character model of one text against a character transformer, side by side on this machine.

seqgen's stream model (the recipe's ``--stream`` preset: a two-layer LSTM, its state carried
across windows) and the transformer of nanoGPT's published CPU settings (char_transformer.py)
each train for the same wall time on Tiny Shakespeare's first 90%, one after the other, and are
scored on the last 10% in nats per character as they go. Prints the curves, training and
generation speed (characters/s; generation from a 200-character prompt), the CPU, flags, threads
and precision, one JSON line, and draws both curves in one picture.

    python tests/bench/bench_stream.py --minutes 3 10 30                 # each budget, both models
    python tests/bench/bench_stream.py --rnn-run runs/shakespeare        # the 30-minute RNN: a
                                                                        # recipe run already made
    python tests/bench/bench_stream.py --minutes 0.5 --quick             # a check of the script
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from char_transformer import (TransformerConfig, TransformerTrainer, faster_precision,
                              nats_to_bits)
from machine import machine, machine_line

from seqgen.data.stream import read_stream, split_stream
from seqgen.decoding.generation import GenerationConfig
from seqgen.pipeline import Pipeline
from seqgen.training.runner import run

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare" / "input.txt.gz"
ANCHOR = 1.4697  # nats/char: nanoGPT's character transformer, ~3 minutes on one A100


def rnn_curve(run_dir: Path) -> list[tuple[float, float]]:
    """(minutes of training, held-out nats/char) at each evaluation of a recipe run."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["elapsed_s"] / 60, r["val_loss"]) for r in rows if "val_loss" in r]


def rnn_rate(run_dir: Path, rows: list[dict]) -> float:
    """Training characters/s of a recipe run: the median its progress log saw, or for a run
    too short to log one, its characters over its whole time."""
    logged = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    if logged:
        return float(np.median(logged))
    data = json.loads((run_dir / "config.json").read_text())["data"]
    last = [r for r in rows if "val_loss" in r][-1]
    return last["step"] * data["batch_size"] * data["window"] / last["elapsed_s"]


def train_rnn(minutes: float, run_dir: Path, data: Path, quick: bool) -> None:
    """The recipe's stream model for ``minutes`` (a time budget: its schedule ends with it)."""
    argv = ["--text-file", str(data), "--stream", "--minutes", str(minutes),
            "--train.max_steps=0", "--run-dir", str(run_dir), "--no-resume", "--quiet",
            f"--train.eval_every={25 if quick else 250}"]
    if run("headlines", argv=argv) != 0:
        sys.exit("the stream recipe failed")


def train_transformer(minutes: float, ids: np.ndarray, train: slice, val: slice, vocab: int,
                      *, every_s: float) -> tuple[TransformerTrainer, list, float]:
    """The baseline for ``minutes`` of training time (evaluations not counted), scored every
    ``every_s`` seconds; returns it, its curve and its training characters/s."""
    config = TransformerConfig(vocab=vocab)
    amp, chosen = faster_precision(ids, train, config)
    print(f"transformer precision: {chosen}", file=sys.stderr)
    trainer = TransformerTrainer(ids, train, config, amp=amp)
    trainer.chosen = chosen
    curve, spent, next_eval = [], 0.0, every_s
    while spent < minutes * 60:
        start = time.perf_counter()
        trainer.step()
        spent += time.perf_counter() - start
        if spent >= next_eval or spent >= minutes * 60:
            curve.append((spent / 60, trainer.held_out_nats(val.start, val.stop)))
            print(f"transformer {spent / 60:5.1f} min: {curve[-1][1]:.4f} nats/char "
                  f"({trainer.steps} steps)", file=sys.stderr)
            next_eval += every_s
    c = trainer.c
    return trainer, curve, trainer.steps * c.batch * c.context / spent


def generation_speed(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - start)


def draw(curves: dict[str, list], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, curve in curves.items():
        ax.plot([m for m, _ in curve], [n for _, n in curve], marker=".", label=name)
    ax.axhline(ANCHOR, color="grey", linestyle="--", linewidth=1,
               label="1.47: nanoGPT's char transformer, ~3 min on an A100")
    ax.set_xlabel("minutes of training on this machine's 2 CPU cores")
    ax.set_ylabel("held-out nats per character")
    ax.set_ylim(1.2, 3.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Tiny Shakespeare, last 10%: one text, two models, the same wall time",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA), help="the text (Tiny Shakespeare)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[3.0, 10.0, 30.0],
                        help="training budgets: each model trains once per budget")
    parser.add_argument("--rnn-run", help="a finished stream recipe run of the largest budget: "
                        "its curve and model instead of training that RNN again")
    parser.add_argument("--run-dir", default="runs/bench-stream", help="the RNNs' run folders")
    parser.add_argument("--picture", help="write the curves of the largest budget to this PNG")
    parser.add_argument("--quick", action="store_true", help="frequent evaluations (a check)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    ids, vocab = read_stream(args.data, Path.home() / ".cache" / "seqgen" / "tokens")
    train, val = split_stream(len(ids), val_fraction=0.1)
    budgets, results = sorted(args.minutes), {}
    for minutes in budgets:
        run_dir = Path(args.run_dir) / f"{minutes:g}min"
        if args.rnn_run and minutes == budgets[-1]:
            run_dir = Path(args.rnn_run)
        else:
            train_rnn(minutes, run_dir, Path(args.data), args.quick)
        every = minutes * 60 / (30 if args.quick else 20)
        base, curve, base_rate = train_transformer(minutes, ids, train, val, len(vocab),
                                                   every_s=every)
        rnn = rnn_curve(run_dir)
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        results[minutes] = {"run_dir": str(run_dir), "rnn_curve": rnn, "transformer_curve": curve,
                            "rnn_best": round(min(n for _, n in rnn), 4),
                            "transformer_best": round(min(n for _, n in curve), 4),
                            "rnn_train_chars_per_s": round(rnn_rate(run_dir, rows)),
                            "transformer_train_chars_per_s": round(base_rate),
                            "rnn_precision": json.loads((run_dir / "config.json").read_text())
                            ["train"]["precision"], "transformer_precision": base.chosen}
        print(f"{minutes:g} min each: LSTM {results[minutes]['rnn_best']:.4f} nats/char, "
              f"transformer {results[minutes]['transformer_best']:.4f}", file=sys.stderr)

    last = results[budgets[-1]]
    pipe = Pipeline.load(Path(last["run_dir"]) / "model.pt")
    prompt = "".join(vocab.decode(np.asarray(ids[val.start:val.start + 200]).tolist()))
    rnn_gen = generation_speed(lambda n: pipe.predict([prompt], GenerationConfig(
        temperature=0.8, seed=0, max_len=n)), 1000)
    start_ids = torch.as_tensor(np.asarray(ids[val.start:val.start + 200], np.int64))[None]
    base_gen = generation_speed(lambda n: base.generate(start_ids, n), 1000)
    decoder = pipe.choose_precision().name
    precision = {"lstm training": last["rnn_precision"], "lstm decoding": decoder,
                 "transformer": last["transformer_precision"]}
    print(machine_line(precision))
    for minutes, r in results.items():
        print(f"{minutes:g} minutes each: held-out nats/char, seqgen stream LSTM "
              f"{r['rnn_best']:.4f} ({nats_to_bits(r['rnn_best']):.3f} bits), char transformer "
              f"{r['transformer_best']:.4f} ({nats_to_bits(r['transformer_best']):.3f} bits); "
              f"training chars/s {r['rnn_train_chars_per_s']:,} vs "
              f"{r['transformer_train_chars_per_s']:,}")
    print(f"generation after a 200-character prompt: LSTM {rnn_gen:,.0f} chars/s, transformer "
          f"{base_gen:,.0f} chars/s (no key-value cache, as nanoGPT's sample.py)")
    if args.picture:
        draw({"seqgen stream LSTM (2 x 512, state carried)": last["rnn_curve"],
              "char transformer (4 x 128, context 64; nanoGPT's CPU settings)":
              last["transformer_curve"]}, Path(args.picture))
    print(json.dumps({"budgets": results, "rnn_generate_chars_per_s": round(rnn_gen),
                      "transformer_generate_chars_per_s": round(base_gen),
                      "transformer_parameters": base.model.num_parameters(),
                      "machine": machine(precision)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
