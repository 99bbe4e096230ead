"""Checkpoints: one file holds config, vocabularies, tokenizers and weights, and rebuilds the model.

Files are plain dicts of tensors, numbers and strings, loaded with ``weights_only=True`` so loading
never runs pickled code. Writes go to a temporary file first and are renamed into place, so a
crash mid-write (or a full disk) never leaves a truncated checkpoint behind. Each training run
writes its run id into its checkpoints, so :func:`run_checkpoints` sees only the current run's
numbered files, never those an earlier run left in the folder.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import from_dict, to_dict
from .ensemble import Ensemble
from .fileio import WriteFailed, atomic_save, write_failure
from .int8 import FORMAT as INT8, dequantize_rows, quantize_linear_layers
from .model import EncoderDecoder, ModelConfig
from .shortlist import Shortlist
from .tokenizers import Tokenizer, tokenizer_from_dict
from .vocab import Vocab

FORMAT = "seqgen-checkpoint"
VERSION = 1  # what a single model is written as
ENSEMBLE_VERSION = 2  # an ensemble's members after the first are listed under "ensemble"
NEWEST = ENSEMBLE_VERSION  # the newest format this seqgen reads
REQUIRED = {"task": str, "model_config": dict, "tgt_vocab": list, "tgt_tokenizer": dict,
            "model": dict}  # what every checkpoint must hold to rebuild its model


STEP_FILES = "step-*.pt"  # the numbered evaluation checkpoints kept for averaging


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


def new_run_id() -> str:
    """A fresh run id, e.g. ``20261130-181500-3fa2c1``: when the run started, and 24 random bits."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def checkpoint_run_id(path: str | Path) -> str | None:
    """The run id a checkpoint was written by (None: written before run ids existed). Tensors
    are memory-mapped, not read, so this is cheap even for large files.

    Raises:
        CheckpointError: the file cannot be read.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a damaged or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}") from None
    return ckpt.get("run_id") if isinstance(ckpt, dict) else None


def run_checkpoints(run_dir: str | Path, run_id: str | None = None) -> list[Path]:
    """The numbered checkpoints (``step-*.pt``) of one run in ``run_dir``, oldest first.

    Args:
        run_dir: the run folder.
        run_id: the run whose files to list; default: the run that wrote ``last.pt`` (none
            without a readable ``last.pt``). Files an earlier run left behind, and unreadable
            ones, are never listed, so neither averaging nor pruning ever touches them.
    """
    run_dir = Path(run_dir)
    if run_id is None:
        try:
            run_id = checkpoint_run_id(run_dir / "last.pt")
        except CheckpointError:
            return []
    mine = []
    for path in sorted(run_dir.glob(STEP_FILES)):
        try:
            if checkpoint_run_id(path) == run_id:
                mine.append(path)
        except CheckpointError:
            continue
    return mine


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


def build_model(ckpt: dict) -> EncoderDecoder | Ensemble:
    """Rebuilds the model a checkpoint describes and loads its weights (float32): one model, or
    an :class:`~seqgen.ensemble.Ensemble` of the members an ensemble file lists."""
    tgt_size = len(ckpt["tgt_vocab"])
    src_size = len(ckpt["src_vocab"]) if ckpt.get("src_vocab") else tgt_size
    quantized = ckpt.get("quantized")
    if quantized not in (None, INT8):
        raise CheckpointError(f"unknown weight format {quantized!r}; is seqgen out of date?")
    models = [_build_one(part["model_config"], part["model"], quantized=bool(quantized),
                         src_size=src_size, tgt_size=tgt_size)
              for part in [ckpt, *(ckpt.get("ensemble") or [])]]
    if len(models) == 1:
        return models[0]
    try:
        return Ensemble(models)
    except ValueError as err:
        raise CheckpointError(f"checkpoint has an unusable ensemble: {err}") from None


def _build_one(model_config: dict, weights: dict, *, quantized: bool, src_size: int,
               tgt_size: int) -> EncoderDecoder:
    try:
        config = from_dict(ModelConfig, model_config)
        model = EncoderDecoder(config, src_vocab_size=src_size, tgt_vocab_size=tgt_size)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"checkpoint has an unusable model config: {err}") from None
    try:
        model.load_state_dict(dequantize_rows(weights) if quantized else weights)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint weights do not match its config: "
                              f"{str(err).splitlines()[0]}") from None
    model = model.float().eval()
    return quantize_linear_layers(model) if quantized else model


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
        try:
            vocabs = dict(
                tgt_vocab=Vocab(ckpt["tgt_vocab"]),
                tgt_tokenizer=tokenizer_from_dict(ckpt["tgt_tokenizer"]),
                src_vocab=Vocab(ckpt["src_vocab"]) if ckpt.get("src_vocab") else None,
                src_tokenizer=(tokenizer_from_dict(ckpt["src_tokenizer"])
                               if ckpt.get("src_tokenizer") else None))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"checkpoint has an unusable vocabulary or tokenizer: {err}"
                                  ) from None
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


def average_weights(paths: list[str | Path]) -> dict:
    """Element-wise mean of the weights of several checkpoints of one run (checkpoint averaging)."""
    if not paths:
        raise ValueError("checkpoint averaging needs at least one checkpoint")
    ckpts = [load_checkpoint(p) for p in paths]
    avg = {k: v.float().clone() if v.is_floating_point() else v for k, v in ckpts[0]["model"].items()}
    for ckpt in ckpts[1:]:
        for k, v in ckpt["model"].items():
            if v.is_floating_point():
                avg[k] += v.float()
    return {k: v / len(ckpts) if v.is_floating_point() else v for k, v in avg.items()}
