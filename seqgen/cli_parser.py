"""What the ``seqgen`` command accepts: its sub-commands and their flags (``seqgen.cli`` runs
them). Bad arguments end in one line, not argparse's usage block."""
from __future__ import annotations

import argparse

from . import __version__
from .argtypes import finite_float, non_negative_int, positive_int
from .pipeline import MAX_ROWS

RECIPES = ("captioning", "headlines", "translation")
TASK_OF = {"generate": "headlines", "translate": "translation", "caption": "captioning"}
DESCRIPTION = ("The seqgen command: train / generate / translate / caption / evaluate / export / "
               "serve.")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------------------------
def add_search_options(p: argparse.ArgumentParser, *, beam: int, max_len: int) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--beam", type=positive_int,
                   help=f"beam size (default: the model's own, else {beam}; 1 = greedy)")
    g.add_argument("--n-best", type=positive_int, default=1,
                   help="hypotheses to print per input (beam search, at most the beam size)")
    g.add_argument("--temperature", type=finite_float, help="sample with this temperature")
    g.add_argument("--top-k", type=positive_int, help="sample from the k most likely symbols")
    g.add_argument("--top-p", type=finite_float, help="nucleus sampling mass, in (0, 1]")
    g.add_argument("--length-penalty", type=finite_float,
                   help="beam length penalty alpha (0 to 10; 0 = none; default: the model's "
                   "own, else 1)")
    g.add_argument("--repetition-penalty", type=finite_float, default=1.0,
                   help=">= 1; 1 = none")
    g.add_argument("--no-repeat-ngram", type=non_negative_int, default=0,
                   help="ban repeating n-grams of this size (0 = off)")
    g.add_argument("--min-length", type=non_negative_int, default=0)
    g.add_argument("--max-len", type=positive_int, default=max_len,
                   help=f"symbols to generate at most (default {max_len})")
    g.add_argument("--seed", type=int, help="random seed for sampling")


NO_SHORTLIST = ("translation: score every target word, not only the candidates of the model's "
                "vocabulary shortlist (when it has one; slower)")


# ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seqgen", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"seqgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)
    bound = f"at most {MAX_ROWS} sequences (inputs x beam, or samples) are decoded at once"

    p = sub.add_parser("train", help="run a recipe: headlines, translation or captioning",
                       add_help=False)
    p.add_argument("recipe", choices=RECIPES)

    p = sub.add_parser("generate", help="continue prompts with a text model (headlines)",
                       description=f"Continue prompts. Memory stays bounded: {bound}; samples "
                       "are printed as each chunk finishes.")
    p.add_argument("--prompt", action="append", help="prompt text (repeatable; default empty)")
    p.add_argument("-n", "--num", type=positive_int, default=1,
                   help="samples per prompt (needs sampling)")
    add_search_options(p, beam=1, max_len=100)

    p = sub.add_parser("translate", help="translate sentences (argument, --input FILE or stdin)",
                       description="Translate one sentence per line: output line i is the "
                       f"translation of input line i. Memory stays bounded: {bound}.")
    p.add_argument("text", nargs="*", help="sentences to translate")
    p.add_argument("--input", help="file with one sentence per line (plain or .gz)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="sentences per batch (lowered for wide beams)")
    p.add_argument("--attention", help="write the source x target attention heatmap to this PNG")
    p.add_argument("--no-shortlist", action="store_true", help=NO_SHORTLIST)
    add_search_options(p, beam=5, max_len=120)

    p = sub.add_parser("caption", help="caption images",
                       description=f"Caption image files. Memory stays bounded: {bound}.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="images per batch (lowered for wide beams)")
    p.add_argument("--attention", help="folder for per-image attention strips (PNG)")
    add_search_options(p, beam=3, max_len=40)

    p = sub.add_parser("evaluate", help="score a checkpoint on a data split; prints JSON")
    p.add_argument("--data-dir", required=True,
                   help="data folder in the data set's standard layout")
    p.add_argument("--split", default="test",
                   help="a split file's name (test, val, ...); for headlines also heldout: the "
                        "rows the model's training run held out of train")
    p.add_argument("--beam", type=positive_int,
                   help="beam size (default: the model's own, else translation 5, captioning 3)")
    p.add_argument("--length-penalty", type=finite_float,
                   help="beam length penalty alpha (default: the model's own, else 1)")
    p.add_argument("--limit", type=non_negative_int, default=0,
                   help="score only the first N examples (0: all)")
    p.add_argument("--no-shortlist", action="store_true", help=NO_SHORTLIST)

    p = sub.add_parser("export", help="write a model-only copy for shipping (half precision)")
    p.add_argument("--out", required=True, help="output checkpoint path")
    p.add_argument("--float32", action="store_true", help="keep full precision")
    p.add_argument("--int8", action="store_true", help="int8 weights; Linear layers and RNN "
                   "cells run as dynamically quantised int8 products (CPU)")
    p.add_argument("--beam", type=positive_int, help="record this beam size as the model's "
                   "default (chosen on validation)")
    p.add_argument("--length-penalty", type=finite_float, help="record this length penalty as "
                   "the model's default (chosen on validation)")
    p.add_argument("--shortlist-data", metavar="DIR", help="translation: learn a vocabulary "
                   "shortlist from this folder's training pairs (beam search then scores only "
                   "each batch's candidate words)")

    for name, p in sub.choices.items():
        if name != "train":
            p.add_argument("--ckpt", required=name in ("evaluate", "export"),
                           help="checkpoint (default: the bundled model)")
            p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
            if name != "export":
                p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                               help="auto: bf16 only where a one-off timing finds it faster")

    p = sub.add_parser("serve", help="a local web page and JSON API over the models")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000)
    for task in TASK_OF.values():
        p.add_argument(f"--{task}", metavar="FILE", help=f"{task} checkpoint (default: bundled)")
    p.add_argument("--max-upload-mb", type=finite_float, default=10.0,
                   help="largest request body accepted, in MB (default 10)")
    return parser
