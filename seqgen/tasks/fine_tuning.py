"""Runs that start from a trained model of the same task: self-critical fine-tuning
(``--self-critical MODEL.pt``) and ``--init MODEL.pt``. Every task starts them the same way: the
float checkpoint (int8 exports and ensembles are refused), its vocabularies and tokenizers for the
data, its model ready to train, and its task settings carried into the new run's checkpoints."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..io.checkpoint import load_trainable
from ..io.loaded import LoadedModel
from ..training.self_critical import Reward, SelfCritical, SelfCriticalConfig
from .spec import Built


def trained_start(path: str, task: str) -> tuple[dict, LoadedModel]:
    """The checkpoint at ``path`` (a float ``task`` model) and its model, in training mode.

    Raises:
        CheckpointError: one line, for a missing file, another task's model, int8 or an ensemble.
    """
    ckpt = load_trainable(path, task)
    loaded = LoadedModel.from_checkpoint(ckpt)
    loaded.model.train()
    return ckpt, loaded


def self_critical_built(path: str, ckpt: dict, loaded: LoadedModel, data: Any, *,
                        data_config: Any, reward: Reward, scst: SelfCriticalConfig,
                        rows: str, val: int, train_data: Any = None,
                        task_config: dict | None = None) -> Built:
    """What a self-critical run trains: ``loaded``'s model on ``data`` (read with its
    vocabularies), rewarded by ``reward`` on ``scst.samples`` samples per input.

    Args:
        rows: the training rows, for the summary line (e.g. "29000 training pairs").
        val: the number of validation examples, for the summary line.
        task_config: settings to record beside the start's and the new data config.
    """
    recorded = {**(ckpt.get("task_config") or {}), "data": asdict(data_config),
                **(task_config or {})}
    return Built(data, loaded.model, loaded.tgt_vocab, loaded.tgt_tokenizer, loaded.src_vocab,
                 loaded.src_tokenizer, recorded, shortlist=loaded.shortlist,
                 objective=SelfCritical(reward, scst), train_data=train_data,
                 summary=f"self-critical from {path}: {rows} x {scst.samples} samples, {val} "
                 f"validation, {loaded.model.num_parameters():,} parameters")
