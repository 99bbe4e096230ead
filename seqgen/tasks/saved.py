"""What a trained model remembers of its data: the data settings its run recorded, read back to
evaluate it the way it was trained (the same language pair, the same carve of held-out rows)."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence, TypeVar

from ..io.loaded import LoadedModel

T = TypeVar("T")


def saved_data_config(cls: type[T], loaded: LoadedModel, *, keep: Sequence[str] | None = None,
                      **given: Any) -> T:
    """A ``cls`` data config from the settings ``loaded``'s run recorded (only the fields in
    ``keep``, when given; fields ``cls`` no longer has are ignored), then ``given``'s."""
    saved = loaded.task_config.get("data", {})
    known = {f.name for f in fields(cls)} & (set(keep) if keep is not None else set(saved))
    return cls(**{**{k: v for k, v in saved.items() if k in known}, **given})
