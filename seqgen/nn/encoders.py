"""Encoders: turn a batch's source into what the decoder starts from (summary) and attends to (memory).

- headlines have no encoder: the prompt itself builds the decoder state;
- ``RNNEncoder``: a bidirectional LSTM/GRU over packed source sentences (translation);
- ``FeatureEncoder``: a projection of CNN grid features (captioning; the CNN itself lives in
  :mod:`seqgen.nn.backbones` so frozen features can be cached once on disk);
- ``ImageEncoder``: the CNN inside the model, then that projection, for fine-tuning its last
  blocks (pixels in, so no cache).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.batch import Batch


class Encoded(NamedTuple):
    memory: Tensor  # (B, S, M)
    mask: Tensor | None  # (B, S) True at real positions
    context: Tensor  # (B, C) summary that initialises the decoder through its bridge


@dataclass
class EncoderConfig:
    kind: Literal["none", "rnn", "features", "image"] = "none"
    cell: Literal["lstm", "gru"] = "gru"
    emb_dim: int = 256
    hidden_dim: int = 256  # per direction for the RNN encoder; projection size for features
    num_layers: int = 1
    dropout: float = 0.0
    feature_dim: int = 0  # channels of the CNN grid features (captioning)
    backbone: str = "efficientnet_lite0"  # kind=image: the CNN run inside the model ...
    image_size: int = 224
    trainable_blocks: int = 1  # ... and how many of its last blocks are fine-tuned


# ------------------------------------------------------------------------------------------------
class RNNEncoder(nn.Module):
    """Bidirectional RNN; memory is both directions' outputs, context their final states."""

    def __init__(self, config: EncoderConfig, *, vocab_size: int) -> None:
        super().__init__()
        c = config
        self.embed = nn.Embedding(vocab_size, c.emb_dim, padding_idx=0)
        rnn_cls = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(c.emb_dim, c.hidden_dim, num_layers=c.num_layers, batch_first=True,
                           bidirectional=True, dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.output_dim = 2 * c.hidden_dim

    def forward(self, batch: Batch) -> Encoded:
        if batch.src is None or batch.src_lengths is None:
            raise ValueError("the RNN encoder needs batch.src and batch.src_lengths")
        src, lengths = batch.src, batch.src_lengths
        x = self.dropout(self.embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True,
                                      enforce_sorted=False)
        out, hidden = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, 2H)
        h = hidden[0] if isinstance(hidden, tuple) else hidden  # (2L, B, H)
        context = torch.cat([h[-2], h[-1]], dim=-1)  # (B, 2H) last layer, both directions
        mask = torch.arange(src.size(1), device=src.device)[None, :] < lengths.to(src.device)[:, None]
        return Encoded(self.dropout(out), mask, context)


class FeatureEncoder(nn.Module):
    """Projects precomputed CNN grid features; their mean is the summary (Show, Attend and Tell)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.feature_dim <= 0:
            raise ValueError("the feature encoder needs encoder.feature_dim (the CNN's channels)")
        self.proj = nn.Linear(config.feature_dim, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.output_dim = config.hidden_dim

    def forward(self, batch: Batch) -> Encoded:
        if batch.features is None or batch.features.dim() != 3:
            raise ValueError("the feature encoder needs batch.features of shape (B, N, C)")
        memory = self.dropout(torch.relu(self.proj(batch.features)))  # (B, N, M)
        return Encoded(memory, None, memory.mean(dim=1))  # (B, N, M), None, (B, M)


class ImageEncoder(nn.Module):
    """A CNN backbone inside the model, its last blocks trainable, then the feature projection."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        from .backbones import build_backbone

        self.backbone = build_backbone(config.backbone, image_size=config.image_size,
                                       trainable_blocks=config.trainable_blocks)
        self.project = FeatureEncoder(replace(config, feature_dim=self.backbone.feature_dim))
        self.output_dim = self.project.output_dim

    def train(self, mode: bool = True) -> "ImageEncoder":
        super().train(mode)
        self.backbone.eval()  # batch-norm statistics stay as pretrained; small batches would ruin them
        return self

    def forward(self, batch: Batch) -> Encoded:
        if batch.features is None or batch.features.dim() != 4:
            raise ValueError("the image encoder needs batch.features as pixels (B, 3, H, W)")
        return self.project(replace(batch, features=self.backbone(batch.features)))


def build_encoder(config: EncoderConfig, *, vocab_size: int) -> nn.Module | None:
    if config.kind == "none":
        return None
    if config.kind == "rnn":
        return RNNEncoder(config, vocab_size=vocab_size)
    if config.kind == "features":
        return FeatureEncoder(config)
    if config.kind == "image":
        return ImageEncoder(config)
    raise ValueError(f"unknown encoder kind {config.kind!r}; expected none, rnn, features or image")
