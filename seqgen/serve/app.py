"""The web app and JSON API over :mod:`seqgen.pipeline` (``seqgen serve``), generic over the task
registry: every loaded model gets the same endpoints, named by its task (or its CLI verb).

    GET  /healthz               {"status": "ok"}
    GET  /api/models            per model: task, verb, inputs, panel, generation defaults, size
    POST /api/{task}            text and prompt tasks: JSON {"inputs": [...], "n", "attention",
                                and any generation setting: "beam", "temperature", "top_k", ...}
                                image tasks: multipart "files" (repeatable) and the same fields
                                -> {"results": [{"text", "score", "outputs", "error", ...}, ...]}
    GET  /api/{task}/stream     prompt tasks: ?prompt=...&temperature=...; server-sent events

Generation settings resolve as everywhere else (task default < the model's recorded settings <
the request's), so the page, the API and ``seqgen`` give the same output for the same input. Every
list comes back one entry per input, in order; an input that fails (an empty text, a text that is
not valid Unicode, a file that is not an image) carries its ``error`` and the others still get
results. Whole requests are refused with a JSON ``{"error": ...}``: 422 for a setting out of range,
413 for a body over ``max_upload_mb``, 415 when no uploaded file is an image. Texts longer than
``max_text_chars`` are cut, with a warning. Requests that arrive together share one batched search
(:mod:`.batching`), and a request's result never depends on which others it was batched with.
"""
from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..decoding.generation import GenerationConfig
from ..pipeline import Pipeline
from ..results import Result
from .answers import PredictResponse, describe, entry, request_body
from ..tasks import registry
from .batching import Batcher
from .errors import install_error_handlers
from .limits import BodyLimit
from .requests import LIMITS, PredictRequest, form_request, is_image
from .security import HostGuard, allowed_hosts

STATIC = Path(__file__).with_name("static")


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
    """One batched call; ``key`` holds what every merged item shares (settings, n, attention)."""
    def call(key, items):
        config, n, attention = key
        return pipe.predict(items, config, n=n, attention=attention)
    return call


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


def served_model(request: Request, name: str) -> Served:
    """The model of task ``name`` (or of the task whose CLI verb is ``name``)."""
    models = request.app.state.models
    task = next((t.name for t in registry.tasks() if name in (t.name, t.adapter.verb)), name)
    if task not in models:
        raise HTTPException(404, f"no {task} model is loaded; start the server with --{task} FILE")
    return models[task]


def settings(served: Served, req: PredictRequest) -> GenerationConfig:
    """The request's generation settings over the model's, checked as the CLI checks them."""
    for name in ("n", "max_len", "beam"):
        value = getattr(req, name)
        if value is not None and value > LIMITS[name]:
            raise HTTPException(422, f"{name} must be at most {LIMITS[name]} on this server "
                                     f"(got {value})")
    if req.n < 1:
        raise HTTPException(422, f"n must be >= 1 (got {req.n})")
    try:
        config = served.pipe.generation_config(req.generation())
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    if req.n > 1 and not config.sampling:
        raise HTTPException(422, "several samples need sampling (a temperature, top_k or top_p)")
    return config


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
    return {"models": [describe(task, s.pipe, s.path)
                       for task, s in request.app.state.models.items()]}


@router.post("/api/{name}", response_model=None, openapi_extra=request_body(),
             responses={200: {"model": PredictResponse, "description": "one entry per input"}})
async def predict(name: str, request: Request):
    """One entry per input, in order; a bad input is an entry with ``error``."""
    served = served_model(request, name)
    if served.pipe.adapter.inputs == "image":
        return await predict_images(served, request)
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(422, "the body must be JSON") from None
    req = PredictRequest.parse(body)
    config = settings(served, req)
    texts = req.texts()
    if len(texts) > LIMITS["inputs"]:
        raise HTTPException(422, f"at most {LIMITS['inputs']} inputs per request (got "
                                 f"{len(texts)})")
    limit, prompts = request.app.state.max_text_chars, served.pipe.adapter.inputs == "prompt"
    cuts = [cut(t, limit) for t in texts]
    todo = [text for text, _ in cuts if prompts or text.strip()]
    found = iter(await run(served, (config, req.n, req.attention), todo, request) if todo
                 else [])
    entries = []
    for text, warns in cuts:
        result = next(found) if prompts or text.strip() else Result(error="empty text")
        result.warnings[:0] = warns
        entries.append(entry(served.pipe.adapter, result, req.attention))
    return {"results": entries}


async def predict_images(served: Served, request: Request) -> dict:
    """Multipart uploads: one entry per file; 415 only when no file is an image at all."""
    form = await request.form()
    files = [f for f in form.getlist("files") if hasattr(f, "read")]
    if not files:
        raise HTTPException(422, "no files: send them as multipart field 'files'")
    if len(files) > LIMITS["files"]:
        raise HTTPException(422, f"at most {LIMITS['files']} files per request")
    req = form_request(form)
    config = settings(served, req)
    blobs, limit = [await f.read() for f in files], request.app.state.limit
    if sum(map(len, blobs)) > limit:  # a body sent without its length
        raise HTTPException(413, f"upload is over the {limit:,}-byte limit")
    names = [f.filename or f"file {i + 1}" for i, f in enumerate(files)]
    images = [is_image(blob) for blob in blobs]
    if not any(images):
        raise HTTPException(415, f"{names[0]}: not an image file (or an unsupported format)"
                            if len(names) == 1 else "none of the files is an image")
    with tempfile.TemporaryDirectory(prefix="seqgen-serve-") as folder:
        paths = [str(Path(folder) / str(i)) for i in range(len(blobs))]  # never a client's name
        for path, blob in zip(paths, blobs):
            Path(path).write_bytes(blob)
        todo = [p for p, ok in zip(paths, images) if ok]
        found = iter(await run(served, (config, 1, req.attention), todo, request))
        results = [next(found) if ok else Result(error=f"{path}: not an image file (or an "
                                                       "unsupported format)")
                   for path, ok in zip(paths, images)]
    return {"results": [{"filename": name, **entry(served.pipe.adapter, r, req.attention, path,
                                                    name)}
                        for name, path, r in zip(names, paths, results)]}


@router.get("/api/{name}/stream")
def stream(name: str, request: Request):
    """Server-sent events: ``data: {"text": piece}`` per piece (the prompt first), then
    ``event: end``; a failure mid-way is an ``event: error`` with ``{"error": ...}``."""
    served = served_model(request, name)
    if served.pipe.adapter.inputs != "prompt":
        raise HTTPException(404, f"the {served.pipe.task} task does not stream")
    req = PredictRequest.parse({k: v for k, v in request.query_params.items()}, query=True)
    config = settings(served, req)
    prompt = cut(req.prompt or "", request.app.state.max_text_chars)[0]
    try:
        pieces = served.pipe.stream(prompt, config)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    return StreamingResponse(events(served, pieces), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------------------------------------
async def run(served: Served, key: tuple, items: list, request: Request) -> list:
    """One job through the model's queue, cancelled if the client leaves; a ValueError from the
    pipeline is the request's fault."""
    try:
        return await served.batcher.run(key, items, gone=request.is_disconnected)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None


def events(served: Served, pieces: Iterator[str]) -> Iterator[str]:
    """Server-sent events: one ``data: {"text": piece}`` per piece, then ``event: end``."""
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


def cut(text: str, limit: int) -> tuple[str, list[str]]:
    if len(text) <= limit:
        return text, []
    return text[:limit], [f"text of {len(text)} characters cut to the first {limit}"]
