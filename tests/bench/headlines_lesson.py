"""The lesson of bench_headlines.py, re-implemented faithfully (``shared/seeds/001_*``): a Keras
char tokenizer with ``<eos>``, pre-padded batches of 8 titles, one-hot inputs and targets,
LSTM(128) -> Dense softmax trained by RMSprop(1e-3), its bits/char, and its generator that re-runs
the whole prefix for every new character. Kept apart from the bench so each reads on its own."""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn


class LessonModel(nn.Module):
    """One-hot input -> LSTM(128, return_sequences) -> Dense(vocab) softmax."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, 128, batch_first=True)
        self.dense = nn.Linear(128, vocab_size)

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        return self.dense(self.lstm(one_hot)[0])  # (B, T, V) logits; softmax is in the loss


class LessonTokenizer:
    """keras Tokenizer(char_level=True, lower=False): ids by frequency from 1; <eos> last."""

    def __init__(self, texts: list[str]) -> None:
        counts: dict[str, int] = {}
        for t in texts:
            for ch in t:
                counts[ch] = counts.get(ch, 0) + 1
        ranked = sorted(counts, key=lambda c: -counts[c])
        self.index = {c: i + 1 for i, c in enumerate(ranked)}
        self.eos = len(self.index) + 1
        self.vocab_size = self.eos + 1

    def batch(self, titles: list[str]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """texts_to_sequences (unknown chars dropped), pad_sequences (pre), shifted targets + eos."""
        seqs = [[self.index[c] for c in t if c in self.index] for t in titles]
        width = max(len(s) for s in seqs)
        z = torch.tensor([[0] * (width - len(s)) + s for s in seqs])  # (B, T) pre-padded
        target = torch.cat([z[:, 1:], torch.full((len(seqs), 1), self.eos)], dim=1)
        return z, target, sum(len(s) for s in seqs)


def lesson_train(model: LessonModel, tok: LessonTokenizer, titles: list[str], seconds: float
                 ) -> tuple[float, float]:
    """The lesson's loop for ``seconds``; returns (real chars per second, seconds used)."""
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    chars, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        batch = titles[i % len(titles): i % len(titles) + 8] or titles[:8]
        i += 8
        z, target, n = tok.batch(batch)
        x = F.one_hot(z, tok.vocab_size).float()
        y = F.one_hot(target, tok.vocab_size).float()
        loss = -(y * model(x).log_softmax(-1)).sum(-1).mean()  # categorical cross-entropy
        opt.zero_grad()
        loss.backward()
        opt.step()
        chars += n
    used = time.perf_counter() - start
    return chars / used, used


@torch.no_grad()
def lesson_bpc(model: LessonModel, tok: LessonTokenizer, titles: list[str]) -> float:
    """Bits per predicted real symbol (characters after the first, and <eos>)."""
    total, count = 0.0, 0
    for i in range(0, len(titles), 64):
        z, target, _ = tok.batch(titles[i:i + 64])
        logp = model(F.one_hot(z, tok.vocab_size).float()).log_softmax(-1)
        nll = -logp.gather(2, target[:, :, None]).squeeze(2)
        real = target != 0
        total, count = total + float(nll[real].sum()), count + int(real.sum())
    return total / count / math.log(2)


@torch.no_grad()
def lesson_generate(model: nn.Module, step_all, start: list[int], size: int) -> list[int]:
    """The lesson's generator: the whole prefix is re-run for every new character."""
    chars = list(start)
    for _ in range(size):
        chars.append(int(step_all(torch.tensor([chars]))[0, -1].argmax()))
    return chars
