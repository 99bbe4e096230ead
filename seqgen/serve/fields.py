"""Strict field types for the server's request models: no bool taken as a number, no number that
overflows later, no text a tokenizer cannot encode; every refusal names its field (a 422).

    class GenerateRequest(BaseModel):
        prompt: Text = ""
        seed: Seed | None = None
        n: Count = 1
        temperature: Real | None = None

Without them ``"beam": true`` is beam 1 (pydantic's lax mode takes a bool as an int) and a seed of
``2**64`` reaches torch and fails there as "Overflow when unpacking long long", naming nothing.
Upper bounds on work (beam 32, 256 texts) stay in the app's limits, where their message says they
are this server's; these types only refuse what is never meaningful. They are for JSON bodies: multipart form
fields and query parameters arrive as strings, so there plain ``int``/``float`` stay (pydantic's
lax parsing of ``"2"``; ``"true"`` is no integer there anyway).
"""
from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field, Strict

from ..text import check_text

SEED_MAX = 2**63 - 1  # torch.manual_seed takes a signed 64-bit integer


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


Seed = Annotated[int, Strict(), Field(ge=0, le=SEED_MAX)]
"""A random seed: an integer (never a bool, float or string) in [0, 2**63 - 1]."""

Count = Annotated[int, Strict(), Field(ge=1)]
"""A positive integer such as ``beam``, ``n``, ``n_best`` or ``max_len`` (not a bool, not 2.0)."""

Natural = Annotated[int, Strict(), Field(ge=0)]
"""A non-negative integer such as ``top_k`` (0 may mean "off" where the caller says so)."""

# strict floats accept JSON integers (1 -> 1.0) but never a bool or a string
Real = Annotated[float, Strict(), AfterValidator(_finite)]
"""A finite number such as ``temperature`` or ``top_p`` (ranges are the search's own checks)."""

Text = Annotated[str, Strict(), AfterValidator(check_text)]
"""A string of valid Unicode (no unpaired surrogate; see :func:`seqgen.text.check_text`). Use it
for single texts (a prompt); for a list of texts, keep ``list[str]`` and check each with
:func:`seqgen.text.text_problem`, so one bad text is that item's error, not the request's."""
