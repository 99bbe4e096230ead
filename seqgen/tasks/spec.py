"""What a recipe declares: a :class:`Task` spec (how to build data and model from the config, the
metric that picks the best checkpoint, samples, the final evaluation) and the :class:`Built` it
returns. :func:`seqgen.training.runner.run` does everything around it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

Report = Callable[[dict], None]  # metrics to the run's progress log (metrics.jsonl and stderr)


def ignore(metrics: dict) -> None:
    """A report that goes nowhere (a task spec used outside a run)."""

from ..decoding.shortlist import Shortlist
from ..io.checkpoint import make_checkpoint
from ..io.loaded import LoadedModel
from ..nn.model import EncoderDecoder
from ..tokenizers import Tokenizer
from ..training.trainer import Objective
from ..vocab import Vocab
from .adapter import Adapter


@dataclass
class Built:
    """What a task builds from its config: data, model, and what checkpoints must carry.

    Values derived from the data (vocabulary sizes, the CNN's feature size) live in the model's
    own config; the recipe's config is never changed by building.
    """

    data: Any
    model: EncoderDecoder
    tgt_vocab: Vocab
    tgt_tokenizer: Tokenizer
    src_vocab: Vocab | None = None
    src_tokenizer: Tokenizer | None = None
    task_config: dict = field(default_factory=dict)  # saved in checkpoints (data, backbone)
    summary: str = ""  # one line for the user: examples, vocabulary, parameters
    shortlist: Shortlist | None = None  # saved in checkpoints: candidate words to decode over
    objective: Objective | None = None  # a training objective other than the model's loss
    train_data: Any = None  # what the trainer iterates, when not ``data`` (whole photos, ...)

    def loaded(self, task: str, model: EncoderDecoder | None = None) -> LoadedModel:
        """The model (or another one of the same shape) ready for the inference code."""
        return LoadedModel(model or self.model, task, self.tgt_vocab, self.tgt_tokenizer,
                           self.src_vocab, self.src_tokenizer, self.task_config)

    def payload(self, task: str, model: EncoderDecoder, trainer_state: dict | None) -> dict:
        return make_checkpoint(model, task=task, tgt_vocab=self.tgt_vocab,
                               tgt_tokenizer=self.tgt_tokenizer, src_vocab=self.src_vocab,
                               src_tokenizer=self.src_tokenizer, task_config=self.task_config,
                               trainer_state=trainer_state, shortlist=self.shortlist)


class Task:
    """A task spec. Recipes subclass it and override what their task needs.

    Attributes:
        name: the task written into checkpoints and registered under (see :mod:`.registry`).
        config: the dataclass of the task's default config (what ``seqgen train NAME`` runs).
        position: its place in listings and on the page (lower first, then by name).
        adapter: its inference side (see :class:`.adapter.Adapter`): inputs, outputs, defaults.
        shortcuts: ``{"--data-dir": ("data.data_dir", help)}``: flags that set config keys.
        switches: ``{"--stream": ("data.stream", help)}``: flags without a value that set a
            boolean config key to true.
        presets: named changes to the default config, chosen with ``--preset NAME``.
        monitor, mode: the validation metric that picks ``best.pt``, and its direction.
        other_monitors: further metrics ``--keep-best-by`` may choose, with their directions.
    """

    name = ""
    position = 50  # where the task comes in listings and on the page (then by name)
    config: type = object
    adapter: Adapter = Adapter()
    shortcuts: dict[str, tuple[str, str]] = {}
    switches: dict[str, tuple[str, str]] = {}
    presets: dict[str, Callable[[Any], None]] = {}
    monitor, mode = "val_loss", "min"
    other_monitors: dict[str, str] = {}

    def default_preset(self, config: Any) -> str | None:
        """The preset used when ``--preset`` is not given (it may depend on the data chosen)."""
        return None

    def dry_run(self, config: Any) -> None:
        """Shrinks the data for ``--dry-run`` (the runner shrinks the training itself)."""

    def build(self, config: Any, previous: dict | None) -> Built:
        """Data and model from the config; ``previous`` is the checkpoint being resumed, whose
        vocabularies must be reused."""
        raise NotImplementedError

    def metrics(self, built: Built, model: EncoderDecoder, config: Any) -> dict[str, float]:
        """Task metrics at each evaluation, besides the validation loss."""
        return {}

    def samples(self, built: Built, model: EncoderDecoder, config: Any) -> list[str]:
        """Lines shown at each evaluation."""
        return []

    def keep(self, config: Any) -> int:
        """How many numbered evaluation checkpoints to keep (for averaging)."""
        return 0

    def final_checkpoint(self, run_dir: Path, built: Built, config: Any, *,
                         report: Report = ignore) -> Path:
        """What is exported as ``model.pt``: ``best.pt``, or ``last.pt`` if none was chosen.
        Scores computed to choose go to ``report`` (the run's progress log), never to print."""
        best = run_dir / "best.pt"
        return best if best.is_file() else run_dir / "last.pt"

    def final(self, built: Built, loaded: LoadedModel, config: Any, *, dry_run: bool
              ) -> list[str]:
        """The lines the run prints at the end (samples, a JSON line of scores)."""
        return []

    def hint(self, built: Built, path: Path) -> str:
        """A command that tries the trained model at ``path``."""
        return ""
