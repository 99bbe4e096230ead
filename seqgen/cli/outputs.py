"""What the verbs print: one output line per input (or per sample, or per n-best entry, with its
score), prompts streamed symbol by symbol at a terminal, a failed item named on stderr while the
others go on, and attention pictures written beside."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..pipeline import Pipeline
from ..results import Output, Result
from .inputs import UsageError, input_chunks
from .settings import config_from


def one_line(text: str) -> str:
    """Output text that cannot break the one-line-per-input layout."""
    return text.replace("\r", " ").replace("\n", " ")


def warn(args: argparse.Namespace, message: str) -> None:
    print(f"seqgen {args.command}: {message}", file=sys.stderr, flush=True)


def print_outputs(label: str | None, outputs: list[Output], n_best: int) -> None:
    if n_best > 1:
        for out in outputs:
            print(f"{label}\t{out.score:.4f}\t{one_line(out.text)}")
    else:
        text = one_line(outputs[0].text) if outputs else ""
        print(text if not label else f"{label}\t{text}")


# ------------------------------------------------------------------------------------------------
def run_prompts(args: argparse.Namespace, pipe: Pipeline, prompts: Sequence[str]) -> int:
    """Samples (or the best text) for each prompt; streamed symbol by symbol at a terminal."""
    config = pipe.generation_config(config_from(args))
    if args.num > 1 and not config.sampling:
        raise UsageError("-n needs sampling (--temperature, --top-k or --top-p); with --beam ask "
                         "for --n-best N instead")
    live = sys.stdout.isatty() and args.num == 1 and config.beam == 1
    # one text asked for: printed as written (a stream model's lines and all); several: one
    # line each, so a pipe can tell them apart
    shown = (lambda text: text) if len(prompts) == 1 and args.num == 1 else one_line
    for prompt in prompts:
        if live:  # symbol by symbol; the same samples as in a pipe for the same --seed
            for piece in pipe.stream(prompt, config):
                sys.stdout.write(shown(piece))
                sys.stdout.flush()
            sys.stdout.write("\n")
            continue
        for out in pipe.iter_samples(prompt, config, n=args.num):
            print(shown(out.text), flush=False)
        sys.stdout.flush()
    return 0


def run_items(args: argparse.Namespace, pipe: Pipeline) -> int:
    """One output line per input (text line or image path), answered chunk by chunk."""
    config = pipe.generation_config(config_from(args))
    image = pipe.adapter.inputs == "image"
    failures, offset, n_best = 0, 0, config.n_best
    for items, bad in input_chunks(args.items, args.input):
        if image:
            items = [item.strip() for item in items]
        for number in bad:
            warn(args, f"warning: line {offset + number} is not valid UTF-8; its output line "
                 "is empty")
        failures += len(bad)
        pictures = attention_targets(args, pipe, items, offset)
        results = pipe.iter_predict(items, config, attention=bool(pictures),
                                    batch_size=args.batch_size)
        for i, (item, result) in enumerate(zip(items, results)):
            failures += report(args, pipe, offset + i, item, result, n_best, pictures)
        sys.stdout.flush()
        offset += len(items)
    return 1 if failures else 0


def report(args: argparse.Namespace, pipe: Pipeline, index: int, item: str, result: Result,
           n_best: int, pictures: dict[int, Path]) -> int:
    """Prints one input's outputs (or its error) and draws its picture; returns the failures."""
    image = pipe.adapter.inputs == "image"
    if not result.ok:
        warn(args, f"error: {result.error}" if image else f"error: line {index + 1}: "
             f"{result.error}")
        if not image:
            print("")
        return 1
    for message in result.warnings:
        warn(args, f"warning: line {index + 1}: {message}")
    label = item if image else (str(index) if n_best > 1 else None)
    print_outputs(label, result.outputs, n_best)
    if index not in pictures or not result.outputs or result.outputs[0].attention is None:
        return 0
    try:
        pipe.save_attention(item, result, pictures[index])
    except (OSError, ValueError) as err:
        warn(args, f"error: {item if image else f'line {index + 1}'}: cannot write "
             f"{pictures[index]}: {_reason(err)}")
        return 1
    warn(args, f"attention written to {pictures[index]}")
    return 0


def attention_targets(args: argparse.Namespace, pipe: Pipeline, items: Sequence[str],
                      offset: int) -> dict[int, Path]:
    """Picture file per input index: images get ``DIR/STEM-attention.png``; text lines get
    ``out.png`` for one line, ``out-1.png``, ``out-2.png``, ... (line numbers) for several."""
    target = getattr(args, "attention", None)
    if not target:
        return {}
    if pipe.adapter.inputs == "image":
        stems = [Path(p).stem for p in items]
        return {offset + i: Path(target) / (f"{s}-attention.png" if stems.count(s) == 1
                                            else f"{s}-{offset + i + 1}-attention.png")
                for i, s in enumerate(stems)}
    path = Path(target)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--attention wants a .png file name, got {target}")
    if len(items) == 1 and offset == 0 and (args.items or args.input):
        return {0: path} if items[0].strip() else {}
    return {offset + i: path.with_name(f"{path.stem}-{offset + i + 1}{path.suffix}")
            for i, text in enumerate(items) if text.strip()}


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__
