"""EncoderDecoder: an optional encoder plus the shared decoder, seen by the rest of seqgen only
through ``loss(batch)``, ``init_state(batch)`` and ``step(tokens, state)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batch import Batch
from ..vocab import BOS, PAD
from .decoder import DecoderConfig, RecurrentDecoder
from .state import DecoderState, keep_where
from .encoders import EncoderConfig, build_encoder


@dataclass
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    share_embeddings: bool = False  # source and target share one embedding (joint vocabulary)
    label_smoothing: float = 0.0  # used in training only; evaluation reports the true NLL
    attention_spread: float = 0.0  # lambda of Show, Attend and Tell's doubly stochastic
    # regulariser: every memory position should get about one unit of attention over a caption


class EncoderDecoder(nn.Module):
    """A generator: encoder (or none) -> decoder state -> next-token logits."""

    def __init__(self, config: ModelConfig, *, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder, vocab_size=src_vocab_size)
        enc_dim = getattr(self.encoder, "output_dim", 0)
        if config.decoder.copy and src_vocab_size != tgt_vocab_size:
            raise ValueError("decoder.copy copies source tokens into the output: it needs one "
                             "joint vocabulary for both sides")
        self.decoder = RecurrentDecoder(config.decoder, vocab_size=tgt_vocab_size,
                                        memory_dim=enc_dim, context_dim=enc_dim)
        if config.share_embeddings:
            if self.encoder is None or not hasattr(self.encoder, "embed"):
                raise ValueError("share_embeddings needs a text encoder")
            if self.encoder.embed.weight.shape != self.decoder.embed.weight.shape:
                raise ValueError("share_embeddings needs one vocabulary and equal embedding sizes")
            self.encoder.embed.weight = self.decoder.embed.weight

    # ------------------------------------------------------------------------------------------
    def forward(self, batch: Batch, *, per_sequence: bool = False,
                banned: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        """:meth:`loss`, or with ``per_sequence`` :meth:`sequence_nll`; exists so
        DistributedDataParallel can wrap the model (and sync the gradients of either)."""
        return self.sequence_nll(batch, banned=banned) if per_sequence else self.loss(batch)

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Teacher-forced summed cross-entropy over real target tokens.

        Returns:
            (total loss, number of target tokens); PAD targets are ignored via ``ignore_index``.
        """
        state = self._encode(batch)
        logits, end = self.decoder(batch.tgt_in, state)  # (B, T, V)
        smoothing = self.config.label_smoothing if self.training else 0.0
        total = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(),
                                ignore_index=PAD, reduction="sum", label_smoothing=smoothing)
        n_tokens = (batch.tgt_out != PAD).sum()
        if self.training and self.config.attention_spread and end.attention is not None:
            total = total + self.config.attention_spread * n_tokens * _spread_penalty(
                end.attention, batch.tgt_out != PAD, state.mask)
        return total, n_tokens

    def stream_loss(self, batch: Batch, state: DecoderState | None = None
                    ) -> tuple[Tensor, Tensor, DecoderState]:
        """:meth:`loss` over one window of a continuous text, starting from ``state`` (the state
        the previous window ended in; None: the text starts here), and the state this window
        ends in, for the next one. A decoder-only model (a language model) only.

        Returns:
            (summed loss, number of target tokens, the state at the window's end).
        """
        if self.encoder is not None:
            raise ValueError("a stream is read by a decoder-only model (encoder kind 'none')")
        if state is None:
            state = self.decoder.init_state(batch_size=batch.size)
        logits, end = self.decoder(batch.tgt_in, state)  # (B, T, V)
        smoothing = self.config.label_smoothing if self.training else 0.0
        total = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(),
                                ignore_index=PAD, reduction="sum", label_smoothing=smoothing)
        return total, (batch.tgt_out != PAD).sum(), end

    def sequence_nll(self, batch: Batch, *, banned: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        """Per row, the negative log-likelihood of its target tokens (no smoothing, no
        regulariser): what a policy gradient weights, sequence by sequence.

        Args:
            banned: ids the sampler never emits (PAD, BOS, UNK): left out of the softmax, so the
                likelihood is the sampling policy's own. Left in, nothing ever pushes them down
                and they soak up the probability (self-critical training made UNK every argmax).

        Returns:
            (B,) summed NLL and (B,) number of target tokens.
        """
        state = self._encode(batch)
        logits, _ = self.decoder(batch.tgt_in, state)  # (B, T, V)
        if banned:
            logits = logits.index_fill(-1, torch.as_tensor(list(banned), device=logits.device),
                                       float("-inf"))
        nll = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(),
                              ignore_index=PAD, reduction="none").view(batch.tgt_out.shape)
        return nll.sum(dim=1), (batch.tgt_out != PAD).sum(dim=1)

    def teacher_forced_logits(self, batch: Batch) -> Tensor:
        """(B, T, V) next-token logits at every target position, the targets fed in."""
        logits, _ = self.decoder(batch.tgt_in, self._encode(batch))
        return logits

    def init_state(self, batch: Batch) -> tuple[DecoderState, Tensor]:
        """The state to generate from and the first tokens (B,) to feed to ``step``.

        With a prompt (BOS + ids), every prompt token but the last is run through the decoder
        once, as one fused pass, and the last one is fed first: generation cost stays linear.
        """
        state = self._encode(batch)
        if batch.prompt is None:
            return state, torch.full((batch.size,), BOS, dtype=torch.long, device=self.device)
        prompt, lengths = batch.prompt, batch.prompt_lengths.to(self.device)
        first = prompt.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)  # (B,)
        if prompt.size(1) > 1 and bool((lengths > 1).any()):
            _, run = self.decoder(prompt[:, :-1], state, lengths=lengths - 1)
            state = keep_where(lengths > 1, run, state)  # a 1-token prompt: nothing to run
        return state, first

    def step(self, tokens: Tensor, state: DecoderState, *,
             output: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, DecoderState]:
        return self.decoder.step(tokens, state, output=output)

    # ------------------------------------------------------------------------------------------
    def _encode(self, batch: Batch) -> DecoderState:
        if self.encoder is None:
            return self.decoder.init_state(batch_size=batch.size)
        enc = self.encoder(batch)
        source = batch.src if self.config.decoder.copy else None  # what a pointer copies from
        return self.decoder.init_state(batch_size=batch.size, context=enc.context,
                                       memory=enc.memory, mask=enc.mask, source=source)

    @property
    def device(self) -> torch.device:
        return self.decoder.embed.weight.device  # (the output layer may be a quantised one)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _spread_penalty(attention: Tensor, real: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over real memory positions of (1 - attention they got over the real steps)^2.

    Args:
        attention: (B, T, S) weights; real: (B, T) bool target positions; mask: (B, S) or None.
    """
    received = (attention.float() * real[:, :, None]).sum(dim=1)  # (B, S)
    penalty = (1.0 - received) ** 2
    if mask is None:
        return penalty.mean()
    return (penalty * mask).sum() / mask.sum().clamp(min=1)
