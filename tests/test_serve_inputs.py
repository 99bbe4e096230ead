"""Checks on what a request may carry: valid Unicode (seqgen.text) and strict field types
(seqgen.serve.fields), on a small pydantic model."""
from __future__ import annotations

import json

import pytest

from seqgen.text import check_text, text_problem

pydantic = pytest.importorskip("pydantic")

from pydantic import BaseModel, ValidationError  # noqa: E402

from seqgen.serve.fields import SEED_MAX, Count, Natural, Real, Seed, Text  # noqa: E402


class Request(BaseModel):
    prompt: Text = ""
    seed: Seed | None = None
    beam: Count = 1
    top_k: Natural | None = None
    temperature: Real | None = None


def test_valid_unicode_passes_and_a_lone_surrogate_is_named_with_its_position():
    assert check_text("Ein Hund läuft 😀.") == "Ein Hund läuft 😀."
    assert check_text(json.loads('"\\ud83d\\ude00"')) == "😀"  # a JSON pair is one character
    for text, where in (("\ud800abc", 0), (json.loads('{"t": "Ein \\udc80 Hund."}')["t"], 4)):
        with pytest.raises(ValueError, match=f"unpaired surrogate .* at position {where}"):
            check_text(text)
        problem = text_problem(text)
        problem.encode("utf-8")  # the message itself can always be sent
    assert text_problem("fine") is None


@pytest.mark.parametrize("body, field", [
    ({"seed": 2**64}, "seed"), ({"seed": -1}, "seed"), ({"seed": True}, "seed"),
    ({"seed": 1.5}, "seed"), ({"beam": True}, "beam"), ({"beam": 2.0}, "beam"),
    ({"beam": "2"}, "beam"), ({"beam": 0}, "beam"), ({"top_k": -1}, "top_k"),
    ({"temperature": True}, "temperature"), ({"temperature": "0.5"}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"prompt": "\ud800abc"}, "prompt"),
    ({"prompt": 3}, "prompt"),
])
def test_strict_fields_refuse_and_name_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        Request.model_validate(body)
    [problem] = err.value.errors()
    assert problem["loc"] == (field,)


def test_strict_fields_take_what_is_meant():
    ok = Request.model_validate({"seed": SEED_MAX, "beam": 4, "top_k": 0, "temperature": 1,
                                 "prompt": "Oil 😀"})
    assert (ok.seed, ok.beam, ok.top_k, ok.temperature, ok.prompt) == (2**63 - 1, 4, 0, 1.0,
                                                                       "Oil 😀")
    assert isinstance(ok.temperature, float)
