"""Ensembles: several models with one output vocabulary decoding as one.

At every step the members' next-token distributions are averaged (the log of the mean
probability), the usual way to ensemble sequence models: independently trained models make
different mistakes, and the average is better calibrated than any one of them. An ensemble is a
stepper like any model (``init_state`` / ``step``), and the members' states travel together in
one :class:`EnsembleState` that beam search reorders like any other, so every searcher decodes an
ensemble unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batch import Batch
from ..vocab import PAD
from .model import EncoderDecoder


@dataclass(frozen=True)
class EnsembleState:
    """One state per member, in member order."""

    members: tuple[Any, ...]

    def index_select(self, index: Tensor) -> "EnsembleState":
        return EnsembleState(tuple(state.index_select(index) for state in self.members))

    @property
    def attention(self) -> Tensor | None:
        """The members' mean attention (B, T, S) when they all attend over the same positions,
        else the first member's (or None): what attention pictures show."""
        maps = [getattr(state, "attention", None) for state in self.members]
        if any(m is None for m in maps) or len({tuple(m.shape) for m in maps}) > 1:
            return maps[0]
        return torch.stack([m.float() for m in maps]).mean(dim=0)


class Ensemble(nn.Module):
    """Members decode in step; ``step`` returns the log of their mean next-token probability."""

    def __init__(self, members: Sequence[EncoderDecoder]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two models (got {len(members)})")
        sizes = {m.decoder.embed.weight.size(0) for m in members}
        if len(sizes) > 1:
            raise ValueError("ensemble members must share one output vocabulary "
                             f"(sizes {sorted(sizes)})")
        kinds = {m.config.encoder.kind for m in members}
        if len(kinds) > 1:
            raise ValueError("ensemble members must read the same inputs "
                             f"(encoders: {sorted(kinds)})")
        self.members = nn.ModuleList(members)

    # Inputs are the first member's business: the members read the same ones (checked above).
    @property
    def config(self) -> Any:
        return self.members[0].config

    @property
    def encoder(self) -> nn.Module | None:
        return self.members[0].encoder

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def num_parameters(self) -> int:
        return sum(m.num_parameters() for m in self.members)

    # ------------------------------------------------------------------------------------------
    def init_state(self, batch: Batch) -> tuple[EnsembleState, Tensor]:
        states, firsts = zip(*(m.init_state(batch) for m in self.members))
        return EnsembleState(tuple(states)), firsts[0]

    def step(self, tokens: Tensor, state: EnsembleState, *,
             output: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, EnsembleState]:
        """(N,) tokens -> (N, V) log mean probability over the members, and the next state."""
        if output is not None:
            raise ValueError("an ensemble scores its whole vocabulary (no shortlist)")
        logps, states = [], []
        for member, member_state in zip(self.members, state.members):
            logits, new_state = member.step(tokens, member_state)
            logps.append(logits.float().log_softmax(-1))  # (N, V)
            states.append(new_state)
        return _mean_probability(logps), EnsembleState(tuple(states))

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy of the ensemble's distribution over real target tokens, and
        their number (what held-out bits per symbol are computed from)."""
        logps = [m.teacher_forced_logits(batch).float().log_softmax(-1) for m in self.members]
        mixed = _mean_probability(logps)  # (B, T, V)
        total = F.nll_loss(mixed.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD,
                           reduction="sum")
        return total, (batch.tgt_out != PAD).sum()


def _mean_probability(logps: Sequence[Tensor]) -> Tensor:
    """log(mean_i p_i), computed from log-probabilities without leaving log space."""
    return torch.logsumexp(torch.stack(list(logps)), dim=0) - math.log(len(logps))
