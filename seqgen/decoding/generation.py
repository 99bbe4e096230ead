"""One generation config for every search setting, and the one place it is resolved.

Every field of :class:`GenerationConfig` is unset (None) until someone sets it. What a search runs
with is resolved in :func:`resolve` from three layers, each overriding the one before:

    the task's defaults  <  the settings the checkpoint records  <  the caller's

An explicit sampling option (temperature, top-k, top-p) in a layer turns a beam from the layers
below it off, and an explicit beam turns their sampling off: a user who types ``--top-k 5`` for a
captioner that records beam 2 gets sampling. Only a conflict within one layer (a beam *and* a
temperature typed together) is an error. The CLI, :class:`seqgen.pipeline.Pipeline` and the
server all go through :func:`resolve`, so the same input gives the same output through all three.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from .search import build_searcher

SAMPLING = ("temperature", "top_k", "top_p")
DEFAULTS = dict(beam=1, n_best=1, length_penalty=1.0, repetition_penalty=1.0, no_repeat_ngram=0,
                min_length=0, max_len=100, shortlist=True)  # what an unset field means at the end
RECORDED = ("beam", "length_penalty", "no_repeat_ngram", "max_len")  # what a checkpoint may carry


@dataclass(frozen=True)
class GenerationConfig:
    """How to search: greedy (nothing set), sampling (temperature / top-k / top-p) or beam.

    Attributes:
        beam: beam size (1 = greedy); n_best: hypotheses returned per input (<= beam).
        temperature, top_k, top_p: sampling; any of them set means sampling.
        length_penalty: Wu et al.'s alpha for beam search (0 = none).
        repetition_penalty: >= 1 (1 = none); no_repeat_ngram: ban repeated n-grams (0 = off).
        min_length: symbols before the end may be chosen; max_len: symbols at most.
        seed: the sampling seed; shortlist: decode over the model's vocabulary shortlist, when it
            has one (sampling then draws from its candidates too).
    """

    beam: int | None = None
    n_best: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    length_penalty: float | None = None
    repetition_penalty: float | None = None
    no_repeat_ngram: int | None = None
    min_length: int | None = None
    max_len: int | None = None
    seed: int | None = None
    shortlist: bool | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "GenerationConfig":
        """The known fields of ``values`` (a checkpoint's record, a request); others ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in names and v is not None})

    def given(self) -> dict[str, Any]:
        """The fields that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def sampling(self) -> bool:
        return any(getattr(self, name) is not None for name in SAMPLING)

    def over(self, lower: "GenerationConfig") -> "GenerationConfig":
        """This layer's settings over ``lower``'s: explicit sampling drops a lower beam (and its
        n-best), an explicit beam above 1 drops lower sampling."""
        base = lower
        if self.sampling and self.beam is None:
            base = replace(base, beam=None, n_best=None if self.n_best is None else base.n_best)
        if self.beam is not None and self.beam > 1 and not self.sampling:
            base = replace(base, **{name: None for name in SAMPLING})
        return replace(base, **self.given())

    # --------------------------------------------------------------------------------------------
    def value(self, name: str) -> Any:
        """A field's value, or what an unset one means (``DEFAULTS``)."""
        value = getattr(self, name)
        return DEFAULTS.get(name) if value is None else value

    def check(self) -> None:
        """Raises ValueError naming the first setting out of range (the searchers check the rest)."""
        for name in ("beam", "n_best"):
            value = self.value(name)
            if value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1 (got {value})"
                                 + ("; 1 is greedy search" if name == "beam" else ""))
        if self.value("n_best") > self.value("beam") and not self.sampling:
            raise ValueError(f"n-best must be at most the beam size {self.value('beam')} "
                             f"(got {self.value('n_best')})")
        for name in ("no_repeat_ngram", "min_length"):
            if self.value(name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be >= 0 (got {self.value(name)})")
        for name in ("temperature", "top_p", "length_penalty", "repetition_penalty"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number (got {value})")
        if self.seed is not None and not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"seed must be from 0 to 2**63 - 1 (got {self.seed})")
        self.searcher()  # the searcher and its processors check their own ranges

    def searcher(self, *, attention: bool = False) -> Any:
        """The searcher these settings describe (unset fields take their defaults)."""
        return build_searcher(
            beam=self.value("beam"), temperature=self.temperature, top_k=self.top_k,
            top_p=self.top_p, max_len=self.value("max_len"),
            length_penalty=self.value("length_penalty"), n_best=self.value("n_best"),
            repetition_penalty=self.value("repetition_penalty"),
            no_repeat_ngram=self.value("no_repeat_ngram"), min_length=self.value("min_length"),
            seed=self.seed, collect_attention=attention)


SETTINGS = tuple(f.name for f in fields(GenerationConfig))  # what a CLI flag or a request may set


def resolve(task_default: GenerationConfig, recorded: GenerationConfig | None = None,
            caller: GenerationConfig | None = None) -> GenerationConfig:
    """The settings a search runs with: the task's defaults < the checkpoint's < the caller's,
    with every field filled (sampling fields stay None unless sampling), and checked."""
    config = task_default
    for layer in (recorded, caller):
        if layer is not None:
            config = layer.over(config)
    filled = replace(config, **{k: config.value(k) for k in DEFAULTS})
    filled.check()
    return filled


def recorded_settings(task_config: Mapping[str, Any] | None) -> GenerationConfig:
    """The generation settings a checkpoint carries (chosen on validation; its ``decoding``)."""
    saved = (task_config or {}).get("decoding") or {}
    return GenerationConfig.from_dict({k: v for k, v in saved.items() if k in RECORDED})
