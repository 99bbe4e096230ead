"""What inference gives: per input a :class:`Result` of :class:`Output` texts (best first), or
the error that input met, so that one bad input never costs the others their results."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


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
