"""What the server answers, and how it is described in the API docs (``/docs``): a result entry
per input (the best text and score, the n-best outputs, the symbols, warnings or the error, and
attention when asked), the models' descriptions, and the request bodies the predict endpoint
takes (JSON for text and prompt tasks, multipart for image tasks)."""
from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from ..results import Output, Result
from .requests import PredictRequest


class OutputEntry(BaseModel):
    text: str
    score: float | None


class ResultEntry(BaseModel):
    """One input's answer; ``error`` is set (and the rest empty) when that input failed."""

    text: str | None
    score: float | None
    outputs: list[OutputEntry]
    symbols: list[str]
    source: list[str]
    warnings: list[str]
    error: str | None
    attention: list[list[float]] | None = None  # with "attention": true: rows per output symbol
    grid: int | None = None  # image tasks: the side of the attention grid
    filename: str | None = None  # image tasks: the uploaded file's name


class PredictResponse(BaseModel):
    results: list[ResultEntry]


def request_body() -> dict:
    """The predict endpoint's request body for the OpenAPI schema: the request is read by hand
    (one line per bad field, 413/415 rules), so FastAPI is told what it is instead."""
    schema = PredictRequest.model_json_schema()
    upload = {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        **{k: {"type": "string", "description": "as in the JSON body"}
           for k in schema["properties"] if k not in ("inputs", "prompt")}},
        "required": ["files"]}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema},
        "multipart/form-data": {"schema": upload}}}}


# ------------------------------------------------------------------------------------------------
def number(x: float) -> float | None:
    return round(float(x), 4) if math.isfinite(x) else None  # JSON has no NaN or infinity


def output(o: Output) -> dict:
    return {"text": o.text, "score": number(o.score)}


def entry(adapter: Any, result: Result, attention: bool, path: str = "", name: str = ""
          ) -> dict:
    """One input's JSON: the best text and score, all outputs, the symbols, warnings, error."""
    if not result.ok:
        error = result.error.replace(path, name) if path else result.error
        return {"text": None, "score": None, "outputs": [], "symbols": [], "source": [],
                "warnings": result.warnings, "error": error}
    best = result.outputs[0] if result.outputs else None
    data = {"text": result.text, "score": number(result.score) if best else None,
            "outputs": [output(o) for o in result.outputs], "symbols": best.symbols if best else [],
            "source": result.source, "warnings": result.warnings, "error": None}
    if attention:
        data.update(adapter.attention_grid(result))
    return data


def describe(task: str, pipe: Any, path: Any) -> dict:
    """What ``/api/models`` says of one served model."""
    loaded, adapter = pipe.loaded, pipe.adapter
    panel = adapter.panel
    return {"task": task, "verb": adapter.verb, "inputs": adapter.inputs,
            "panel": None if panel is None else {"title": panel.title, "example": panel.example,
                                                 "placeholder": panel.placeholder,
                                                 "attention": panel.attention},
            "generation": pipe.generation_config().given(),
            "file": path.name if path else None,
            "file_size": path.stat().st_size if path else None,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "vocab_size": len(loaded.tgt_vocab),
            **({"src_vocab_size": len(loaded.src_vocab)} if loaded.src_vocab else {}),
            **adapter.describe(loaded)}
