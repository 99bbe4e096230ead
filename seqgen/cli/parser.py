"""What the ``seqgen`` command accepts: its sub-commands and their flags (``seqgen.cli.main`` runs
them). Each registered task adds its own verb; bad arguments end in one line, not argparse's
usage block."""
from __future__ import annotations

import argparse
from typing import Sequence

from .. import __version__
from ..io.argtypes import finite_float, non_negative_int, positive_int
from ..decoding.generation import RECORDED
from ..pipeline import MAX_ROWS, bundled_names
from ..tasks import registry
from ..tasks.adapter import Adapter

EPILOG = """examples:
  the bundled models (headlines, translation, captioning):
    seqgen predict --list                                  registered tasks and bundled models
    seqgen generate --prompt "Today " --temperature 0.8 -n 5
    seqgen translate "Ein Mann fährt Fahrrad."             or --input FILE, or lines on stdin
    seqgen caption photo.jpg --beam 3 --n-best 3 --attention pictures/
  any model, bundled name or trained file (unset flags: the model's own settings):
    seqgen predict --model translation "Ein Hund läuft." --beam 5 --n-best 2
    seqgen predict --model runs/reverse/model.pt "red cat sun"
  train, on the bundled data or your own (python recipes/TASK.py --help for each task's data flags):
    seqgen train headlines                                 the bundled AG News sample, ~3 minutes
    seqgen train headlines --text-file news.jsonl --field title
    seqgen train translation --pairs fra.txt --src-field 1 --tgt-field 0
    seqgen train captioning --images DIR --captions dataset_flickr8k.json
    seqgen train NAME --dry-run                            a few steps (also tasks from plugins)
  score, ship, serve:
    seqgen evaluate --ckpt runs/translation/model.pt --data-dir data/multi30k --split val
    seqgen export --ckpt runs/translation/model.pt --out small.pt --int8
    seqgen export --ckpt a/model.pt --ensemble b/model.pt --out both.pt   decode two as one
    seqgen serve                                           the page at http://127.0.0.1:8000/
  from Python:
    from seqgen import GenerationConfig, Pipeline
    Pipeline.load("translation").predict(["Ein Hund läuft."], GenerationConfig(beam=5))

README.md: a first tour; RESULTS.md: every measured figure, with its command and machine."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------------------------
def add_search_options(p: argparse.ArgumentParser, adapter: Adapter | None = None, *,
                       only: Sequence[str] | None = None, title: str | None = None) -> None:
    """Generation flags (those named in ``only``, or all); every one unset by default, so the
    model's own settings and then the task's apply (see :mod:`seqgen.decoding.generation`)."""
    default = adapter.generation if adapter else None
    beam = default.value("beam") if default else "the task's"
    max_len = default.value("max_len") if default else "the task's"
    flags = {
        "beam": dict(type=positive_int,
                     help=f"beam size (default: the model's own, else {beam}; 1 = greedy)"),
        "n_best": dict(type=positive_int, help="hypotheses to print per input (beam search, at "
                       "most the beam size)"),
        "temperature": dict(type=finite_float,
                            help="sample with this temperature (turns the model's beam off)"),
        "top_k": dict(type=positive_int, help="sample from the k most likely symbols"),
        "top_p": dict(type=finite_float, help="nucleus sampling mass, in (0, 1]"),
        "length_penalty": dict(type=finite_float, help="beam length penalty alpha (0 to 10; 0 "
                               "= none; default: the model's own, else 1)"),
        "repetition_penalty": dict(type=finite_float, help=">= 1; 1 = none"),
        "no_repeat_ngram": dict(type=non_negative_int,
                                help="ban repeating n-grams of this size (0 = off)"),
        "min_length": dict(type=non_negative_int),
        "max_len": dict(type=positive_int,
                        help=f"symbols to generate at most (default {max_len})"),
        "seed": dict(type=non_negative_int, help="random seed for sampling"),
    }
    g = p.add_argument_group(title or "generation (unset flags: the model's own settings, else "
                             "the task's)")
    for name, spec in flags.items():
        if only is None or name in only:
            g.add_argument("--" + name.replace("_", "-"), **spec)
    if only is None:
        g.add_argument("--no-shortlist", action="store_true",
                       help="score every output word, not only the candidates of the model's "
                       "vocabulary shortlist (when it has one; slower)")


def add_input_options(p: argparse.ArgumentParser, inputs: str, *, pictures: bool) -> None:
    """The flags of a verb whose inputs are ``inputs`` (text lines, image paths or prompts)."""
    if inputs == "prompt":
        p.add_argument("--prompt", action="append", help="prompt text (repeatable; default empty)")
        p.add_argument("-n", "--num", type=positive_int, default=1,
                       help="samples per prompt (needs sampling)")
        return
    what = "image files" if inputs == "image" else "texts, one output line each"
    p.add_argument("items", nargs="*", metavar="INPUT", help=what)
    p.add_argument("--input", help="file with one input per line (plain or .gz); without INPUT "
                   "or --input, lines are read from stdin and answered as they arrive")
    p.add_argument("--batch-size", type=positive_int,
                   help="inputs per batch (lowered for wide beams)")
    if pictures:
        target = "folder for per-image attention strips" if inputs == "image" else \
            "write the attention heatmap to this PNG (NAME-1.png, ... for several lines)"
        p.add_argument("--attention", help=target)


def add_model_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--ckpt", required=required, help="checkpoint, or a bundled model's name "
                   "(default: the task's bundled model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")


# ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seqgen", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="One recurrent decoder, every generator: train, run, "
                           "evaluate and serve the registered tasks (" + ", ".join(
                               registry.names()) + ").")
    parser.add_argument("--version", action="version", version=f"seqgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)
    bound = f"at most {MAX_ROWS} sequences (inputs x beam, or samples) are decoded at once"
    precision = dict(choices=("auto", "fp32", "bf16"), default="auto",
                     help="auto: bf16 only where a one-off timing finds it faster")

    p = sub.add_parser("train", help="run a task's recipe (" + ", ".join(registry.names()) + ")",
                       add_help=False)
    p.add_argument("recipe", choices=registry.names())

    p = sub.add_parser("predict", help="run any model on inputs (its task decides what an input "
                       "is)", description=f"Run a model, one output line per input. {bound}.")
    p.add_argument("--model", help="a bundled name (" + ", ".join(bundled_names())
                   + ") or a checkpoint file")
    p.add_argument("--list", action="store_true", help="list the registered tasks and bundled "
                   "models, then exit")
    p.add_argument("items", nargs="*", metavar="INPUT", help="texts, image paths or prompts")
    p.add_argument("--input", help="file with one input per line")
    p.add_argument("-n", "--num", type=positive_int, default=1, help="samples per input")
    p.add_argument("--batch-size", type=positive_int, help="inputs per batch")
    p.add_argument("--attention", help="attention pictures: a PNG name, or a folder for images")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    p.add_argument("--precision", **precision)
    add_search_options(p)

    for task in registry.tasks():
        adapter = task.adapter
        if not adapter.verb:
            continue
        p = sub.add_parser(adapter.verb, help=adapter.help,
                           description=f"{adapter.help[:1].upper()}{adapter.help[1:]} "
                           f"({task.name} task). {bound}.",
                           epilog=f"example: seqgen {adapter.verb} " + (
                               f"--prompt {adapter.example!r}" if adapter.inputs == "prompt"
                               else repr(adapter.example)))
        add_input_options(p, adapter.inputs, pictures=bool(adapter.panel and
                                                           adapter.panel.attention))
        add_search_options(p, adapter)
        add_model_options(p, required=False)
        p.add_argument("--precision", **precision)

    p = sub.add_parser("evaluate", help="score a checkpoint on a data split; prints JSON "
                       "(always in fp32, so scores do not depend on the CPU)")
    add_model_options(p, required=True)
    p.add_argument("--data-dir", required=True,
                   help="data folder in the data set's standard layout")
    p.add_argument("--split", default="test",
                   help="a split file's name (test, val, ...); for headlines also heldout: the "
                        "rows the model's training run held out of train")
    p.add_argument("--limit", type=non_negative_int, default=0,
                   help="score only the first N examples (0: all)")
    add_search_options(p)
    p.add_argument("--cache-dir", help="feature cache folder (image tasks; default "
                   "~/.cache/seqgen/features; unwritable: no cache, with a warning)")

    p = sub.add_parser("export", help="write a model-only copy for shipping (half precision)")
    add_model_options(p, required=True)
    p.add_argument("--out", required=True, help="output checkpoint path")
    p.add_argument("--float32", action="store_true", help="keep full precision")
    p.add_argument("--int8", action="store_true", help="int8 weights; Linear layers and RNN "
                   "cells run as dynamically quantised int8 products (CPU)")
    add_search_options(p, only=RECORDED, title="search settings to record as the model's "
                       "defaults (chosen on validation)")
    p.add_argument("--ensemble", nargs="+", metavar="CKPT", default=[],
                   help="more checkpoints of the same task and vocabulary, decoded together with "
                   "--ckpt as one ensemble (their next-word probabilities averaged)")
    p.add_argument("--shortlist-data", metavar="DIR", help="learn a vocabulary shortlist from "
                   "this folder's training pairs (tasks with a source text; beam search then "
                   "scores only each batch's candidate words)")

    p = sub.add_parser("serve", help="a local web page and JSON API over the models")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000)
    for task in registry.tasks():
        p.add_argument(f"--{task.name}", metavar="FILE",
                       help=f"{task.name} checkpoint (default: bundled)")
    p.add_argument("--max-upload-mb", type=finite_float, default=10.0,
                   help="largest request body accepted, in MB (default 10)")
    return parser
