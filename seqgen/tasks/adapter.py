"""What a task says about inference: how raw inputs become outputs, its default generation
settings, its evaluation, its attention pictures, its bundled model, its CLI verb and page panel.

:class:`seqgen.pipeline.Pipeline`, the CLI and the server read only this. Their calls pass a
*session* (:class:`.session.Session`, or the loaded pipeline, which extends it): it gives an adapter
``session.loaded`` (model, vocabularies, tokenizers), ``session.autocast()`` (the precision searches
run in; fp32 while evaluating), ``session.state`` (a dict for objects an adapter builds once per
model, such as a CNN) and ``session.requested_precision``. Every search setting reaches the
adapter as one resolved :class:`~seqgen.decoding.generation.GenerationConfig` (see
:meth:`Adapter.settings`), whether it comes from the CLI, the server, ``seqgen evaluate`` or a
training run's own scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ..data.batch import Batch
from ..decoding.generation import GenerationConfig, recorded_settings, resolve
from ..decoding.search import Hypothesis
from ..io.loaded import LoadedModel
from ..results import Output, Result
from .pictures import save_attention_heatmap

INPUT_KINDS = ("text", "image", "prompt")  # a text per line / an image file per path / a prompt


@dataclass(frozen=True)
class Panel:
    """How the page shows a task: a title, an example input, and the attention picture it draws
    (``heatmap``: source symbols x output symbols; ``strip``: image regions per word; None), with
    the names of its two sides."""

    title: str
    example: str = ""
    placeholder: str = ""
    attention: str | None = None
    source_name: str = "source"
    output_name: str = "output"


class Adapter:
    """A task's inference side. Subclasses set the attributes and override what applies.

    Attributes:
        bundled: file name of the task's shipped model under ``assets/models`` (None: none).
        also_bundled: further shipped models of the task, by name (``{"shakespeare":
            "shakespeare.pt"}``): loaded by that name wherever a model is named.
        verb, help: the task's own CLI sub-command (``seqgen VERB``) and its one-line help.
        inputs: one of ``INPUT_KINDS``: what one input is on the command line and in the API.
        generation: the task's default generation settings (the lowest layer of the three).
        panel: the page's panel (None: no panel).
        example: an input for ``--help`` and the docs.
    """

    bundled: str | None = None
    also_bundled: dict[str, str] = {}
    verb: str | None = None
    help: str = ""
    inputs: str = "text"
    generation = GenerationConfig()
    panel: Panel | None = None
    example: str = ""

    # -------------------------------------------------------------------------------- settings
    def settings(self, loaded: LoadedModel, caller: GenerationConfig | None = None
                 ) -> GenerationConfig:
        """The settings a search on ``loaded`` runs with: this task's defaults < the model's
        recorded ones < ``caller``'s, resolved (every field filled) and checked."""
        return resolve(self.generation, recorded_settings(loaded.task_config), caller)

    # -------------------------------------------------------------------------------- inference
    def predict(self, session: Any, inputs: Sequence[Any], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 64) -> list[Result]:
        """One :class:`Result` per input, in order; a bad input carries its error instead.

        ``config`` is resolved (every field filled); ``n`` samples per input need sampling."""
        raise NotImplementedError

    def iter_samples(self, session: Any, prompt: Any, config: GenerationConfig, *, n: int,
                     chunk: int) -> Iterator[Output]:
        """``n`` outputs for one input, ``chunk`` at a time (bounded memory for large ``n``)."""
        done = 0
        while done < n:
            size = min(chunk, n - done)
            [result] = self.predict(session, [prompt], config, n=size)
            if not result.ok:
                raise ValueError(result.error)
            yield from result.outputs
            done += size

    def stream(self, session: Any, prompt: Any, config: GenerationConfig) -> Iterator[str]:
        """Text pieces as they are chosen (tasks whose inputs are prompts)."""
        raise ValueError("this task's outputs cannot be streamed")

    def evaluate(self, session: Any, data_dir: str, split: str, config: GenerationConfig, *,
                 limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        """The task's scores on one split of a data folder in its standard layout, searched with
        ``config`` (resolved: every setting applies, ``max_len`` and the penalties included)."""
        raise ValueError("this task has no evaluation")

    def score(self, session: Any, examples: Any, config: GenerationConfig) -> dict:
        """The task's scores on examples already in memory (what :meth:`evaluate` reads from a
        split; a training run's validation rows), searched with ``config``: the one evaluation
        that ``seqgen evaluate``, a run's metrics and its final scores share."""
        raise ValueError("this task has no evaluation")

    def probe(self, loaded: LoadedModel) -> Batch | None:
        """A made-up input of a realistic size, for timing bf16 against fp32 (None: no timing)."""
        return None

    # -------------------------------------------------------------------------------- pictures
    def save_attention(self, session: Any, item: Any, result: Result, out: Path) -> None:
        """Draws the best output's attention for input ``item`` into ``out`` (a PNG): by default,
        for a ``heatmap`` panel, source symbols x output symbols."""
        best = result.outputs[0] if result.outputs else None
        if self.panel is None or self.panel.attention != "heatmap":
            raise ValueError("this task draws no attention pictures")
        if best is None or best.attention is None or not str(item).strip():
            raise ValueError("no attention to draw for an empty output")
        save_attention_heatmap(result.source, best.symbols, best.attention, out,
                               xlabel=self.panel.source_name, ylabel=self.panel.output_name)

    def attention_grid(self, result: Result) -> dict:
        """The best output's attention as JSON for the page (rows: output symbols and the end;
        for a ``heatmap`` panel, columns: source symbols and their end)."""
        best = result.outputs[0] if result.outputs else None
        if best is None or best.attention is None:
            return {"attention": None}
        weights = best.attention
        if self.panel is not None and self.panel.attention == "heatmap":
            weights = weights[: len(best.symbols) + 1, : len(result.source) + 1]
        return {"attention": [[round(float(w), 4) for w in row]
                              for row in weights.float().cpu().tolist()]}

    def learn_shortlist(self, loaded: LoadedModel, data_dir: str) -> Any:
        """A vocabulary shortlist for a trained model from a data folder's training pairs."""
        raise ValueError(f"--shortlist-data is for tasks with a source text; this is a "
                         f"{loaded.task} model")

    def describe(self, loaded: LoadedModel) -> dict:
        """What ``/api/models`` says of a loaded model beyond its size (a language pair, ...)."""
        return {}


# ------------------------------------------------------------------------------------------------
def source_probe(loaded: LoadedModel, *, rows: int, length: int) -> Batch | None:
    """Made-up source texts of ``rows`` x ``length`` random known pieces (what a text-to-text
    task times bf16 on); None for a model without a source vocabulary."""
    if loaded.src_vocab is None:
        return None
    src = torch.randint(4, max(len(loaded.src_vocab), 5), (rows, length),
                        device=loaded.model.device)
    return Batch(src=src, src_lengths=torch.full((rows,), length))


def output(loaded: LoadedModel, hyp: Hypothesis, text: str | None = None) -> Output:
    """An :class:`Output` from a hypothesis: its symbols, its detokenised text (or ``text``)."""
    symbols = loaded.tgt_vocab.decode(hyp.tokens)
    return Output(loaded.tgt_tokenizer.detokenize(symbols) if text is None else text, hyp.score,
                  symbols, hyp.attention)
