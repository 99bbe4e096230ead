"""The shared recurrent decoder (LSTM or GRU, optional attention) and its immutable state.

Every generator in seqgen is this decoder plus an encoder that builds its initial state. The
teacher-forced ``forward`` runs the fused ``nn.LSTM``/``nn.GRU`` over the whole sequence and attends
for all positions in one batched product; ``step`` is the same computation for one token, so
stepping reproduces ``forward`` exactly (tested).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import build_attention

Hidden = Tensor | tuple[Tensor, Tensor]


@dataclass
class DecoderConfig:
    cell: Literal["lstm", "gru"] = "lstm"
    emb_dim: int = 128
    hidden_dim: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    one_hot: bool = False  # feed one-hot vectors (the lesson's choice) instead of a learned embedding
    attention: Literal["none", "dot", "general", "additive"] = "none"
    bridge: bool = True  # initial state from the context vector through a learned layer (else zeros)
    tie_weights: bool = False  # share the output layer with the embedding
    input_feeding: bool = False  # feed the last attentional vector with the next token (Luong);
    # it lets the state remember where it looked, at the price of a loop over time in training


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecoderState:
    """What the decoder carries between steps. Immutable: every method returns a new state.

    Attributes:
        hidden: (L, B, H), or a (h, c) pair of those for an LSTM.
        memory: (B, S, M) encoder outputs to attend over, or None.
        keys: (B, S, K) attention keys precomputed from the memory, or None.
        mask: (B, S) bool, True at real memory positions, or None.
        attention: (B, T, S) attention weights of the last call, or None (for plotting).
        feed: (B, H) the last attentional vector, with input feeding; else None.
        group: each memory row serves this many consecutive batch rows, so memory, keys and mask
            have B / group rows. Beams and samples of one input share its memory instead of
            copying it at every reordering (the copies took a quarter of beam-search time).
    """

    hidden: Hidden
    memory: Tensor | None = None
    keys: Tensor | None = None
    mask: Tensor | None = None
    attention: Tensor | None = None
    feed: Tensor | None = None
    group: int = 1

    def index_select(self, index: Tensor) -> "DecoderState":
        """Reorders (or repeats) batch entries, as beam search and n-sample generation need."""
        hidden = (tuple(h.index_select(1, index) for h in self.hidden)
                  if isinstance(self.hidden, tuple) else self.hidden.index_select(1, index))
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        memory, keys, mask, group = self.memory, self.keys, self.mask, 1
        if memory is not None:
            owner = torch.div(index, self.group, rounding_mode="floor")  # memory row of each row
            rows, group = _runs(owner)
            if rows is None:  # rows of one memory are not together: give each its own copy
                rows, group = owner, 1
            if rows.numel() != memory.size(0) or not torch.equal(
                    rows, torch.arange(memory.size(0), device=rows.device)):
                memory, keys, mask = pick_rows(memory, rows), pick_rows(keys, rows), pick_rows(
                    mask, rows)
        return DecoderState(hidden, memory, keys, mask, pick(self.attention), pick(self.feed),
                            group)

    @property
    def batch_size(self) -> int:
        h = self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden
        return h.size(1)


def pick_rows(t: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if t is None else t.index_select(0, rows)


def _runs(owner: Tensor) -> tuple[Tensor | None, int]:
    """When ``owner`` (N,) is runs of one common length g, the value of each run and g."""
    n = owner.numel()
    if n == 0:
        return None, 1
    runs = int((owner[1:] != owner[:-1]).sum()) + 1
    if n % runs:
        return None, 1
    grid = owner.view(runs, n // runs)
    if not bool((grid == grid[:, :1]).all()):
        return None, 1
    return grid[:, 0], n // runs


# ------------------------------------------------------------------------------------------------
class RecurrentDecoder(nn.Module):
    """Embedding -> fused RNN -> (attention + combine) -> output layer over the vocabulary."""

    def __init__(self, config: DecoderConfig, *, vocab_size: int, memory_dim: int = 0,
                 context_dim: int = 0) -> None:
        super().__init__()
        c = config
        if c.cell not in ("lstm", "gru"):
            raise ValueError(f"decoder cell must be 'lstm' or 'gru', got {c.cell!r}")
        if c.attention != "none" and memory_dim <= 0:
            raise ValueError("attention needs an encoder memory; set decoder.attention=none")
        if c.input_feeding and c.attention == "none":
            raise ValueError("input feeding feeds attention back; set decoder.attention too")
        if c.one_hot and c.tie_weights:
            raise ValueError("one-hot input has no embedding to tie; unset decoder.tie_weights")
        self.config = c
        self.vocab_size = vocab_size
        in_dim = (vocab_size if c.one_hot else c.emb_dim) + (c.hidden_dim if c.input_feeding else 0)
        if c.one_hot:
            self.embed = nn.Embedding.from_pretrained(torch.eye(vocab_size), freeze=True)
        else:
            self.embed = nn.Embedding(vocab_size, c.emb_dim, padding_idx=0)
        rnn_cls = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(in_dim, c.hidden_dim, num_layers=c.num_layers, batch_first=True,
                           dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.attention = None
        out_dim = c.hidden_dim
        if c.attention != "none":
            self.attention = build_attention(c.attention, c.hidden_dim, memory_dim)
            self.combine = nn.Linear(c.hidden_dim + memory_dim, c.hidden_dim)
        self.bridge = None
        if c.bridge and context_dim > 0:
            n_states = 2 if c.cell == "lstm" else 1
            self.bridge = nn.Linear(context_dim, n_states * c.num_layers * c.hidden_dim)
        self.pre_output = None
        if c.tie_weights and out_dim != c.emb_dim:
            self.pre_output = nn.Linear(out_dim, c.emb_dim, bias=False)
            out_dim = c.emb_dim
        self.output = nn.Linear(out_dim, vocab_size)
        if c.tie_weights:
            self.output.weight = self.embed.weight

    # ------------------------------------------------------------------------------------------
    def init_state(self, *, batch_size: int, context: Tensor | None = None,
                   memory: Tensor | None = None, mask: Tensor | None = None) -> DecoderState:
        """Builds the first state from the encoder's summary ``context`` (B, C) and ``memory``.

        Without a context (or bridge) the hidden state starts at zeros.
        """
        c = self.config
        device = self.embed.weight.device
        shape = (c.num_layers, batch_size, c.hidden_dim)
        if self.bridge is not None and context is not None:
            flat = torch.tanh(self.bridge(context))  # (B, n*L*H)
            parts = flat.view(batch_size, -1, c.num_layers, c.hidden_dim).permute(1, 2, 0, 3)
            parts = parts.contiguous()  # (n, L, B, H)
            hidden: Hidden = (parts[0], parts[1]) if c.cell == "lstm" else parts[0]
        else:
            zeros = torch.zeros(shape, device=device)
            hidden = (zeros, zeros.clone()) if c.cell == "lstm" else zeros
        keys = None
        if self.attention is not None:
            if memory is None:
                raise ValueError("this decoder attends: init_state needs the encoder memory")
            keys = self.attention.project_keys(memory)  # (B, S, K)
        feed = torch.zeros(batch_size, c.hidden_dim, device=device) if c.input_feeding else None
        return DecoderState(hidden, memory, keys, mask, feed=feed)

    def forward(self, tokens: Tensor, state: DecoderState, *, lengths: Tensor | None = None
                ) -> tuple[Tensor, DecoderState]:
        """Teacher-forced pass over whole sequences.

        Args:
            tokens: (B, T) input ids.
            state: the state before the first token.
            lengths: (B,) real lengths; when given, the returned hidden state is each sequence's
                state after its own last real token (padding never touches it).

        Returns:
            logits (B, T, V) and the state after the last token.
        """
        if self.config.input_feeding:
            return self._forward_fed(tokens, state, lengths)
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True,
                                          enforce_sorted=False)
            out, hidden = self.rnn(packed, state.hidden)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))
        else:
            out, hidden = self.rnn(x, state.hidden)  # (B, T, H)
        return self._output(out, state, hidden)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One token per sequence. tokens: (B,) -> logits (B, V) and the next state.

        The same maths as ``forward`` with T = 1, but through the cell functions on the fused
        RNN's own weights: a one-step call of the fused kernel costs several times more.
        """
        x = self.dropout(self.embed(tokens))  # (B, E)
        if state.feed is not None:
            x = torch.cat([x, state.feed], dim=-1)  # (B, E + H)
        rnn, cell = self.rnn, torch.lstm_cell if self.config.cell == "lstm" else torch.gru_cell
        layers = []
        for layer in range(rnn.num_layers):
            if layer > 0:
                x = nn.functional.dropout(x, rnn.dropout, self.training)
            weights = [getattr(rnn, f"{name}_l{layer}") for name in
                       ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if isinstance(state.hidden, tuple):
                h, c = cell(x, (state.hidden[0][layer], state.hidden[1][layer]), *weights)
                layers.append((h, c))
            else:
                h = cell(x, state.hidden[layer], *weights)
                layers.append(h)
            x = h  # (B, H)
        hidden: Hidden = (torch.stack([h for h, _ in layers]), torch.stack([c for _, c in layers])
                          ) if isinstance(state.hidden, tuple) else torch.stack(layers)
        logits, state = self._output(x[:, None], state, hidden)
        return logits[:, 0], state  # (B, V)

    def _output(self, out: Tensor, state: DecoderState, hidden: Hidden
                ) -> tuple[Tensor, DecoderState]:
        """RNN outputs (B, T, H) -> attention, combination and logits (B, T, V)."""
        weights = None
        if self.attention is not None:
            context, weights = self.attention(out, state.memory, state.keys, state.mask,
                                              group=state.group)
            out = torch.tanh(self.combine(torch.cat([out, context], dim=-1)))  # (B, T, H)
        feed = out[:, -1] if self.config.input_feeding else None
        out = self.dropout(out)
        if self.pre_output is not None:
            out = self.pre_output(out)  # (B, T, E)
        next_state = DecoderState(hidden, state.memory, state.keys, state.mask, weights, feed,
                                  state.group)
        return self.output(out), next_state  # (B, T, V)

    def _forward_fed(self, tokens: Tensor, state: DecoderState, lengths: Tensor | None
                     ) -> tuple[Tensor, DecoderState]:
        """Teacher forcing with input feeding: each step needs the last one's attentional vector,
        so this loops over time through ``step``."""
        if lengths is not None:
            raise ValueError("prompts of different lengths are not supported with input feeding")
        logits, attention = [], []
        for t in range(tokens.size(1)):
            step_logits, state = self.step(tokens[:, t], state)
            logits.append(step_logits)
            attention.append(state.attention)
        weights = torch.cat(attention, dim=1)  # (B, T, S)
        return torch.stack(logits, dim=1), DecoderState(state.hidden, state.memory, state.keys,
                                                        state.mask, weights, state.feed,
                                                        state.group)
