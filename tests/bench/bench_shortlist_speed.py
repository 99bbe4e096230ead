"""Beam-5 speed of the shipped translator with and without its vocabulary shortlist, on all of
test_2016_flickr, alternating rounds (other load on the machine hits both sides alike); prints the
machine line and sentences/s per round.

    python tests/bench/bench_shortlist_speed.py [--ckpt FILE] [--data-dir DIR] [--rounds 2]
"""
from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from machine import machine_line
from seqgen import GenerationConfig, Pipeline

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default=str(ROOT / "assets" / "models" / "multi30k-de-en.pt"))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with gzip.open(Path(args.data_dir) / "test_2016_flickr.de.gz", "rt") as f:
        sources = f.read().splitlines()
    pipe = Pipeline.load(args.ckpt)
    print(machine_line({"decoder": pipe.precision.name}), "|", pipe.precision.note)
    for round_ in range(args.rounds):
        for shortlist in (True, False):
            config = GenerationConfig(beam=5, shortlist=shortlist)
            pipe.predict(sources[:100], config, batch_size=100)  # warm-up at the measured size
            start = time.perf_counter()
            pipe.predict(sources, config, batch_size=100)
            rate = len(sources) / (time.perf_counter() - start)
            print(f"round {round_ + 1}, shortlist {'on' if shortlist else 'off'}: "
                  f"{rate:.1f} sentences/s")


if __name__ == "__main__":
    main()
