"""A loaded model: the rebuilt model with its vocabularies, tokenizers, task settings and
shortlist, what every piece of inference code takes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..decoding.shortlist import Shortlist
from ..nn.ensemble import Ensemble
from ..nn.model import EncoderDecoder
from ..tokenizers import Tokenizer, tokenizer_from_dict
from ..vocab import Vocab
from .checkpoint import CheckpointError, load_checkpoint
from .rebuild import build_model


def vocabularies(ckpt: dict) -> dict:
    """A checkpoint's vocabularies and tokenizers as keyword arguments (``tgt_vocab``,
    ``tgt_tokenizer``, ``src_vocab``, ``src_tokenizer``; the source ones None where it has none):
    what a resumed run reads its data with, and what :class:`LoadedModel` holds.

    Raises:
        CheckpointError: one line, when they cannot be rebuilt.
    """
    try:
        return dict(
            tgt_vocab=Vocab(ckpt["tgt_vocab"]),
            tgt_tokenizer=tokenizer_from_dict(ckpt["tgt_tokenizer"]),
            src_vocab=Vocab(ckpt["src_vocab"]) if ckpt.get("src_vocab") else None,
            src_tokenizer=(tokenizer_from_dict(ckpt["src_tokenizer"])
                           if ckpt.get("src_tokenizer") else None))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"checkpoint has an unusable vocabulary or tokenizer: {err}"
                              ) from None


@dataclass
class LoadedModel:
    """A model with its vocabularies and tokenizers, ready to generate."""

    model: EncoderDecoder | Ensemble
    task: str
    tgt_vocab: Vocab
    tgt_tokenizer: Tokenizer
    src_vocab: Vocab | None = None
    src_tokenizer: Tokenizer | None = None
    task_config: dict = field(default_factory=dict)
    shortlist: Shortlist | None = None  # candidate target words per source word (translation)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, *, device: str | torch.device = "cpu") -> "LoadedModel":
        vocabs = vocabularies(ckpt)
        try:
            shortlist = None
            if ckpt.get("shortlist"):
                shortlist = Shortlist.from_dict(ckpt["shortlist"]).check(
                    len(vocabs["src_vocab"] or vocabs["tgt_vocab"]), len(vocabs["tgt_vocab"]))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint has an unusable shortlist: {err}") from None
        if shortlist is not None and ckpt.get("ensemble"):
            raise CheckpointError("an ensemble scores its whole vocabulary: this file's shortlist "
                                  "cannot be used (export the ensemble again)")
        if ckpt.get("quantized") and torch.device(device).type != "cpu":
            raise CheckpointError("int8 models run on the CPU; use --device cpu (or export the "
                                  "model without --int8 for a GPU)")
        return cls(model=build_model(ckpt).to(device), task=ckpt["task"], **vocabs,
                   task_config=ckpt.get("task_config") or {}, shortlist=shortlist)

    @classmethod
    def from_file(cls, path: str | Path, *, device: str | torch.device = "cpu") -> "LoadedModel":
        return cls.from_checkpoint(load_checkpoint(path), device=device)

    def decode(self, ids: list[int]) -> str:
        return self.tgt_tokenizer.detokenize(self.tgt_vocab.decode(ids))


