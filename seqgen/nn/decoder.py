"""The shared recurrent decoder (LSTM or GRU, optional attention) and its immutable state.

Every generator in seqgen is this decoder plus an encoder that builds its initial state. The
teacher-forced ``forward`` runs the fused ``nn.LSTM``/``nn.GRU`` over the whole sequence and attends
for all positions in one batched product; ``step`` is the same computation for one token, so
stepping reproduces ``forward`` exactly (tested).

Attention comes after the RNN (Luong) by default. ``attend_first`` gives Show, Attend and Tell's
form instead: the previous state attends, and the gated context is fed into the RNN step with the
token (training then loops over time, like Luong's input feeding). For language models,
``weight_drop`` and ``embed_dropout`` add AWD-LSTM's DropConnect on the recurrent weights and
dropout of whole symbols.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import build_attention
from .state import DecoderState, Hidden, keep_where


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
    weight_drop: float = 0.0  # AWD-LSTM DropConnect on the hidden-to-hidden weights (training)
    embed_dropout: float = 0.0  # drops whole symbols from the embedding table (training)
    attend_first: bool = False  # Show, Attend and Tell: attend with the previous state, before the
    # RNN step, and feed the context (scaled by a learned gate) into it; also loops over time
    copy: bool = False  # pointer-generator (See et al. 2017): a learned gate mixes the output
    # distribution with the attention over the source tokens, so rare names can be copied; needs
    # attention and source ids in the output vocabulary (one joint vocabulary)


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
        if c.attend_first and (c.attention == "none" or c.input_feeding):
            raise ValueError("attend_first needs decoder.attention and replaces input_feeding")
        if c.weight_drop and (c.input_feeding or c.attend_first):
            raise ValueError("weight_drop works on the fused RNN pass; it cannot be combined with "
                             "input_feeding or attend_first")
        if c.copy and c.attention == "none":
            raise ValueError("copying attends over the source; set decoder.attention too")
        if c.one_hot and c.tie_weights:
            raise ValueError("one-hot input has no embedding to tie; unset decoder.tie_weights")
        self.config = c
        self.vocab_size = vocab_size
        in_dim = ((vocab_size if c.one_hot else c.emb_dim) + (c.hidden_dim if c.input_feeding else 0)
                  + (memory_dim if c.attend_first else 0))
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
        self.gate = nn.Linear(c.hidden_dim, memory_dim) if c.attend_first else None  # beta
        self.copy_gate = nn.Linear(c.hidden_dim + memory_dim, 1) if c.copy else None  # p_gen
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
        # stepping runs the RNN through the cell functions on its own weights, or through these
        # replacements, ``step_cells(layer, x, hidden) -> hidden`` (int8 kernels; seqgen.nn.int8)
        self.step_cells: Callable | None = None

    # ------------------------------------------------------------------------------------------
    def init_state(self, *, batch_size: int, context: Tensor | None = None,
                   memory: Tensor | None = None, mask: Tensor | None = None,
                   source: Tensor | None = None) -> DecoderState:
        """Builds the first state from the encoder's summary ``context`` (B, C) and ``memory``;
        a copying decoder also keeps the ``source`` ids (B, S) it copies from.

        Without a context (or bridge) the hidden state starts at zeros.
        """
        if self.copy_gate is not None and source is None:
            raise ValueError("this decoder copies from its source: init_state needs the source "
                             "ids")
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
        return DecoderState(hidden, memory, keys, mask, feed=feed,
                            source=source if self.copy_gate is not None else None)

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
        if self.config.input_feeding or self.config.attend_first:
            return self._forward_stepped(tokens, state, lengths)
        x = self.dropout(self._embed(tokens))  # (B, T, E)
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True,
                                          enforce_sorted=False)
            out, hidden = self._run_rnn(packed, state.hidden)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))
        else:
            out, hidden = self._run_rnn(x, state.hidden)  # (B, T, H)
        return self._output(out, state, hidden)

    def _embed(self, tokens: Tensor) -> Tensor:
        """The embedding, with whole symbols dropped in training (the same ones at every step)."""
        p = self.config.embed_dropout
        if not (self.training and p > 0):
            return self.embed(tokens)
        weight = self.embed.weight
        keep = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
        return nn.functional.embedding(tokens, weight * keep, padding_idx=self.embed.padding_idx)

    def _run_rnn(self, x, hidden: Hidden):
        """The fused RNN; in training with weight_drop, on freshly dropped hidden-to-hidden
        weights (one mask per batch, shared by all time steps)."""
        p = self.config.weight_drop
        if not (self.training and p > 0):
            return self.rnn(x, hidden)
        dropped = {f"weight_hh_l{k}": nn.functional.dropout(getattr(self.rnn, f"weight_hh_l{k}"), p)
                   for k in range(self.rnn.num_layers)}
        return torch.func.functional_call(self.rnn, dropped, (x, hidden))

    def step(self, tokens: Tensor, state: DecoderState, *,
             output: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, DecoderState]:
        """One token per sequence. tokens: (B,) -> logits (B, V) and the next state.

        The same maths as ``forward`` with T = 1, but through the cell functions on the fused
        RNN's own weights: a one-step call of the fused kernel costs several times more.
        ``output`` replaces the output layer, e.g. by some of its rows (a vocabulary shortlist).
        """
        x = self._embed(tokens)  # (B, E)
        if self.training:  # (calls skipped when generating: a step is a few dozen small ops)
            x = self.dropout(x)
        attended = None
        if self.gate is not None:  # attend first, with the state before this step
            query = _top(state.hidden)[:, None]  # (B, 1, H)
            attended = self.attention(query, state.memory, state.keys, state.mask,
                                      group=state.group)  # (B, 1, M), (B, 1, S)
            x = torch.cat([x, torch.sigmoid(self.gate(query[:, 0])) * attended[0][:, 0]], dim=-1)
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
                pair = (state.hidden[0][layer], state.hidden[1][layer])
                h, c = (self.step_cells(layer, x, pair) if self.step_cells
                        else cell(x, pair, *weights))
                layers.append((h, c))
            else:
                h = (self.step_cells(layer, x, state.hidden[layer]) if self.step_cells
                     else cell(x, state.hidden[layer], *weights))
                layers.append(h)
            x = h  # (B, H)
        hidden: Hidden = (_layers([h for h, _ in layers]), _layers([c for _, c in layers])
                          ) if isinstance(state.hidden, tuple) else _layers(layers)
        logits, state = self._output(x[:, None], state, hidden, attended, output)
        return logits[:, 0], state  # (B, V)

    def _output(self, out: Tensor, state: DecoderState, hidden: Hidden,
                attended: tuple[Tensor, Tensor] | None = None,
                output: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, DecoderState]:
        """RNN outputs (B, T, H) -> attention (unless ``attended`` already holds its context and
        weights), combination and logits (B, T, V)."""
        weights = context = None
        if self.attention is not None:
            context, weights = attended or self.attention(out, state.memory, state.keys,
                                                          state.mask, group=state.group)
            out = torch.tanh(self.combine(torch.cat([out, context], dim=-1)))  # (B, T, H)
        feed = out[:, -1] if self.config.input_feeding else None
        gate = (torch.sigmoid(self.copy_gate(torch.cat([out, context], dim=-1)))  # (B, T, 1)
                if self.copy_gate is not None else None)
        if self.training:
            out = self.dropout(out)
        if self.pre_output is not None:
            out = self.pre_output(out)  # (B, T, E)
        next_state = DecoderState(hidden, state.memory, state.keys, state.mask, weights, feed,
                                  state.group, state.source)
        if gate is None:
            return (output or self.output)(out), next_state  # (B, T, V)
        if output is not None:
            raise ValueError("a copying decoder scores the whole vocabulary; turn the shortlist "
                             "off")
        return copy_mix(self.output(out), gate, weights, state.source, state.group), next_state

    def _forward_stepped(self, tokens: Tensor, state: DecoderState, lengths: Tensor | None
                         ) -> tuple[Tensor, DecoderState]:
        """Teacher forcing when each step's input needs the last step's attention (input feeding,
        attend first): a loop over time through ``step``. With ``lengths`` (B,), each row's
        state (its hidden state and fed vector) stops at its own length."""
        logits, attention = [], []
        for t in range(tokens.size(1)):
            step_logits, stepped = self.step(tokens[:, t], state)
            # rows whose sequence (a prompt of ``lengths``) has ended keep their state
            state = stepped if lengths is None else keep_where(
                lengths.to(tokens.device) > t, stepped, state, attention=stepped.attention)
            logits.append(step_logits)
            attention.append(stepped.attention)
        weights = torch.cat(attention, dim=1)  # (B, T, S)
        return torch.stack(logits, dim=1), DecoderState(state.hidden, state.memory, state.keys,
                                                        state.mask, weights, state.feed,
                                                        state.group, state.source)


def copy_mix(logits: Tensor, gate: Tensor, attention: Tensor, source: Tensor, group: int
             ) -> Tensor:
    """The pointer-generator's output as log-probabilities: ``gate`` of the vocabulary
    distribution plus ``1 - gate`` of the attention, added onto each source position's token.

    Args:
        logits: (B, T, V); gate: (B, T, 1) in (0, 1); attention: (B, T, S) weights;
        source: (B / group, S) ids (padding positions have zero attention).

    Returns:
        (B, T, V) log-probabilities; they sum to one, so the cross-entropy and the searchers'
        log-softmax take them as they are.
    """
    if group > 1:
        source = source.repeat_interleave(group, dim=0)  # (B, S)
    probs = gate.float() * logits.float().softmax(-1)  # (B, T, V)
    index = source[:, None, :].expand(-1, attention.size(1), -1)  # (B, T, S)
    probs = probs.scatter_add(-1, index, (1.0 - gate.float()) * attention.float())
    return probs.clamp(min=1e-12).log()


def _top(hidden: Hidden) -> Tensor:
    """The last layer's hidden state (B, H): an LSTM's h, not its cell."""
    return (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]


def _layers(states: list[Tensor]) -> Tensor:
    """Per-layer (B, H) states as one (L, B, H) tensor; a single layer is a view, not a copy."""
    return states[0].unsqueeze(0) if len(states) == 1 else torch.stack(states)
