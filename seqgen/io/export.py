"""Shipping a model: a model-only copy in half precision or int8, with the search chosen on
validation recorded in it, a vocabulary shortlist, or several models combined into one ensemble
file (see :mod:`seqgen.nn.ensemble`).

An ensemble file is a checkpoint whose first member sits where a single model's weights do, and
whose other members (config and weights each) are listed under ``"ensemble"``; vocabularies,
tokenizers and task settings are stored once, so the members must share them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..decoding.shortlist import Shortlist
from ..nn.int8 import FORMAT as INT8, SCALE, dequantize_rows, quantize_rows
from .checkpoint import ENSEMBLE_VERSION, CheckpointError, load_checkpoint, save_checkpoint

SHARED = ("task", "tgt_vocab", "tgt_tokenizer", "src_vocab", "src_tokenizer")
TRAINING_ONLY = ("data", "decoding")  # task settings members may differ in


def export_checkpoint(src: str | Path, dst: str | Path, *, half: bool = True,
                      int8: bool = False, decoding: dict | None = None,
                      shortlist: Shortlist | None = None,
                      ensemble: Sequence[str | Path] = ()) -> None:
    """Writes a model-only copy (no optimizer state) for shipping: half precision by default, or
    int8 weights (see :mod:`seqgen.nn.int8`) with the remaining floats in half precision.

    Args:
        decoding: the search chosen on validation (beam, length_penalty, no_repeat_ngram),
            recorded as the model's default.
        shortlist: adds (or replaces) the vocabulary shortlist.
        ensemble: more checkpoints to decode together with ``src`` as one ensemble; an ensemble
            scores its whole vocabulary, so a shortlist ``src`` carries is dropped.

    Raises:
        CheckpointError: one line, when a file is unreadable or a member does not fit.
    """
    ckpt = load_checkpoint(src)
    ckpt["trainer"] = None
    if ensemble:
        if shortlist is not None:
            raise CheckpointError("an ensemble scores its whole vocabulary: no shortlist")
        ckpt = combine(ckpt, [load_checkpoint(p) for p in ensemble],
                       names=[str(src), *map(str, ensemble)])
    if shortlist is not None:
        ckpt["shortlist"] = shortlist.to_dict()
    if decoding:
        task_config = dict(ckpt.get("task_config") or {})
        task_config["decoding"] = {**task_config.get("decoding", {}), **decoding}
        ckpt["task_config"] = task_config
    for part in [ckpt, *(ckpt.get("ensemble") or [])]:
        part["model"] = _shipped(part["model"], stored_int8=bool(ckpt.get("quantized")),
                                 half=half, int8=int8)
    ckpt["quantized"] = INT8 if int8 else None
    save_checkpoint(ckpt, dst)


def _shipped(weights: dict, *, stored_int8: bool, half: bool, int8: bool) -> dict:
    if stored_int8:
        weights = dequantize_rows(weights)
    if int8:
        weights = quantize_rows(weights)
    if half or int8:
        weights = {k: v.half() if v.is_floating_point() and not k.endswith(SCALE) else v
                   for k, v in weights.items()}
    return share_equal(weights)


def share_equal(weights: dict) -> dict:
    """The same weights, equal tensors stored once: tied and shared embeddings (three copies of
    the vocabulary matrix in a summarizer) come back from a checkpoint as separate tensors, and
    would each take their full size in the shipped file."""
    kept: dict[tuple, list] = {}
    out = {}
    for name, tensor in weights.items():
        same = kept.setdefault((tuple(tensor.shape), tensor.dtype), [])
        out[name] = next((t for t in same if torch.equal(t, tensor)), tensor)
        if out[name] is tensor:
            same.append(tensor)
    return out


# ------------------------------------------------------------------------------------------------
def combine(first: dict, others: Sequence[dict], *, names: Sequence[str]) -> dict:
    """One ensemble checkpoint (float weights) from single-model checkpoints of one task that
    share vocabularies, tokenizers and task settings (training data and search aside).

    Raises:
        CheckpointError: naming the file that does not fit and what differs.
    """
    for name, ckpt in zip(names, [first, *others]):
        if ckpt.get("ensemble"):
            raise CheckpointError(f"{name} is already an ensemble; list its members instead")
    wanted = _settings(first)
    for name, other in zip(names[1:], others):
        differ = [key for key in SHARED if other.get(key) != first.get(key)]
        given = _settings(other)
        differ += [f"task setting {key!r}" for key in sorted(given.keys() | wanted.keys())
                   if given.get(key) != wanted.get(key)]
        if differ:
            raise CheckpointError(f"{name} cannot join an ensemble with {names[0]}: their "
                                  f"{', '.join(differ)} differ")
    members = [{"model_config": c["model_config"], "model": _float(c)} for c in others]
    return {**first, "model": _float(first), "quantized": None, "shortlist": None,
            "trainer": None, "ensemble": members, "version": ENSEMBLE_VERSION}


def _settings(ckpt: dict) -> dict[str, Any]:
    return {k: v for k, v in (ckpt.get("task_config") or {}).items() if k not in TRAINING_ONLY}


def _float(ckpt: dict) -> dict:
    return dequantize_rows(ckpt["model"]) if ckpt.get("quantized") else ckpt["model"]
