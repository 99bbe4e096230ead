"""Summarization at inference: documents in (one per line), short summaries out, scored with
ROUGE beside the lead baseline, with source x summary attention heatmaps."""
from __future__ import annotations

from typing import Any, Sequence

from ...data.batch import Batch
from ...decoding.generation import GenerationConfig
from ...io.loaded import LoadedModel
from ...results import Result
from ..adapter import Adapter, Panel, output, source_probe
from .inference import evaluation_rows, score_summaries, summarize

EXAMPLE = ("NEW YORK (Reuters) - Shares of Apple Computer Inc. rose sharply on Thursday after the "
           "company reported a jump in quarterly profit on strong sales of its iPod music player.")


class SummarizationAdapter(Adapter):
    bundled = "agnews-titles.pt"
    verb = "summarize"
    help = "write a headline for each article (arguments, --input FILE or stdin; one per line)"
    inputs = "text"
    generation = GenerationConfig(beam=4, max_len=30)
    panel = Panel(title="Headline from an article", example=EXAMPLE,
                  placeholder="One article per line", attention="heatmap", source_name="article",
                  output_name="headline")
    example = EXAMPLE

    def predict(self, session: Any, inputs: Sequence[str], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 64) -> list[Result]:
        loaded = session.loaded
        with session.autocast():
            found = summarize(loaded, inputs, config, attention=attention,
                              batch_size=batch_size)
        limit = int(loaded.task_config.get("data", {}).get("max_src_len", 100))
        return [Result([output(loaded, h) for h in hyps],
                       source=loaded.src_tokenizer.tokenize(text)[:limit] if text.strip() else [])
                for text, hyps in zip(inputs, found)]

    def evaluate(self, session: Any, data_dir: str, split: str, config: GenerationConfig, *,
                 limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        rows = evaluation_rows(session.loaded, data_dir, split, limit)
        return {"split": split, **self.score(session, rows, config)}

    def score(self, session: Any, examples: tuple[Sequence[str], Sequence[str]],
              config: GenerationConfig) -> dict:
        """ROUGE of the summaries of ``examples`` = (documents, references), beside the lead
        baseline's, and the search that made them."""
        documents, references = examples
        with session.autocast():
            scores = score_summaries(session.loaded, documents, references, config)
        return {**scores, "beam": config.beam, "length_penalty": config.length_penalty,
                "no_repeat_ngram": config.no_repeat_ngram}

    def probe(self, loaded: LoadedModel) -> Batch | None:
        return source_probe(loaded, rows=16, length=50)

