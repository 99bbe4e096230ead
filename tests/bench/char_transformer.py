"""The benchmark's baseline for a character model of one text: a small decoder-only transformer
of nanoGPT's published CPU settings (4 layers, 4 heads, width 128, context 64, batch 12, no
dropout), written here from the architecture's description (pre-norm blocks, learned positions,
causal self-attention, a tied output layer, AdamW), not shipped with seqgen. It reads random
windows of the training text, as nanoGPT does, and is scored on the held-out tail in windows of
its context, each character predicted once (from the characters before it in its window)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class TransformerConfig:
    vocab: int
    layers: int = 4
    heads: int = 4
    width: int = 128
    context: int = 64
    batch: int = 12
    lr: float = 1e-3
    dropout: float = 0.0


class Block(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv, self.proj = nn.Linear(c.width, 3 * c.width), nn.Linear(c.width, c.width)
        self.mlp = nn.Sequential(nn.Linear(c.width, 4 * c.width), nn.GELU(),
                                 nn.Linear(4 * c.width, c.width))
        self.heads, self.dropout = c.heads, c.dropout

    def forward(self, x: Tensor) -> Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(w, dim=2)
        q, k, v = (z.view(b, t, self.heads, w // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.config = c
        self.embed, self.position = nn.Embedding(c.vocab, c.width), nn.Embedding(c.context, c.width)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, c.vocab, bias=False)
        self.out.weight = self.embed.weight  # tied, as nanoGPT ties them
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        x = self.embed(ids) + self.position(positions)
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x))  # (B, T, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class TransformerTrainer:
    """Random windows of the training ids, AdamW with a short warm-up, gradient clipping."""

    def __init__(self, ids: np.ndarray, train: slice, c: TransformerConfig, *, seed: int = 0,
                 amp: torch.dtype | None = None) -> None:
        torch.manual_seed(seed)
        self.ids, self.train, self.c, self.amp = ids, train, c, amp
        self.model = CharTransformer(c)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=c.lr, betas=(0.9, 0.99),
                                           weight_decay=0.1)
        self.rng = np.random.default_rng(seed)
        self.steps = 0

    def step(self) -> float:
        c = self.c
        starts = self.rng.integers(self.train.start, self.train.stop - c.context - 1, c.batch)
        rows = torch.from_numpy(np.stack([np.asarray(self.ids[s:s + c.context + 1], np.int64)
                                          for s in starts]))
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = c.lr * min(1.0, (self.steps + 1) / 100)
        with torch.autocast("cpu", dtype=self.amp, enabled=self.amp is not None):
            logits = self.model(rows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), rows[:, 1:].flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.steps += 1
        return float(loss.detach())

    @torch.no_grad()
    def held_out_nats(self, start: int, stop: int, *, rows: int = 256) -> float:
        """Mean NLL per character of ``ids[start:stop]``: windows of the context, each character
        a target once (the first of each window predicted from the symbol before it)."""
        c, model = self.c, self.model.eval()
        total, count = 0.0, 0
        starts = list(range(start, stop - 1, c.context))
        for i in range(0, len(starts), rows):
            chunk = [s for s in starts[i:i + rows] if s + c.context + 1 <= stop]
            if not chunk:
                continue
            window = torch.from_numpy(np.stack([np.asarray(self.ids[s - 1:s + c.context],
                                                           np.int64) for s in chunk]))
            logits = model(window[:, :-1])
            total += float(F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten(),
                                           reduction="sum"))
            count += window[:, 1:].numel()
        return total / max(count, 1)

    @torch.no_grad()
    def generate(self, prompt: Tensor, n: int, *, temperature: float = 0.8) -> Tensor:
        """``n`` sampled symbols after ``prompt`` (1, P): each step re-reads the last context
        window (a transformer without a key-value cache, as nanoGPT's ``generate``)."""
        model, ids = self.model.eval(), prompt
        for _ in range(n):
            logits = model(ids[:, -self.c.context:])[:, -1] / temperature
            ids = torch.cat([ids, torch.multinomial(F.softmax(logits, -1), 1)], dim=1)
        return ids[:, prompt.size(1):]


def faster_precision(ids: np.ndarray, train: slice, c: TransformerConfig, *, steps: int = 15
                     ) -> tuple[torch.dtype | None, str]:
    """bf16 autocast where a timing of this model's own steps finds it at least 1.1x faster
    than fp32 (the rule seqgen's trainer follows), else fp32; timed on throw-away copies."""
    import time

    seconds = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        trial = TransformerTrainer(ids, train, c, amp=dtype)
        trial.step()  # warm-up: kernels are built on first use
        start = time.perf_counter()
        for _ in range(steps):
            trial.step()
        seconds[name] = time.perf_counter() - start
    ratio = seconds["fp32"] / seconds["bf16"]
    return (torch.bfloat16, f"bf16 ({ratio:.2f}x fp32)") if ratio >= 1.1 else (
        None, f"fp32 (bf16 was {ratio:.2f}x)")


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)
