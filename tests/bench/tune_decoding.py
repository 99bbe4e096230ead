"""Choose a model's beam size, length penalty and n-gram blocking on a
validation split: every combination is scored and the table printed, best last.

    python tests/bench/tune_decoding.py runs/translation-m30k/model.pt \
        --data-dir ../shared/data/multi30k --split val --beams 3 5 8 --length-penalties 0.6 1 1.4
    python tests/bench/tune_decoding.py runs/captioning/model.pt \
        --data-dir ../shared/data/flickr8k --split dev --beams 2 3 5 --no-repeat-ngrams 0 3

Tune on validation only; report the test split once, with the chosen settings, then record them
in the shipped model (``seqgen export --beam B --length-penalty A``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import CheckpointError
from seqgen.io.loaded import LoadedModel
from seqgen.pipeline import Pipeline

METRIC = {"translation": "bleu", "captioning": "bleu4", "summarization": "rougeL"}
SHOWN = ("bleu", "chrf", "bleu4", "cider", "distinct", "rouge1", "rouge2", "rougeL", "lead_rougeL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="val", help="a validation split (never test)")
    parser.add_argument("--beams", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--length-penalties", type=float, nargs="+", default=[0.6, 1.0, 1.4])
    parser.add_argument("--no-repeat-ngrams", type=int, nargs="+", default=[0],
                        help="n-gram sizes to block (0: none)")
    parser.add_argument("--limit", type=int, default=0, help="first N examples only (0: all)")
    args = parser.parse_args()
    if "test" in args.split:
        print("error: tune on a validation split, not on test", file=sys.stderr)
        return 2
    try:
        pipe = Pipeline(LoadedModel.from_file(args.ckpt))
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if pipe.task not in METRIC:
        print(f"error: {pipe.task} models have nothing to tune here", file=sys.stderr)
        return 2
    metric = METRIC[pipe.task]
    rows = []
    for beam, alpha, ngram in itertools.product(args.beams, args.length_penalties,
                                                    args.no_repeat_ngrams):
        start = time.perf_counter()
        try:
            result = pipe.evaluate(args.data_dir, args.split, GenerationConfig(
                beam=beam, length_penalty=alpha, no_repeat_ngram=ngram), limit=args.limit)
        except (OSError, ValueError) as err:  # e.g. no such split in the folder
            print(f"error: {err}", file=sys.stderr)
            return 2
        rows.append({"beam": beam, "length_penalty": alpha, "no_repeat_ngram": ngram,
                     **{k: result[k] for k in SHOWN if k in result},
                     "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    best = max(rows, key=lambda r: r[metric])
    print(json.dumps({"task": pipe.task, "split": args.split, "metric": metric, "best": best,
                      "precision": pipe.precision.name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
