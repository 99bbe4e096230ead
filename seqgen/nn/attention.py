"""Attention over a memory: (query, memory, mask) -> (context, weights), for all queries at once.

Luong-style: the decoder attends *after* its RNN, so the teacher-forced pass computes attention for
every target position in one batched product, and a single step is the same code with T = 1.
Keys are projected once per source (``keys``) and kept in the decoder state.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    """Base class: subclasses define ``project_keys`` and ``scores``."""

    def project_keys(self, memory: Tensor) -> Tensor:
        """Precomputes what only depends on the memory. memory: (B, S, M)."""
        return memory

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor | None, *,
                group: int = 1) -> tuple[Tensor, Tensor]:
        """Attends every query position over the memory.

        Args:
            query: (B, T, H) decoder outputs.
            memory: (B / group, S, M) encoder outputs (the values).
            keys: (B / group, S, K) from ``project_keys(memory)``.
            mask: (B / group, S) bool, True where the memory is real (not padding); None: all.
            group: consecutive query rows sharing one memory row (beams or samples of an input).

        Returns:
            context (B, T, M) and weights (B, T, S) that sum to one over real positions.
        """
        b, t, _ = query.shape
        query = query.reshape(b // group, group * t, -1)  # the rows of a group as more positions
        scores = self.scores(query, keys)  # (B/g, g*T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B/g, g*T, S)
        context = torch.bmm(weights, memory)  # (B/g, g*T, M)
        return context.reshape(b, t, -1), weights.reshape(b, t, -1)  # (B, T, M), (B, T, S)


class DotAttention(Attention):
    """Luong dot ("general" with a learned W when query and memory sizes differ or asked for)."""

    def __init__(self, query_dim: int, memory_dim: int, *, general: bool = True) -> None:
        super().__init__()
        if not general and query_dim != memory_dim:
            raise ValueError("dot attention needs query_dim == memory_dim; use 'general'")
        self.proj = nn.Linear(memory_dim, query_dim, bias=False) if general else None
        self.scale = query_dim ** -0.5

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.proj(memory) if self.proj is not None else memory  # (B, S, H)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2)) * self.scale  # (B, T, S)


class AdditiveAttention(Attention):
    """Bahdanau: v^T tanh(W_q q + W_k k)."""

    def __init__(self, query_dim: int, memory_dim: int, *, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.key_proj = nn.Linear(memory_dim, attn_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.energy = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)  # (B, S, A)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.query_proj(query)  # (B, T, A)
        return self.energy(torch.tanh(q[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)  # (B, T, S)


def build_attention(kind: str, query_dim: int, memory_dim: int) -> Attention:
    if kind == "dot":
        return DotAttention(query_dim, memory_dim, general=False)
    if kind == "general":
        return DotAttention(query_dim, memory_dim, general=True)
    if kind == "additive":
        return AdditiveAttention(query_dim, memory_dim)
    raise ValueError(f"unknown attention {kind!r}; expected none, dot, general or additive")
