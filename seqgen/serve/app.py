"""The web app and JSON API over :mod:`seqgen.pipeline` (``seqgen serve``); no inference of its own.

    GET  /healthz                  {"status": "ok"}
    GET  /api/models               what is loaded: task, file size, parameters, vocabulary
    POST /api/generate             {"prompt", "temperature", "top_k", "top_p", "n", "max_len",
                                    "seed"} -> {"samples": [{"text", "score"}, ...]}
    GET  /api/generate/stream      the same as query parameters; server-sent events, then "end"
    POST /api/translate            {"texts": [...], "beam", "n_best", "max_len", "attention"}
    POST /api/caption              multipart: files (repeatable), beam, max_len, attention

Every list comes back one entry per input, in order; an input that fails (an empty text, an image
that cannot be decoded or has too many pixels) carries its ``error`` and the others still get
results. Whole requests are refused with a JSON ``{"error": ...}``: 422 for a parameter out of range
(the CLI's checks, :meth:`SearchOptions.check`), 413 for a body over ``max_upload_mb``, 415 when an
uploaded file is no image format at all. Texts longer than ``max_text_chars`` are cut, with a
warning. Requests that arrive together share one batched search (:mod:`.batching`).
"""
from __future__ import annotations

import io
import json
import math
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator, Mapping

from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..options import Output, Result, SearchOptions
from ..pipeline import Pipeline
from ..text import text_problem
from .batching import Batcher
from .errors import install_error_handlers
from .fields import SEED_MAX, Natural, Real, Seed, Text
from .limits import BodyLimit
from .security import HostGuard, allowed_hosts

STATIC = Path(__file__).with_name("static")
LIMITS = {"n": 64, "max_len": 512, "beam": 32, "texts": 256, "files": 32}  # work per request


@dataclass
class Served:
    """One loaded model, the file it came from, and the queue its requests go through."""

    pipe: Pipeline
    path: Path | None
    lock: threading.Lock
    batcher: Batcher


def serve_models(models: Mapping[str, Pipeline | str | Path]) -> dict[str, Served]:
    """Pipelines by task, from loaded pipelines or checkpoint files (checked for their task)."""
    served = {}
    for task, model in models.items():
        path = None if isinstance(model, Pipeline) else Path(model)
        pipe = model if isinstance(model, Pipeline) else Pipeline.load(path, task=task)
        if pipe.task != task:
            raise ValueError(f"the {task} model given is a {pipe.task} model")
        lock = threading.Lock()
        served[task] = Served(pipe, path, lock, Batcher(_call(pipe), lock=lock, name=task))
    return served


def _call(pipe: Pipeline):
    """What one batched call of each task runs; ``key`` holds the options every item shares."""
    def call(key, items):
        if pipe.task == "headlines":
            options, n = key
            return pipe.generate(items, n=n, options=options)
        options, attention = key
        if pipe.task == "translation":
            return pipe.translate(items, options, attention=attention)
        return pipe.caption(items, options, attention=attention)
    return call


# ------------------------------------------------------------------------------------------------
class GenerateRequest(BaseModel):
    prompt: Text = ""
    temperature: Real | None = None
    top_k: Natural | None = None
    top_p: Real | None = None
    n: Natural = 1
    max_len: Natural = 100
    seed: Seed | None = None


class TranslateRequest(BaseModel):
    texts: list[str]  # each checked alone (text_problem): a bad one is that entry's error
    beam: Natural = 5
    n_best: Natural = 1
    max_len: Natural = 120
    attention: bool = False


def checked(pipe: Pipeline, **changes) -> SearchOptions:
    """The task's default search with ``changes``, range-checked as the CLI does (422 if not)."""
    for name in ("n", "max_len", "beam"):
        if name in changes and changes[name] > LIMITS[name]:
            raise HTTPException(422, f"{name} must be at most {LIMITS[name]} on this server "
                                     f"(got {changes[name]})")
    changes.pop("n", None)
    options = pipe.default_options(**changes)
    try:
        options.check()
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return options


def number(x: float) -> float | None:
    return round(float(x), 4) if math.isfinite(x) else None  # JSON has no NaN or infinity


def grid(attention) -> list[list[float]]:
    return [[round(float(w), 4) for w in row] for row in attention.float().cpu().tolist()]


def cut(text: str, limit: int) -> tuple[str, list[str]]:
    if len(text) <= limit:
        return text, []
    return text[:limit], [f"text of {len(text)} characters cut to the first {limit}"]


