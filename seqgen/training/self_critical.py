"""Self-critical sequence training (Rennie et al. 2017): after cross-entropy training, a model is
fine-tuned on its own samples, each weighted by how much better than its siblings it scores on the
evaluation metric itself (for captions, CIDEr-D against the image's references).

Cross-entropy teaches the next word given the human caption so far; the metric judges whole
captions the model wrote itself. The policy gradient closes that gap. The baseline is the mean
reward of the other samples of the same input (Luo 2020, "a better variant of SCST"), so no greedy
pass is needed and the advantages of one input sum to zero.

The objective knows nothing of the task: a ``reward(ids, samples)`` function scores sampled token
lists for the batch rows ``ids``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..data.batch import Batch, target_pair
from ..decoding.search import build_searcher, generate
from .config import TrainConfig

Reward = Callable[[Sequence[int], Sequence[Sequence[int]]], Sequence[float]]


@dataclass
class SelfCriticalConfig:
    samples: int = 5  # per input; the others' mean reward is each sample's baseline
    max_len: int = 30
    temperature: float = 1.0
    dropout: bool = False  # dropout in the scored pass; off by default, as the samples were
    # drawn without it: the gradient is then the sampling policy's own


def fine_tuning_schedule(train: TrainConfig) -> None:
    """The training settings self-critical runs start from (recipes apply them as a preset, so
    flags still win). The run begins at a trained model: cross-entropy's rate and warm-up are
    made for random weights, so the rate is small and starts at once; evaluations come often, as
    the best point may come early (the shipped captioner's last stage peaked after 100 steps)."""
    train.lr, train.warmup_steps, train.eval_every = 5e-5, 0, 100


def self_critical_preset(config: Any) -> None:
    """The preset recipes apply with ``--self-critical``: :func:`fine_tuning_schedule` and
    batches of 32 inputs (each is sampled ``scst.samples`` times)."""
    fine_tuning_schedule(config.train)
    config.data.batch_size = 32


class SelfCritical:
    """A trainer objective: ``(net, batch) -> (loss summed over tokens, number of tokens)``.

    ``batch`` holds whatever inputs its task defines, and ``ids``; targets are the model's own
    samples, so nothing here names a field of any task.
    """

    def __init__(self, reward: Reward, config: SelfCriticalConfig = SelfCriticalConfig()) -> None:
        if config.samples < 2:
            raise ValueError("self-critical training needs at least 2 samples per input "
                             f"(got {config.samples}): each one's baseline is the others' mean")
        self.reward, self.config = reward, config
        self.searcher = build_searcher(temperature=config.temperature, max_len=config.max_len)
        self.last_reward = 0.0  # mean reward of the last batch's samples, for logging

    def __call__(self, net: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        if batch.ids is None:
            raise ValueError("self-critical batches need ids (which references score a sample)")
        model = getattr(net, "module", net)  # samples come from the bare model, without DDP
        k = self.config.samples
        hyps = generate(model, batch.inputs(), self.searcher, num_samples=k)
        samples = [h.tokens for per_input in hyps for h in per_input]  # B*k, input-major
        ids = batch.ids.repeat_interleave(k).tolist()
        rewards = torch.tensor(list(self.reward(ids, samples)), dtype=torch.float32).view(-1, k)
        baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
        advantage = (rewards - baseline).flatten().to(batch.ids.device)
        self.last_reward = float(rewards.mean())
        tgt_in, tgt_out = target_pair(samples)
        sampled = replace(batch.repeat_rows(k), tgt_in=tgt_in.to(advantage.device),
                          tgt_out=tgt_out.to(advantage.device))
        was_training = net.training
        net.train(self.config.dropout)
        try:
            nll, n_tokens = net(sampled, per_sequence=True, banned=self.searcher.bans.ids)
        finally:
            net.train(was_training)
        return (advantage * nll).sum(), n_tokens.sum()
