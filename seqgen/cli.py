"""The ``seqgen`` command: train / generate / translate / caption / evaluate / export / serve.

What each sub-command does, over :mod:`seqgen.pipeline` (the flags: :mod:`seqgen.cli_parser`).
Every sub-command loads a checkpoint that rebuilds its own model (the bundled models in
``assets/models`` when ``--ckpt`` is omitted).
Bad input ends in one line on stderr and exit code 2; an item that fails (an undecodable input
line, an unreadable image, a picture that cannot be written) is named on stderr while the others
are still processed, and the exit code is 1; Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import sys
from pathlib import Path
from typing import Sequence

from .checkpoint import CheckpointError, LoadedModel
from .fileio import decode_lines, read_bytes
from .cli_parser import TASK_OF, build_parser
from .options import TUNED, Output, SearchOptions, given_tuning
from .pipeline import Pipeline, bundled_model
from .resources import resource_path

COMMAND_OF = {task: command for command, task in TASK_OF.items()}


class UsageError(Exception):
    """A problem with what the user asked for; shown as one line."""


def options_from(args: argparse.Namespace, pipe: Pipeline) -> SearchOptions:
    """The command line's search options over the model's defaults (its tuned beam and length
    penalty, or the task's usual ones)."""
    given = tuned_given(args)
    options = pipe.default_options(
        n_best=args.n_best, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, no_repeat_ngram=args.no_repeat_ngram,
        min_length=args.min_length, max_len=args.max_len, seed=args.seed,
        shortlist=not getattr(args, "no_shortlist", False), **given)
    options.check()
    return options


def tuned_given(args: argparse.Namespace) -> dict:
    """--beam and --length-penalty where given (else the model's own apply)."""
    return given_tuning(**{name: getattr(args, name) for name in TUNED})


def load(args: argparse.Namespace) -> Pipeline:
    """The checkpoint the command needs (the bundled one by default), checked for its task."""
    task = TASK_OF[args.command]
    pipe = Pipeline.load(args.ckpt or None, task=None if args.ckpt else task, device=args.device,
                         precision=args.precision)
    if pipe.task != task:
        raise UsageError(f"{args.ckpt} is a {pipe.task} model; use 'seqgen "
                         f"{COMMAND_OF.get(pipe.task, 'evaluate')}'")
    return pipe


def read_inputs(positional: Sequence[str], input_file: str | None) -> tuple[list[str], list[int]]:
    """Texts from the command line, else from --input FILE, else one per stdin line (split on
    newlines only), and the numbers of the lines that are not valid UTF-8."""
    if positional:
        texts, bad = [], []
        for number, text in enumerate(positional, start=1):
            try:  # undecodable bytes reach argv as lone surrogates
                texts.append(text.encode("utf-8", "surrogateescape").decode("utf-8"))
            except UnicodeError:
                texts.append("")
                bad.append(number)
        return texts, bad
    if input_file:
        if not Path(input_file).exists():
            raise UsageError(f"input file not found: {input_file}")
        return decode_lines(read_bytes(input_file))
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("give the text as an argument, with --input FILE, or on stdin")
    return decode_lines(sys.stdin.buffer.read())


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
        print(text if label is None or label == "" else f"{label}\t{text}")


# ------------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    pipe = load(args)
    options = options_from(args, pipe)
    if args.num > 1 and not options.sampling:
        raise UsageError("-n needs sampling (--temperature, --top-k or --top-p); with --beam ask "
                         "for --n-best N instead")
    live = sys.stdout.isatty() and args.num == 1 and options.beam == 1
    for prompt in args.prompt or [""]:
        if live:  # symbol by symbol; the same samples as in a pipe for the same --seed
            for piece in pipe.stream(prompt, options):
                sys.stdout.write(one_line(piece))
                sys.stdout.flush()
            sys.stdout.write("\n")
            continue
        for out in pipe.iter_samples(prompt, n=args.num, options=options):
            print(one_line(out.text), flush=False)
        sys.stdout.flush()
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .tasks.translation.inference import save_attention_heatmap

    texts, bad = read_inputs(args.text, args.input)
    pipe = load(args)
    options = options_from(args, pipe)
    pictures = attention_files(args.attention, len(texts)) if args.attention else []
    failures = len(bad)
    for number in bad:
        warn(args, f"warning: line {number} is not valid UTF-8; its output line is empty")
    results = pipe.iter_translate(texts, options, attention=bool(args.attention),
                                  batch_size=args.batch_size)
    for i, (text, result) in enumerate(zip(texts, results)):
        for message in result.warnings:
            warn(args, f"warning: line {i + 1}: {message}")
        print_outputs(str(i) if args.n_best > 1 else None, result.outputs, args.n_best)
        best = result.outputs[0] if result.outputs else None
        if pictures and best is not None and best.attention is not None and text.strip():
            try:
                save_attention_heatmap(result.source, best.symbols, best.attention, pictures[i])
            except (OSError, ValueError) as err:
                warn(args, f"error: line {i + 1}: cannot write {pictures[i]}: {_reason(err)}")
                failures += 1
            else:
                warn(args, f"attention written to {pictures[i]}")
    sys.stdout.flush()
    return 1 if failures else 0


def attention_files(target: str, n: int) -> list[Path]:
    """``out.png`` for one sentence; ``out-1.png``, ``out-2.png``, ... (line numbers) for several."""
    path = Path(target)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--attention wants a .png file name, got {target}")
    if n == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(n)]


