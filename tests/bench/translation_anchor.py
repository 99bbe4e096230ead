"""The anchor of bench_translation.py: Joey NMT 2.3's recurrent configuration, re-implemented
from its description (word vocabularies, bi-GRU-256 encoder, GRU-512 decoder with additive
attention and input feeding, bridge initialisation, batches of 64, Adam 1e-3), with the loop that
trains it and its greedy translations. Kept apart from the bench so each reads on its own."""
from __future__ import annotations

import itertools
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqgen.data.batch import bucket_plan, pad
from seqgen.tokenizers import WordTokenizer
from seqgen.vocab import BOS, EOS, PAD, Vocab


class AnchorNMT(nn.Module):
    """Bi-GRU encoder + GRU decoder with additive attention and input feeding (Joey NMT style)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, emb: int = 256, enc: int = 256,
                 dec: int = 512, dropout: float = 0.2) -> None:
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, emb, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, enc, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * enc, dec)
        self.key = nn.Linear(2 * enc, dec, bias=False)
        self.query = nn.Linear(dec, dec, bias=False)
        self.energy = nn.Linear(dec, 1, bias=False)
        self.cell = nn.GRUCell(emb + dec, dec)
        self.att_vector = nn.Linear(dec + 2 * enc, dec)
        self.output = nn.Linear(dec, tgt_vocab)
        self.dropout = nn.Dropout(dropout)
        self.dec = dec

    def encode(self, src, src_len):
        """Memory, its keys and mask, and the first hidden state."""
        x = self.dropout(self.src_embed(src))
        packed = pack_padded_sequence(x, src_len, batch_first=True, enforce_sorted=False)
        memory, _ = self.encoder(packed)
        memory, _ = pad_packed_sequence(memory, batch_first=True, total_length=src.size(1))
        mask = src != PAD
        summary = (memory * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return memory, self.key(memory), mask, torch.tanh(self.bridge(summary))

    def step(self, y, prev_att, hidden, memory, keys, mask):
        """One decoder step with input feeding: (attentional vector, hidden)."""
        hidden = self.cell(torch.cat([y, prev_att], -1), hidden)
        scores = self.energy(torch.tanh(keys + self.query(hidden)[:, None])).squeeze(-1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        context = torch.bmm(weights[:, None], memory).squeeze(1)
        return torch.tanh(self.att_vector(self.dropout(torch.cat([hidden, context], -1)))), hidden

    def forward(self, src, src_len, tgt_in, tgt_out):
        memory, keys, mask, hidden = self.encode(src, src_len)
        prev_att = memory.new_zeros(src.size(0), self.dec)
        y = self.dropout(self.tgt_embed(tgt_in))
        outputs = []
        for t in range(tgt_in.size(1)):  # input feeding forces a loop over time
            prev_att, hidden = self.step(y[:, t], prev_att, hidden, memory, keys, mask)
            outputs.append(prev_att)
        logits = self.output(self.dropout(torch.stack(outputs, 1)))
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD,
                               reduction="sum")

    @torch.no_grad()
    def greedy(self, src, src_len, max_len: int = 60) -> list[list[int]]:
        memory, keys, mask, hidden = self.encode(src, src_len)
        prev_att = memory.new_zeros(src.size(0), self.dec)
        token = torch.full((src.size(0),), BOS)
        out, done = [], torch.zeros(src.size(0), dtype=torch.bool)
        for _ in range(max_len):
            prev_att, hidden = self.step(self.tgt_embed(token), prev_att, hidden, memory, keys,
                                         mask)
            token = self.output(prev_att).argmax(-1)
            out.append(token)
            done |= token == EOS
            if bool(done.all()):
                break
        rows = torch.stack(out, 1).tolist()
        return [row[:row.index(EOS)] if EOS in row else row for row in rows]


class Anchor:
    """The anchor's word vocabularies, model and optimizer, trained in the bench's loop."""

    def __init__(self, src: list[str], tgt: list[str]) -> None:
        self.tokenizer = WordTokenizer()
        src_tok = [self.tokenizer.tokenize(s) for s in src]
        tgt_tok = [self.tokenizer.tokenize(t) for t in tgt]
        self.src_vocab, self.tgt_vocab = Vocab.build(src_tok, min_freq=2), Vocab.build(tgt_tok, min_freq=2)
        self.src_ids = [self.source(s) for s in src_tok]
        self.tgt_ids = [self.tgt_vocab.encode(t)[:50] for t in tgt_tok]
        torch.manual_seed(0)
        self.model = AnchorNMT(len(self.src_vocab), len(self.tgt_vocab))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def source(self, tokens: list[str]) -> list[int]:
        return self.src_vocab.encode(tokens)[:50] + [EOS]

    def train(self, seconds: float) -> dict:
        """Trains for ``seconds`` (epoch after epoch); target words and pairs per second."""
        tokens = sentences = 0
        start = time.perf_counter()
        step = 0
        for epoch in itertools.count():
            for indices in bucket_plan([len(t) for t in self.tgt_ids], batch_size=64, seed=0,
                                       epoch=epoch):
                s, s_len = pad([self.src_ids[i] for i in indices])
                tin, _ = pad([[BOS, *self.tgt_ids[i]] for i in indices])
                tout, _ = pad([[*self.tgt_ids[i], EOS] for i in indices])
                if step == 3:  # the first steps warm up the allocator
                    tokens, sentences, start = 0, 0, time.perf_counter()
                loss = self.model(s, s_len, tin, tout)
                self.optimizer.zero_grad()
                (loss / len(indices)).backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                tokens += int((tout != PAD).sum())
                sentences += len(indices)
                step += 1
                if time.perf_counter() - start > seconds and step > 3:
                    elapsed = time.perf_counter() - start
                    return {"tokens_per_s": tokens / elapsed, "sentences_per_s": sentences / elapsed}

    def translate(self, sources: list[str]) -> list[str]:
        """Greedy translations, detokenised like seqgen's word-level output."""
        self.model.eval()
        out = []
        for i in range(0, len(sources), 100):
            s, s_len = pad([self.source(self.tokenizer.tokenize(x)) for x in sources[i:i + 100]])
            out += [self.tokenizer.detokenize(self.tgt_vocab.decode(row))
                    for row in self.model.greedy(s, s_len)]
        self.model.train()
        return out
