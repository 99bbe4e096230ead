"""What a request to the server may say, with strict types: a boolean is not a beam, a seed out
of range names the seed, an unknown field is refused rather than ignored."""
from __future__ import annotations

import io
import warnings
from typing import Any, Mapping

from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, ValidationError

from ..decoding.generation import SETTINGS, GenerationConfig
from .fields import Natural, Real, Seed

LIMITS = {"n": 64, "max_len": 512, "beam": 32, "inputs": 256, "files": 32}  # work per request


class PredictRequest(BaseModel):
    """Inputs (``inputs``, or one ``prompt``), samples per input, attention, and generation
    settings; unset settings fall back to the model's own, then the task's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: list[str] = []  # each checked alone (seqgen.text): a bad one is that entry's error
    prompt: str | None = None
    n: Natural = 1
    attention: bool = False
    beam: Natural | None = None
    n_best: Natural | None = None
    temperature: Real | None = None
    top_k: Natural | None = None
    top_p: Real | None = None
    length_penalty: Real | None = None
    repetition_penalty: Real | None = None
    no_repeat_ngram: Natural | None = None
    min_length: Natural | None = None
    max_len: Natural | None = None
    seed: Seed | None = None
    shortlist: bool | None = None

    @classmethod
    def parse(cls, body: Any, *, query: bool = False) -> "PredictRequest":
        """A validated request, or a 422 naming each bad field; ``query`` values are strings
        (query parameters and form fields), read as the numbers and booleans they spell first."""
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object")
        if query:
            body = {k: _spelled(v) for k, v in body.items()}
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                                 for e in err.errors())
            raise HTTPException(422, problems) from None

    def texts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None and not self.inputs else list(self.inputs)

    def generation(self) -> GenerationConfig:
        return GenerationConfig.from_dict({k: getattr(self, k) for k in SETTINGS})


def _spelled(value: Any) -> Any:
    """``"3"`` -> 3, ``"0.8"`` -> 0.8, ``"true"`` -> True; anything else as it is (and then
    refused by its field's type, naming the field)."""
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def form_request(form: Mapping[str, Any]) -> PredictRequest:
    """The settings of a multipart upload (every field but the files)."""
    fields = {k: v for k, v in form.items() if k != "files" and isinstance(v, str)}
    return PredictRequest.parse(fields, query=True)


def is_image(data: bytes) -> bool:
    """Whether the bytes start like an image format PIL knows (the header only; no decoding)."""
    if not data:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data)).close()
    except UnidentifiedImageError:
        return False
    except Exception:  # noqa: BLE001 - a known format, damaged or too large: a per-item error
        return True
    return True
