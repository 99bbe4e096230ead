"""The ``seqgen`` command: train / predict / each task's own verb / evaluate / export / serve.

What each sub-command does, over :mod:`seqgen.pipeline` (the flags: :mod:`.parser`; what is printed: :mod:`.outputs`).
Every sub-command loads a checkpoint that rebuilds its own model (the bundled models in
``assets/models`` when ``--ckpt`` is omitted); what an input is comes from the model's task.
Bad input ends in one line on stderr and exit code 2; an item that fails (an undecodable input
line, an unreadable image, a picture that cannot be written) is named on stderr while the others
are still processed, and the exit code is 1; Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from ..decoding.generation import GenerationConfig
from ..io.checkpoint import CheckpointError
from ..io.loaded import LoadedModel
from ..pipeline import Pipeline, bundled_model
from ..tasks import registry
from .inputs import UsageError, input_chunks
from .outputs import run_items, run_prompts
from .settings import config_from
from .parser import build_parser


def verb_task(command: str) -> str:
    return next(t.name for t in registry.tasks() if t.adapter.verb == command)


def load(args: argparse.Namespace) -> Pipeline:
    """The checkpoint a task's verb needs (the bundled one by default), checked for its task."""
    task = verb_task(args.command)
    pipe = Pipeline.load(args.ckpt or None, task=None if args.ckpt else task, device=args.device,
                         precision=args.precision)
    if pipe.task != task:
        verb = pipe.adapter.verb
        raise UsageError(f"{args.ckpt} is a {pipe.task} model; use 'seqgen "
                         f"{verb or 'predict --model'}'")
    return pipe


# ------------------------------------------------------------------------------------------------
def cmd_task(args: argparse.Namespace) -> int:
    """A task's own verb (``seqgen translate`` ...)."""
    pipe = load(args)
    if pipe.adapter.inputs == "prompt":
        return run_prompts(args, pipe, args.prompt or [""])
    return run_items(args, pipe)


def cmd_predict(args: argparse.Namespace) -> int:
    """Any registered task's model: ``--model NAME|FILE``."""
    if args.list:
        for task in registry.tasks():
            adapter = task.adapter
            bundled = bundled_model(task.name) if adapter.bundled else None
            shipped = f"bundled {bundled.name}" if bundled and bundled.is_file() else "no model"
            print(f"{task.name}\t{adapter.inputs}\tseqgen {adapter.verb or 'predict'}\t{shipped}")
            for name, file in adapter.also_bundled.items():  # further models, loaded by name
                if bundled_model(name).is_file():
                    print(f"{name}\t{adapter.inputs}\tseqgen {adapter.verb or 'predict'} --ckpt "
                          f"{name}\tbundled {file} ({task.name})")
        return 0
    if not args.model:
        raise UsageError("name a model: --model NAME (see --list) or --model FILE.pt")
    pipe = Pipeline.load(args.model, device=args.device, precision=args.precision)
    if pipe.adapter.inputs == "prompt":
        prompts = [text for chunk, _ in input_chunks(args.items, args.input) for text in chunk]
        return run_prompts(args, pipe, prompts or [""])
    return run_items(args, pipe)


def cmd_evaluate(args: argparse.Namespace) -> int:
    pipe = Pipeline.load(args.ckpt, device=args.device)
    result = pipe.evaluate(args.data_dir, args.split, config_from(args), limit=args.limit,
                           progress=sys.stderr.isatty(), cache_dir=args.cache_dir)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..io.export import export_checkpoint

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'model.pt'}")
    recorded = config_from(args)  # the parser offers only what a model records
    GenerationConfig(**{"beam": 5, **recorded.given()}).check()  # a beam: the penalty is checked
    shortlist = None
    if args.shortlist_data and args.ensemble:
        raise UsageError("--shortlist-data and --ensemble exclude each other: an ensemble scores "
                         "its whole vocabulary")
    if args.shortlist_data:
        loaded = LoadedModel.from_file(args.ckpt)
        shortlist = registry.get(loaded.task).adapter.learn_shortlist(loaded, args.shortlist_data)
    try:
        export_checkpoint(args.ckpt, out, half=not args.float32, int8=args.int8,
                          decoding=recorded.given(), shortlist=shortlist,
                          ensemble=args.ensemble)
    except OSError as err:
        raise UsageError(f"cannot write {out}: {_reason(err)}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import create_app
        from ..serve.ports import port_problem
        from ..serve.security import exposure_warning
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
    files = {}
    for task in registry.tasks():
        given = getattr(args, task.name.replace("-", "_"))
        if given or (task.adapter.bundled and bundled_model(task.name).is_file()):
            files[task.name] = given or bundled_model(task.name)
    print(f"seqgen serve: loading {', '.join(files)} ...", file=sys.stderr, flush=True)
    app = create_app(files, max_upload_mb=args.max_upload_mb, host=args.host)
    for served in app.state.models.values():  # time bf16 now, not on the first request
        served.pipe.choose_precision()
    print(f"seqgen serve: http://{args.host}:{args.port}/ (API at /docs; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    """A registered task's training run, through the one runner (its flags: ``rest``)."""
    from ..training.runner import run

    return run(registry.get(args.recipe), argv=rest, prog=f"seqgen train {args.recipe}")


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


COMMANDS = {"predict": cmd_predict, "evaluate": cmd_evaluate, "export": cmd_export,
            "serve": cmd_serve}


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
        return COMMANDS.get(args.command, cmd_task)(args)
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
