"""The checkpoint file format: one file holds config, vocabularies, tokenizers and weights.

Files are plain dicts of tensors, numbers and strings, loaded with ``weights_only=True`` so loading
never runs pickled code. Writes go to a temporary file first and are renamed into place, so a
crash mid-write (or a full disk) never leaves a truncated checkpoint behind. Rebuilding the model
a file describes is :mod:`.rebuild`'s job; the loaded bundle is :class:`.loaded.LoadedModel`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import to_dict
from .fileio import WriteFailed, atomic_save, write_failure

if TYPE_CHECKING:  # only named in annotations: the file format sits below the model parts
    from ..decoding.shortlist import Shortlist
    from ..nn.model import EncoderDecoder
    from ..tokenizers import Tokenizer
    from ..vocab import Vocab

FORMAT = "seqgen-checkpoint"
VERSION = 1  # what a single model is written as
ENSEMBLE_VERSION = 2  # an ensemble's members after the first are listed under "ensemble"
NEWEST = ENSEMBLE_VERSION  # the newest format this seqgen reads
REQUIRED = {"task": str, "model_config": dict, "tgt_vocab": list, "tgt_tokenizer": dict,
            "model": dict}  # what every checkpoint must hold to rebuild its model


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged or not a seqgen checkpoint."""


class CheckpointWriteError(WriteFailed):
    """The file system refused a checkpoint (disk full, no permission); the file it would have
    replaced is intact."""


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Writes ``ckpt`` atomically (see :func:`atomic_save`).

    Raises:
        CheckpointWriteError: one line naming the file, when the file system refuses the write;
            the previous file of that name is untouched and no temporary file is left.
    """
    path = Path(path)
    try:
        atomic_save(ckpt, path)
    except Exception as err:
        failed = write_failure(err, path)
        if failed is None:
            raise
        kept = (f"the previous {path.name} is intact" if path.is_file()
                else "earlier checkpoints are intact")
        error = CheckpointWriteError(f"{failed}; {kept}")
        error.errno = failed.errno
        raise error from None


def make_checkpoint(model: EncoderDecoder, *, task: str, tgt_vocab: Vocab, tgt_tokenizer: Tokenizer,
                    src_vocab: Vocab | None = None, src_tokenizer: Tokenizer | None = None,
                    task_config: dict | None = None, trainer_state: dict | None = None,
                    shortlist: Shortlist | None = None) -> dict:
    """Everything needed to rebuild ``model`` (and, with ``trainer_state``, to resume training),
    and the vocabulary shortlist to decode with, if any."""
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT, "version": VERSION, "task": task,
        "model_config": to_dict(model.config),
        "tgt_vocab": tgt_vocab.to_list(), "tgt_tokenizer": tgt_tokenizer.to_dict(),
        "src_vocab": src_vocab.to_list() if src_vocab else None,
        "src_tokenizer": src_tokenizer.to_dict() if src_tokenizer else None,
        "task_config": task_config or {}, "model": weights, "trainer": trainer_state,
        "shortlist": shortlist.to_dict() if shortlist is not None else None,
    }


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict:
    """Loads and checks a checkpoint; any problem becomes a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for damaged files
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a seqgen "
                              f"checkpoint): {reason}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seqgen checkpoint")
    if not isinstance(ckpt.get("version", 0), int) or ckpt.get("version", 0) > NEWEST:
        raise CheckpointError(f"{path} was written by a newer seqgen (format {ckpt['version']})")
    wrong = [key for key, kind in REQUIRED.items() if not isinstance(ckpt.get(key), kind)]
    members = ckpt.get("ensemble") or []
    if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("model_config"), dict)
            and isinstance(m.get("model"), dict) for m in members):
        wrong.append("ensemble")
    if wrong:
        raise CheckpointError(f"{path} is damaged: missing or malformed {', '.join(wrong)}")
    return ckpt


def load_trainable(path: str | Path, task: str) -> dict:
    """A float checkpoint of ``task`` to train further (self-critical fine-tuning starts from one);
    int8 exports and other tasks' models are refused in one line."""
    ckpt = load_checkpoint(path)
    if ckpt.get("task") != task or ckpt.get("quantized") or ckpt.get("ensemble"):
        raise CheckpointError(f"{path} is not a float {task} checkpoint to fine-tune (int8 "
                              "exports and ensembles cannot train)")
    return ckpt


