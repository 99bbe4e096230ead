"""Rebuilding the model a checkpoint describes: one model, its int8 weights turned back into
quantized layers, or an ensemble of the members an ensemble file lists."""
from __future__ import annotations

from ..nn.ensemble import Ensemble
from ..nn.int8 import FORMAT as INT8, dequantize_rows, quantize_linear_layers
from ..nn.model import EncoderDecoder, ModelConfig
from .checkpoint import CheckpointError
from .config import from_dict


def build_model(ckpt: dict) -> EncoderDecoder | Ensemble:
    """Rebuilds the model a checkpoint describes and loads its weights (float32): one model, or
    an :class:`~seqgen.nn.ensemble.Ensemble` of the members an ensemble file lists."""
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


