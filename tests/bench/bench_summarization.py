"""Speed of batched beam search for a summarizer on its own validation articles (the rows its
training run carved out of an AG News folder), in documents/s, fastest of a few rounds; prints the
machine line and one JSON line.

    python tests/bench/bench_summarization.py --data-dir ../shared/data/ag_news \
        [--ckpt runs/x/model.pt] [--beam 4] [--rounds 2] [--limit 300]

By default the bundled summarizer with the search recorded in it (beam, length penalty, n-gram
blocking). A copying decoder scores the whole vocabulary at every step, so no vocabulary shortlist
is compared here.
"""
from __future__ import annotations

import argparse
import json
import time

from machine import machine, machine_line
from seqgen import GenerationConfig, Pipeline
from seqgen.tasks.summarization.inference import HELDOUT, evaluation_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="summarization", help="default: the bundled model")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--beam", type=int, help="default: the model's recorded beam")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="articles (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    pipe = Pipeline.load(args.ckpt)
    documents, _ = evaluation_rows(pipe.loaded, args.data_dir, HELDOUT, args.limit)
    config = GenerationConfig(beam=args.beam)
    beam = pipe.generation_config(config).beam
    print(machine_line({"decoder": pipe.precision.name}), "|", pipe.precision.note)
    pipe.predict(documents[:args.batch_size], config, batch_size=args.batch_size)  # warm-up
    rates = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        pipe.predict(documents, config, batch_size=args.batch_size)
        rates.append(len(documents) / (time.perf_counter() - start))
        print(f"beam {beam}: {rates[-1]:.1f} documents/s", flush=True)
    print(json.dumps({"bench": "summarization", "documents": len(documents), "beam": beam,
                      "documents_per_s": round(max(rates), 1),
                      "machine": machine({"decoder": pipe.precision.name})}))


if __name__ == "__main__":
    main()
