"""What an adapter's calls receive (the *session*): a loaded model, the precision its searches
run in, and a dict for objects built once per model (a captioner's CNN).

This base runs everything in fp32. It is what training-time metrics and a run's final scores use,
so they go through the same adapter code as ``seqgen evaluate``;
:class:`seqgen.pipeline.Pipeline` extends it with the measured bf16 choice for serving.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ..io.loaded import LoadedModel


class Session:
    """A loaded model as the adapter sees it.

    Attributes:
        loaded: model, vocabularies, tokenizers, task settings.
        state: what the adapter builds once per model (a CNN, ...).
        requested_precision: what the user asked searches to run in ("fp32" here).
    """

    requested_precision = "fp32"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.state: dict[str, Any] = {}

    def autocast(self) -> AbstractContextManager:
        """The precision searches run in: fp32 here."""
        return nullcontext()