def is_image(data: bytes) -> bool:
    """Whether the bytes start like an image format PIL knows (the header only; no decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data)).close()
    except UnidentifiedImageError:
        return False
    except Exception:  # noqa: BLE001 - a known format, damaged or too large: a per-item error
        return True
    return True


# ------------------------------------------------------------------------------------------------
def create_app(pipelines: Mapping[str, Pipeline | str | Path], *, max_upload_mb: float = 10,
               max_text_chars: int = 2000, host: str = "127.0.0.1") -> FastAPI:
    """The app serving ``pipelines`` (task -> pipeline or checkpoint file).

    Args:
        max_upload_mb: the largest request body (all uploaded files together); larger is a 413.
        max_text_chars: longer texts and prompts are cut to this many characters, with a warning.
        host: the address served; requests naming another host are refused (:mod:`.security`).
    """
    app = FastAPI(title="seqgen", description=__doc__.split("\n\n")[0])
    app.state.models = serve_models(pipelines)
    app.state.limit = int(max_upload_mb * 1024 * 1024)
    app.state.max_text_chars = max_text_chars
    app.add_middleware(BodyLimit, limit=app.state.limit)
    app.add_middleware(HostGuard, hosts=allowed_hosts(host))  # outermost: checked first
    install_error_handlers(app)  # Busy -> 503, a gone client, anything else -> JSON 500
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": err.detail}, err.status_code)


async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                         for e in err.errors())
    return JSONResponse({"error": problems}, 422)


def model(request: Request, task: str) -> Served:
    models = request.app.state.models
    if task not in models:
        raise HTTPException(404, f"no {task} model is loaded; start the server with --{task} FILE")
    return models[task]


# ------------------------------------------------------------------------------------------------
router = APIRouter()


@router.get("/", include_in_schema=False)
def index():
    return FileResponse(STATIC / "index.html")


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


@router.get("/api/models")
def list_models(request: Request):
    return {"models": [describe(task, s) for task, s in request.app.state.models.items()]}


@router.post("/api/generate")
async def generate(req: GenerateRequest, request: Request):
    served = model(request, "headlines")
    options = checked(served.pipe, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
                      n=req.n, max_len=req.max_len, seed=req.seed)
    if req.n < 1:
        raise HTTPException(422, f"n must be >= 1 (got {req.n})")
    if req.n > 1 and not options.sampling:
        raise HTTPException(422, "several samples need sampling (a temperature, top_k or top_p)")
    prompt, warns = cut(req.prompt, request.app.state.max_text_chars)
    [result] = await run(served, (options, req.n), [prompt], request)
    return {"samples": [output(o) for o in result.outputs], "warnings": warns}


@router.get("/api/generate/stream")
def stream(request: Request, prompt: str = "", temperature: float | None = None,
           top_k: int | None = None, top_p: float | None = None, max_len: int = 100,
           seed: Annotated[int | None, Query(ge=0, le=SEED_MAX)] = None):
    """Server-sent events: ``data: {"text": piece}`` per piece (the prompt first), then
    ``event: end``; a failure mid-way is an ``event: error`` with ``{"error": ...}``."""
    served = model(request, "headlines")
    options = checked(served.pipe, temperature=temperature, top_k=top_k, top_p=top_p,
                      max_len=max_len, seed=seed)
    prompt = cut(prompt, request.app.state.max_text_chars)[0]
    return StreamingResponse(events(served, prompt, options), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/api/translate")
async def translate(req: TranslateRequest, request: Request):
    """One entry per text, in order; an empty text is an entry with ``error``."""
    served = model(request, "translation")
    options = checked(served.pipe, beam=req.beam, n_best=req.n_best, max_len=req.max_len)
    if len(req.texts) > LIMITS["texts"]:
        raise HTTPException(422, f"at most {LIMITS['texts']} texts per request "
                                 f"(got {len(req.texts)})")
    cuts = [cut(t, request.app.state.max_text_chars) for t in req.texts]
    problems = [text_problem(t) or (None if t.strip() else "empty text") for t, _ in cuts]
    todo = [text for (text, _), problem in zip(cuts, problems) if not problem]
    found = iter(await run(served, (options, req.attention), todo, request) if todo else [])
    entries = []
    for (text, warns), problem in zip(cuts, problems):
        result = Result(error=problem) if problem else next(found)
        result.warnings[:0] = warns
        entries.append(translation(result, req.attention))
    return {"translations": entries}


@router.post("/api/caption")
async def caption(request: Request, files: list[UploadFile] = File(...), beam: int = Form(3),
                  max_len: int = Form(40), attention: bool = Form(False)):
    """One entry per file, in order; an image that cannot be decoded is an entry with ``error``,
    a file that is no image format at all refuses the request (415)."""
    served = model(request, "captioning")
    options = checked(served.pipe, beam=beam, max_len=max_len)
    if len(files) > LIMITS["files"]:
        raise HTTPException(422, f"at most {LIMITS['files']} files per request")
    blobs, limit = [await f.read() for f in files], request.app.state.limit
    if sum(map(len, blobs)) > limit:  # a body sent without its length
        raise HTTPException(413, f"upload is over the {limit:,}-byte limit")
    names = [f.filename or f"file {i + 1}" for i, f in enumerate(files)]
    for name, blob in zip(names, blobs):
        if not is_image(blob):
            raise HTTPException(415, f"{name}: not an image file (or an unsupported format)")
    with tempfile.TemporaryDirectory(prefix="seqgen-serve-") as folder:
        paths = [str(Path(folder) / str(i)) for i in range(len(blobs))]  # never a client's name
        for path, blob in zip(paths, blobs):
            Path(path).write_bytes(blob)
        results = await run(served, (options, attention), paths, request)
    return {"captions": [captioned(name, path, r, attention)
                         for name, path, r in zip(names, paths, results)]}


# ------------------------------------------------------------------------------------------------
async def run(served: Served, key: tuple, items: list, request: Request) -> list:
    """One job through the model's queue, cancelled if the client leaves; a ValueError from the
    pipeline is the request's fault."""
    try:
        return await served.batcher.run(key, items, gone=request.is_disconnected)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None