def cmd_caption(args: argparse.Namespace) -> int:
    from .tasks.captioning.inference import save_attention_strip

    pipe = load(args)
    options = options_from(args, pipe)
    names = strip_names(args.images)
    failures = 0
    results = pipe.iter_caption(args.images, options, attention=bool(args.attention),
                                batch_size=args.batch_size)
    for path, name, result in zip(args.images, names, results):
        if not result.ok:
            warn(args, f"error: {result.error}")
            failures += 1
            continue
        print_outputs(path, result.outputs, args.n_best)
        sys.stdout.flush()
        best = result.outputs[0]
        if args.attention and best.attention is not None:
            out = Path(args.attention) / name
            try:
                save_attention_strip(path, best.symbols, best.attention, pipe.backbone, out)
            except (OSError, ValueError) as err:
                warn(args, f"error: {path}: cannot write {out}: {_reason(err)}")
                failures += 1
            else:
                warn(args, f"attention written to {out}")
    return 1 if failures else 0


def strip_names(paths: Sequence[str]) -> list[str]:
    """``STEM-attention.png`` per image; images sharing a stem also get their input position."""
    stems = [Path(p).stem for p in paths]
    return [f"{s}-attention.png" if stems.count(s) == 1 else f"{s}-{i + 1}-attention.png"
            for i, s in enumerate(stems)]


def cmd_evaluate(args: argparse.Namespace) -> int:
    pipe = Pipeline.load(args.ckpt, device=args.device, precision=args.precision)
    result = pipe.evaluate(args.data_dir, args.split, beam=args.beam,
                           length_penalty=args.length_penalty, limit=args.limit,
                           progress=sys.stderr.isatty(), shortlist=not args.no_shortlist)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import export_checkpoint

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'model.pt'}")
    decoding = tuned_given(args)
    SearchOptions(**{"beam": 5, **decoding}).check()  # a beam, so the length penalty is checked
    shortlist = None
    if args.shortlist_data:
        from .tasks.translation.inference import learn_shortlist

        loaded = LoadedModel.from_file(args.ckpt)
        if loaded.task != "translation":
            raise UsageError(f"--shortlist-data is for translation models; {args.ckpt} is a "
                             f"{loaded.task} model")
        shortlist = learn_shortlist(loaded, args.shortlist_data)
    try:
        export_checkpoint(args.ckpt, out, half=not args.float32, int8=args.int8,
                          decoding=decoding, shortlist=shortlist)
    except OSError as err:
        raise UsageError(f"cannot write {out}: {_reason(err)}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .serve import create_app
        from .serve.ports import port_problem
        from .serve.security import exposure_warning
    except ImportError as err:
        raise UsageError(f"serve needs {err.name}: pip install -e \".[serve]\"") from None
    if args.max_upload_mb <= 0 or args.port > 65535:
        raise UsageError("--max-upload-mb must be > 0 and --port at most 65535")
    problem = port_problem(args.host, args.port)  # before anything says it serves
    if problem:
        raise UsageError(problem)
    warning = exposure_warning(args.host)
    if warning:
        print(f"seqgen serve: {warning}", file=sys.stderr, flush=True)
    files = {task: getattr(args, task) or bundled_model(task) for task in TASK_OF.values()}
    print(f"seqgen serve: loading {', '.join(files)} ...", file=sys.stderr, flush=True)
    app = create_app(files, max_upload_mb=args.max_upload_mb, host=args.host)
    for served in app.state.models.values():  # time bf16 now, not on the first request
        served.pipe.precision  # noqa: B018
    print(f"seqgen serve: http://{args.host}:{args.port}/ (API at /docs; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    script = resource_path("recipes", f"{args.recipe}.py")
    if not script.is_file():
        raise UsageError(f"recipe not found at {script}; reinstall seqgen")
    sys.argv = [str(script), *rest]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


COMMANDS = {"generate": cmd_generate, "translate": cmd_translate, "caption": cmd_caption,
            "evaluate": cmd_evaluate, "export": cmd_export, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv[:1] == ["train"]:
            args, rest = parser.parse_known_args(argv)
        else:
            args, rest = parser.parse_args(argv), []
    except SystemExit as done:  # --help, or a bad argument already reported in one line
        return int(done.code or 0)
    logging.basicConfig(level=logging.INFO if args.command == "evaluate" else logging.WARNING,
                        format=f"seqgen {args.command}: %(message)s")
    try:
        if args.command == "train":
            return cmd_train(args, rest)
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. `seqgen generate -n 1000 | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (UsageError, CheckpointError, ValueError, OSError) as err:
        print(f"seqgen {args.command}: error: {_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seqgen {args.command}: interrupted", file=sys.stderr)
        return 130

if __name__ == "__main__":
    sys.exit(main())
