"""What the inference API takes and gives: :class:`SearchOptions` (how to search), and per input
a :class:`Result` of :class:`Output` texts; plus the search settings a checkpoint may carry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor

from .checkpoint import LoadedModel
from .search import build_searcher


TUNED = ("beam", "length_penalty")  # search settings a checkpoint may carry (its "decoding")


def given_tuning(**values: object) -> dict:
    """The tuned settings (beam, length_penalty) among ``values`` that were given (not None):
    what overrides a model's own."""
    return {k: v for k, v in values.items() if k in TUNED and v is not None}


def tuned_decoding(loaded: LoadedModel) -> dict:
    """The beam size and length penalty a checkpoint carries (chosen on validation), if any."""
    saved = loaded.task_config.get("decoding") or {}
    return {k: saved[k] for k in TUNED if k in saved}


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchOptions:
    """How to search: greedy (the default), sampling (temperature / top-k / top-p) or beam."""

    beam: int = 1
    n_best: int = 1
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram: int = 0
    min_length: int = 0
    max_len: int = 100
    seed: int | None = None
    shortlist: bool = True  # translation: decode over the model's vocabulary shortlist, if any;
    # sampling then draws from the candidates too (False: from every word)

    @property
    def sampling(self) -> bool:
        return self.temperature is not None or self.top_k is not None or self.top_p is not None

    def check(self) -> None:
        """Raises ValueError naming the first option out of range (the searchers check the rest)."""
        for name in ("beam", "n_best"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1 (got {value})"
                                 + ("; 1 is greedy search" if name == "beam" else ""))
        if self.n_best > self.beam and not self.sampling:
            raise ValueError(f"n-best must be at most the beam size {self.beam} "
                             f"(got {self.n_best})")
        for name in ("no_repeat_ngram", "min_length"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name.replace('_', '-')} must be >= 0 (got {value})")
        for name in ("temperature", "top_p", "length_penalty", "repetition_penalty"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number (got {value})")
        self.searcher()  # the searcher and its processors check their own ranges

    def searcher(self, *, attention: bool = False):
        return build_searcher(beam=self.beam, temperature=self.temperature, top_k=self.top_k,
                              top_p=self.top_p, max_len=self.max_len,
                              length_penalty=self.length_penalty, n_best=self.n_best,
                              repetition_penalty=self.repetition_penalty,
                              no_repeat_ngram=self.no_repeat_ngram, min_length=self.min_length,
                              seed=self.seed, collect_attention=attention)


@dataclass
class Output:
    """One generated text. ``attention`` has a row per symbol and one for the end: (len + 1, S)."""

    text: str
    score: float
    symbols: list[str] = field(default_factory=list)
    attention: Tensor | None = None


@dataclass
class Result:
    """What one input gave: its outputs, best first (n-best or samples), or an error."""

    outputs: list[Output] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)  # source symbols (translation attention)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return self.outputs[0].text if self.outputs else ""

    @property
    def score(self) -> float:
        return self.outputs[0].score if self.outputs else float("nan")