def events(served: Served, prompt: str, options: SearchOptions) -> Iterator[str]:
    """Server-sent events: one ``data: {"text": piece}`` per piece, then ``event: end``."""
    pieces = served.pipe.stream(prompt, options)
    try:
        while True:
            with served.lock:  # one step at a time, between the batched calls on the same model
                piece = next(pieces, None)
            if piece is None:
                break
            yield f"data: {json.dumps({'text': piece})}\n\n"
    except Exception as err:  # noqa: BLE001 - reported to the client; the server stays up
        yield f"event: error\ndata: {json.dumps({'error': str(err)})}\n\n"
    yield "event: end\ndata: {}\n\n"


def output(o: Output) -> dict:
    return {"text": o.text, "score": number(o.score)}


def translation(result: Result, attention: bool) -> dict:
    best = result.outputs[0] if result.outputs else None
    entry = {"text": result.text if result.ok else None,
             "score": number(result.score) if best else None,
             "n_best": [output(o) for o in result.outputs], "source": result.source,
             "target": best.symbols if best else [], "warnings": result.warnings,
             "error": result.error}
    if attention:  # rows: target symbols (and the end, if chosen); columns: source and its end
        weights = best.attention if best else None
        entry["attention"] = (grid(weights[: len(best.symbols) + 1, : len(result.source) + 1])
                              if weights is not None else None)
    return entry


def captioned(name: str, path: str, result: Result, attention: bool) -> dict:
    if not result.ok:
        return {"filename": name, "text": None, "score": None,
                "error": result.error.replace(path, name)}
    best = result.outputs[0]
    entry = {"filename": name, "text": best.text, "score": number(best.score),
             "words": best.symbols, "error": None}
    if attention and best.attention is not None:
        cells = best.attention.size(1)
        entry.update(attention=grid(best.attention), grid=int(round(cells ** 0.5)))
    return entry


def describe(task: str, served: Served) -> dict:
    loaded = served.pipe.loaded
    info = {"task": task, "file": served.path.name if served.path else None,
            "file_size": served.path.stat().st_size if served.path else None,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "vocab_size": len(loaded.tgt_vocab)}
    if loaded.src_vocab is not None:
        info["src_vocab_size"] = len(loaded.src_vocab)
    if task == "translation":
        signature = find_signature(loaded.task_config)
        if signature:
            info["sacrebleu_signature"] = signature
    return info


def find_signature(config: object) -> str | None:
    """A sacreBLEU signature stored anywhere in a checkpoint's task config (``nrefs:1|...``)."""
    if isinstance(config, dict):
        for key, value in config.items():
            if key in ("signature", "sacrebleu_signature", "bleu_signature") and isinstance(value,
                                                                                         str):
                return value
            found = find_signature(value)
            if found:
                return found
    return None

