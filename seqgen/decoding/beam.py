"""Beam search, written once: batched, with n-best lists and Wu et al.'s length penalty,
driven only through ``step`` and the state's ``index_select``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from ..vocab import EOS
from .base import Hypothesis, Searcher, Stepper
from .processors import LogitsProcessor, apply_processors

MAX_LENGTH_PENALTY = 10.0


class BeamSearch(Searcher):
    """Batched beam search with Wu et al. length penalty ((5 + len) / 6) ** alpha and n-best lists.

    Finished hypotheses leave the beam (as in fairseq): each step ranks 2k candidates, the ones
    ending in EOS among the top k are set aside, and the best k others carry on. A sentence is done
    once it has k finished hypotheses.
    """

    def __init__(self, *, beam_size: int = 5, max_len: int = 100, length_penalty: float = 1.0,
                 n_best: int = 1, processors: Sequence[LogitsProcessor] = (), ban_unk: bool = True,
                 collect_attention: bool = False) -> None:
        if beam_size < 1:
            raise ValueError(f"beam size must be >= 1 (got {beam_size}); 1 is greedy search")
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"n_best must be between 1 and the beam size {beam_size} (got {n_best})")
        if not (math.isfinite(length_penalty) and 0 <= length_penalty <= MAX_LENGTH_PENALTY):
            raise ValueError(f"length_penalty must be a number from 0 to {MAX_LENGTH_PENALTY:g} "
                             f"(got {length_penalty}); 0 disables it")
        super().__init__(max_len=max_len, processors=processors, ban_unk=ban_unk,
                         collect_attention=collect_attention)
        self.k, self.alpha, self.n_best = int(beam_size), float(length_penalty), int(n_best)

    def normalise(self, score: float, length: int) -> float:
        return score / (((5 + length) / 6) ** self.alpha)

    @torch.no_grad()
    def search(self, model: Stepper, state: Any, first: Tensor) -> list[list[Hypothesis]]:
        b, k, device = first.size(0), self.k, first.device
        state = state.index_select(torch.arange(b, device=device).repeat_interleave(k))
        tokens, history = first.repeat_interleave(k), first.new_zeros((b * k, 0))
        beam_scores = torch.full((b, k), float("-inf"), device=device)
        beam_scores[:, 0] = 0.0
        attn_history: Tensor | None = None
        finished: list[list[Hypothesis]] = [[] for _ in range(b)]
        done = [False] * b
        active = list(range(b))  # the sentences still searched, in the order of the beam rows
        for t in range(self.max_len):
            logits, state = model.step(tokens, state)
            logp = logits.float().log_softmax(-1)  # (AK, V), owned here: changed in place below
            n_active, vocab = len(active), logp.size(1)
            if self.shaping:  # processors, bans, and EOS for any row they leave no choice
                logp = apply_processors(self.processors, logp, history)
                logp.add_(beam_scores.view(-1, 1))
            else:  # running scores and bans in one pass (a separate ban copied (AK, V) each step)
                logp.add_(beam_scores.view(-1, 1) + self.bans.bias(vocab, device))
            offsets = torch.arange(n_active, device=device)[:, None] * k  # (A, 1)
            step_attn = getattr(state, "attention", None) if self.collect_attention else None
            if step_attn is not None:
                step_attn = step_attn[:, -1:]  # (AK, 1, S)
                attn_history = step_attn if attn_history is None else torch.cat(
                    [attn_history, step_attn], dim=1)  # (AK, t+1, S)
            candidates = logp.view(n_active, k * vocab)  # (A, K*V)
            n_cand = min(2 * k, k * vocab)
            top_scores, top_idx = candidates.topk(n_cand, dim=1)  # (A, 2K)
            origin = torch.div(top_idx, vocab, rounding_mode="floor")  # (A, 2K) beam index
            token = top_idx % vocab  # (A, 2K)
            is_eos = (token == EOS) | (t == self.max_len - 1)
            self._finish(finished, done, active, top_scores, origin, token, is_eos, offsets,
                         history, attn_history)
            if all(done):
                break
            rank = torch.arange(n_cand, device=device).expand(n_active, n_cand)
            keep = (rank + is_eos.long() * n_cand).topk(k, dim=1, largest=False).values % n_cand
            keep = keep.sort(dim=1).values  # (A, K) best non-EOS candidates, best first
            beam_scores = top_scores.gather(1, keep)
            flat_origin = (offsets + origin.gather(1, keep)).view(-1)  # (AK,) rows to continue
            tokens = token.gather(1, keep).view(-1)  # (AK,)
            alive = [j for j, sent in enumerate(active) if not done[sent]]
            if len(alive) < n_active:  # finished sentences leave the batch: later steps are cheaper
                alive_t = torch.tensor(alive, device=device)
                rows = (alive_t[:, None] * k + torch.arange(k, device=device)).view(-1)
                beam_scores = beam_scores.index_select(0, alive_t)
                flat_origin, tokens = flat_origin.index_select(0, rows), tokens.index_select(0, rows)
                active = [active[j] for j in alive]
            state = state.index_select(flat_origin)
            history = torch.cat([history.index_select(0, flat_origin), tokens[:, None]], dim=1)
            if attn_history is not None:
                attn_history = attn_history.index_select(0, flat_origin)
        return [sorted(hyps, key=lambda h: -h.score)[: self.n_best] for hyps in finished]

    def _finish(self, finished: list[list[Hypothesis]], done: list[bool], active: list[int],
                top_scores: Tensor, origin: Tensor, token: Tensor, is_eos: Tensor, offsets: Tensor,
                history: Tensor, attn_history: Tensor | None) -> None:
        """Sets aside the candidates that end here (EOS, or the length limit) among the top k.

        Rows of the score tensors are active sentences; ``active`` maps them to batch entries.
        """
        k = self.k
        ends = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])  # (A, K)
        if not bool(ends.any()):
            return
        for local, rank in ends.nonzero().tolist():
            sent = active[local]
            if done[sent]:
                continue
            row = int(offsets[local, 0] + origin[local, rank])
            tokens = history[row].tolist()
            length = len(tokens) + 1
            if int(token[local, rank]) != EOS:  # cut off by max_len: keep the last token
                tokens.append(int(token[local, rank]))
            attn = None if attn_history is None else attn_history[row]
            finished[sent].append(Hypothesis(
                tokens, self.normalise(float(top_scores[local, rank]), length), attn))
            if len(finished[sent]) >= k:
                done[sent] = True
