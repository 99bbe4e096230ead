"""Vocabulary shortlists: decode over the target words a batch's sources can plausibly yield.

Most of a translation decoder's output layer scores words that no source word could lead to.
A shortlist keeps, per source symbol, the target symbols IBM Model 1 aligns to it most often,
plus the most frequent target symbols; each batch decodes over the union for its sources (the
output layer keeps only those rows), as Marian's lexical shortlists do. The searchers are
unchanged: they run over the candidates' positions, and the specials keep their ids because they
are always the first candidates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..vocab import PAD
from .search import Hypothesis, generate

N_SPECIALS = 4  # PAD, BOS, EOS, UNK: ids 0-3, always candidates, so they keep their ids
MAX_PAIRS = 100_000


@dataclass
class Shortlist:
    """Candidate target ids: ``table[s]`` for each source id s, and ``frequent`` always."""

    table: Tensor  # (source vocabulary, per_source) long; PAD fills rows with fewer entries
    frequent: Tensor  # (M,) long

    @classmethod
    def learn(cls, sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], *,
              src_vocab_size: int, tgt_vocab_size: int, per_source: int = 32,
              frequent: int = 256, iterations: int = 5, max_pairs: int = MAX_PAIRS
              ) -> "Shortlist":
        """Learns the table from id sequences of parallel sentences (IBM Model 1 by EM), from
        the first ``max_pairs`` of them: plenty for the likeliest candidates, and the links (every
        source word with every target word of a pair) stay within memory (about 30 bytes per
        link, ~250 links per Multi30k pair: 30,000 pairs take ~250 MB while learning)."""
        if len(sources) != len(targets) or not sources:
            raise ValueError("a shortlist needs the same, non-zero number of sources and targets")
        sources, targets = sources[:max_pairs], targets[:max_pairs]
        if per_source < 1 or frequent < 0:
            raise ValueError(f"per_source must be >= 1 and frequent >= 0 (got {per_source}, "
                             f"{frequent})")
        pair_src, pair_tgt, prob = _model1(sources, targets, src_vocab_size, tgt_vocab_size,
                                           iterations)
        table = torch.full((src_vocab_size, per_source), PAD, dtype=torch.long)
        order = prob.argsort(descending=True, stable=True)
        order = order[pair_src[order].argsort(stable=True)]  # by source, likeliest first
        src_sorted = pair_src[order]
        first = torch.searchsorted(src_sorted, src_sorted, side="left")
        rank = torch.arange(order.numel()) - first  # place among its source's pairs
        keep = rank < per_source
        table[src_sorted[keep], rank[keep]] = pair_tgt[order][keep]
        every = torch.as_tensor([t for sent in targets for t in sent], dtype=torch.long)
        counts = torch.bincount(every, minlength=tgt_vocab_size)[:tgt_vocab_size].float()
        counts[:N_SPECIALS] = 0
        top = counts.topk(min(frequent, tgt_vocab_size)).indices
        return cls(table=table, frequent=top[counts[top] > 0])

    def candidates(self, src: Tensor) -> Tensor:
        """(K,) sorted candidate ids for a batch of sources (B, S), the specials first."""
        src = src.to(self.table.device).clamp(max=self.table.size(0) - 1)
        specials = torch.arange(N_SPECIALS, device=self.table.device)
        return torch.cat([specials, self.frequent, self.table[src].flatten()]).unique()

    def check(self, src_vocab_size: int, tgt_vocab_size: int) -> "Shortlist":
        """Raises ValueError unless the table fits these vocabularies; returns itself."""
        ids = torch.cat([self.table.flatten(), self.frequent])
        if self.table.size(0) != src_vocab_size or (
                ids.numel() and not 0 <= int(ids.min()) <= int(ids.max()) < tgt_vocab_size):
            raise ValueError(f"it does not fit the vocabularies ({self.table.size(0)} source "
                             f"rows for {src_vocab_size} words, or target ids beyond "
                             f"{tgt_vocab_size})")
        return self

    def to_dict(self) -> dict:
        return {"table": self.table.to(torch.int32).cpu(),
                "frequent": self.frequent.to(torch.int32).cpu()}

    @classmethod
    def from_dict(cls, data: dict) -> "Shortlist":
        table, frequent = data.get("table"), data.get("frequent")
        if not (isinstance(table, Tensor) and table.dim() == 2 and isinstance(frequent, Tensor)
                and frequent.dim() == 1):
            raise ValueError("malformed shortlist (expected a 2-D table and a 1-D frequent list)")
        return cls(table=table.long(), frequent=frequent.long())


def _model1(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], n_src: int,
            n_tgt: int, iterations: int) -> tuple[Tensor, Tensor, Tensor]:
    """t(target | source) for every (source, target) pair seen in one sentence pair, by EM over
    all their links (PAD stands for the empty source word, NULL): (source, target, probability),
    each (P,). Sparse: only pairs that co-occur exist."""
    src_rows, tgt_rows, groups = [], [], []
    group = 0
    for src, tgt in zip(sources, targets):
        src_t = torch.as_tensor([PAD, *src], dtype=torch.long)
        tgt_t = torch.as_tensor([t for t in tgt if t >= N_SPECIALS], dtype=torch.long)
        if tgt_t.numel() == 0:
            continue
        src_rows.append(src_t.repeat(tgt_t.numel()))
        tgt_rows.append(tgt_t.repeat_interleave(src_t.numel()))
        groups.append(torch.arange(group, group + tgt_t.numel()).repeat_interleave(src_t.numel()))
        group += tgt_t.numel()
    if not src_rows:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, torch.zeros(0)
    s, t, g = torch.cat(src_rows), torch.cat(tgt_rows), torch.cat(groups)
    if int(s.max()) >= n_src or int(t.max()) >= n_tgt or int(torch.cat([s, t]).min()) < 0:
        raise ValueError("a shortlist's ids must be within the vocabulary sizes")
    pairs, link_pair = torch.unique(s * n_tgt + t, return_inverse=True)  # (P,), (L,)
    pair_src, pair_tgt = pairs // n_tgt, pairs % n_tgt
    prob = torch.ones(pairs.numel())  # uniform start
    for _ in range(iterations):
        p = prob[link_pair]
        norm = torch.zeros(group).index_add_(0, g, p)  # each target word's total over its sources
        counts = torch.zeros(pairs.numel()).index_add_(0, link_pair, p / norm[g])
        totals = torch.zeros(n_src).index_add_(0, pair_src, counts)
        prob = counts / totals[pair_src]
    return pair_src, pair_tgt, prob


# ------------------------------------------------------------------------------------------------
class ShortlistedModel:
    """A model seen through a candidate list: ``step`` takes and scores candidate positions
    (K of them) instead of vocabulary ids. Specials keep their ids, so searchers need no change."""

    def __init__(self, model: Any, candidates: Tensor) -> None:
        self.model, self.candidates = model, candidates.to(model.device)
        self.output = output_rows(model.decoder.output, self.candidates)
        self.position = torch.full((int(self.candidates.max()) + 1,), -1, dtype=torch.long,
                                   device=self.candidates.device)
        self.position[self.candidates] = torch.arange(self.candidates.numel(),
                                                      device=self.candidates.device)

    @property
    def training(self) -> bool:
        return self.model.training

    def eval(self) -> "ShortlistedModel":
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> "ShortlistedModel":
        self.model.train(mode)
        return self

    def init_state(self, batch: Any) -> tuple[Any, Tensor]:
        state, first = self.model.init_state(batch)
        positions = self.position[first.clamp(max=self.position.numel() - 1)]
        if bool((positions < 0).any()):
            raise ValueError("a first token is not among the shortlist's candidates")
        return state, positions

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.model.step(self.candidates[tokens], state, output=self.output)

    def vocab_ids(self, hypotheses: list[list[Hypothesis]]) -> list[list[Hypothesis]]:
        """Hypotheses over candidate positions -> the same over vocabulary ids."""
        ids = self.candidates.tolist()
        return [[Hypothesis([ids[t] for t in h.tokens], h.score, h.attention) for h in hyps]
                for hyps in hypotheses]


def output_rows(layer: nn.Module, rows: Tensor):
    """``x -> layer(x)[..., rows]``, computing only those rows of the product. Works for
    ``nn.Linear`` and for the dynamically quantised int8 one (its int8 rows are kept as they are).
    """
    if isinstance(layer, nn.Linear):
        weight = layer.weight.index_select(0, rows)
        bias = None if layer.bias is None else layer.bias.index_select(0, rows)
        return lambda x: nn.functional.linear(x, weight, bias)
    if callable(getattr(layer, "weight", None)):  # torch.ao's dynamic quantised Linear
        return _quantized_rows(layer, rows.cpu())
    raise TypeError(f"cannot take rows of a {type(layer).__name__} output layer")


def _quantized_rows(layer: nn.Module, rows: Tensor) -> nn.Module:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    weight, bias = layer.weight(), layer.bias()
    if weight.qscheme() != torch.per_channel_affine:
        raise TypeError(f"cannot take rows of a {weight.qscheme()} quantised output layer")
    part = torch._make_per_channel_quantized_tensor(
        weight.int_repr().index_select(0, rows), weight.q_per_channel_scales()[rows],
        weight.q_per_channel_zero_points()[rows], 0)
    restricted = DynamicLinear(weight.size(1), rows.numel(), dtype=torch.qint8)
    restricted.set_weight_bias(part, None if bias is None else bias.index_select(0, rows))
    return restricted


def generate_shortlisted(model: Any, batch: Any, searcher: Any, shortlist: Shortlist
                         ) -> list[list[Hypothesis]]:
    """:func:`seqgen.decoding.search.generate` over the batch's candidates (needs ``batch.src``)."""
    restricted = ShortlistedModel(model, shortlist.candidates(batch.src))
    return restricted.vocab_ids(generate(restricted, batch, searcher))
