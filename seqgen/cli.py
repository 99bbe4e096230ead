"""The ``seqgen`` command: train / generate / translate / caption / evaluate / export.

Every sub-command loads a checkpoint that rebuilds its own model (the bundled models in
``assets/models`` when ``--ckpt`` is omitted). Bad input ends in one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Sequence

import torch

from .checkpoint import CheckpointError, LoadedModel
from .search import build_searcher
from .train import pick_device

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {
    "generate": ROOT / "assets" / "models" / "headlines.pt",
    "translate": ROOT / "assets" / "models" / "multi30k-de-en.pt",
    "caption": ROOT / "assets" / "models" / "flickr8k-lite0.pt",
}
RECIPES = {"headlines", "translation", "captioning"}
TASK_OF = {"generate": "headlines", "translate": "translation", "caption": "captioning"}
COMMAND_OF = {task: command for command, task in TASK_OF.items()}


class UsageError(Exception):
    """A problem with what the user asked for; shown as one line."""


def load(args: argparse.Namespace) -> LoadedModel:
    """The checkpoint the command needs (the bundled one by default), checked for its task."""
    path = Path(args.ckpt) if args.ckpt else BUNDLED[args.command]
    if not args.ckpt and not path.exists():
        raise UsageError(f"no bundled model at {path}; pass --ckpt FILE")
    loaded = LoadedModel.from_file(path, device=pick_device(args.device))
    if loaded.task != TASK_OF[args.command]:
        raise UsageError(f"{path} is a {loaded.task} model; use 'seqgen "
                         f"{COMMAND_OF.get(loaded.task, 'evaluate')}'")
    return loaded


def add_search_options(p: argparse.ArgumentParser, *, beam: int = 1) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--beam", type=int, default=beam, help=f"beam size (default {beam}; 1 = greedy)")
    g.add_argument("--n-best", type=int, default=1, help="hypotheses to print per input (beam)")
    g.add_argument("--temperature", type=float, help="sample with this temperature")
    g.add_argument("--top-k", type=int, help="sample from the k most likely symbols")
    g.add_argument("--top-p", type=float, help="nucleus sampling mass")
    g.add_argument("--length-penalty", type=float, default=1.0, help="beam length penalty alpha")
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--no-repeat-ngram", type=int, default=0, help="ban repeating n-grams of this size")
    g.add_argument("--min-length", type=int, default=0)
    g.add_argument("--max-len", type=int, default=100, help="symbols to generate at most")
    g.add_argument("--seed", type=int, help="random seed for sampling")


def searcher_from(args: argparse.Namespace, *, collect_attention: bool = False):
    return build_searcher(beam=args.beam, temperature=args.temperature, top_k=args.top_k,
                          top_p=args.top_p, max_len=args.max_len,
                          length_penalty=args.length_penalty, n_best=args.n_best,
                          repetition_penalty=args.repetition_penalty,
                          no_repeat_ngram=args.no_repeat_ngram, min_length=args.min_length,
                          seed=args.seed, collect_attention=collect_attention)


def read_inputs(positional: Sequence[str], input_file: str | None) -> list[str]:
    """Texts from the command line, else from --input FILE, else one per stdin line."""
    if positional:
        return list(positional)
    if input_file:
        path = Path(input_file)
        if not path.is_file():
            raise UsageError(f"input file not found: {path}")
        return path.read_text(encoding="utf-8").splitlines()
    if sys.stdin.isatty():
        raise UsageError("give the text as an argument, with --input FILE, or on stdin")
    return sys.stdin.read().splitlines()


# ------------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> None:
    from .tasks.headlines import continue_prompts

    loaded = load(args)
    searcher = searcher_from(args)
    n = 1 if args.beam > 1 else args.num  # beam search returns its n-best list instead
    stream = sys.stdout.isatty() and args.beam == 1 and args.n_best == 1
    for prompt in args.prompt or [""]:
        if not stream:
            for text in continue_prompts(loaded, [prompt], searcher=searcher, num_samples=n)[0]:
                print(text, flush=True)
            continue
        for _ in range(n):  # stream one sample at a time, symbol by symbol
            sys.stdout.write(prompt)
            continue_prompts(loaded, [prompt], searcher=searcher,
                             on_step=lambda tok: _stream_symbol(loaded, tok))
            sys.stdout.write("\n")
            sys.stdout.flush()


def _stream_symbol(loaded: LoadedModel, token: torch.Tensor) -> None:
    symbol = loaded.tgt_vocab.decode([int(token[0])])
    if symbol:
        text = loaded.tgt_tokenizer.detokenize(symbol)
        sys.stdout.write(text if loaded.tgt_tokenizer.level == "char" else " " + text)
        sys.stdout.flush()


def cmd_translate(args: argparse.Namespace) -> None:
    loaded = load(args)
    from .tasks.translation import translate_cli

    translate_cli(loaded, args, searcher_from(args, collect_attention=bool(args.attention)))


def cmd_caption(args: argparse.Namespace) -> int:
    loaded = load(args)
    from .tasks.captioning import caption_cli

    failures = caption_cli(loaded, args, searcher_from(args, collect_attention=bool(args.attention)))
    return 1 if failures else 0


def cmd_evaluate(args: argparse.Namespace) -> None:
    loaded = LoadedModel.from_file(args.ckpt, device=pick_device(args.device))
    if loaded.task == "headlines":
        from .tasks.headlines import evaluate_split
        result = evaluate_split(loaded, args.data_dir, args.split, limit=args.limit)
    elif loaded.task == "translation":
        from .tasks.translation import evaluate_split
        result = evaluate_split(loaded, args.data_dir, args.split, beam=args.beam or 5,
                                limit=args.limit)
    elif loaded.task == "captioning":
        from .tasks.captioning import evaluate_split
        result = evaluate_split(loaded, args.data_dir, args.split, beam=args.beam or 3,
                                limit=args.limit)
    else:
        raise UsageError(f"unknown task {loaded.task!r} in {args.ckpt}")
    print(json.dumps(result, ensure_ascii=False))


def cmd_export(args: argparse.Namespace) -> None:
    from .checkpoint import export_checkpoint

    export_checkpoint(args.ckpt, args.out, half=not args.float32)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)", file=sys.stderr)


def cmd_train(args: argparse.Namespace, rest: list[str]) -> None:
    script = ROOT / "recipes" / f"{args.recipe}.py"
    if not script.is_file():
        raise UsageError(f"recipe not found at {script}; run it from a source checkout")
    sys.argv = [str(script), *rest]
    runpy.run_path(str(script), run_name="__main__")


# ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgen", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="run a recipe: headlines, translation or captioning",
                       add_help=False)
    p.add_argument("recipe", choices=sorted(RECIPES))

    p = sub.add_parser("generate", help="continue prompts with a text model (headlines)")
    p.add_argument("--prompt", action="append", help="prompt text (repeatable; default empty)")
    p.add_argument("-n", "--num", type=int, default=1, help="samples per prompt")
    add_search_options(p)

    p = sub.add_parser("translate", help="translate sentences (argument, --input FILE or stdin)")
    p.add_argument("text", nargs="*", help="sentences to translate")
    p.add_argument("--input", help="file with one sentence per line")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--attention", help="write the source x target attention heatmap to this PNG")
    add_search_options(p, beam=5)

    p = sub.add_parser("caption", help="caption images")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--attention", help="folder for per-image attention strips (PNG)")
    add_search_options(p, beam=3)

    p = sub.add_parser("evaluate", help="score a checkpoint on a data split; prints JSON")
    p.add_argument("--data-dir", required=True, help="data folder in the data set's standard layout")
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, help="beam size (translation 5, captioning 3)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N examples")

    p = sub.add_parser("export", help="write a model-only copy for shipping (half precision)")
    p.add_argument("--out", required=True, help="output checkpoint path")
    p.add_argument("--float32", action="store_true", help="keep full precision")

    for name, p in sub.choices.items():
        if name != "train":
            p.add_argument("--ckpt", required=name in ("evaluate", "export"),
                           help="checkpoint (default: the bundled model)")
            p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["train"]:
        args, rest = parser.parse_known_args(argv)
    else:
        args, rest = parser.parse_args(argv), []
    try:
        if args.command == "train":
            cmd_train(args, rest)
        else:
            status = {"generate": cmd_generate, "translate": cmd_translate, "caption": cmd_caption,
                      "evaluate": cmd_evaluate, "export": cmd_export}[args.command](args)
            if status:  # e.g. some images could not be captioned (each was named on stderr)
                return int(status)
    except (UsageError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"seqgen {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
