"""Translation at inference: sentences in, translations out (batched by length, decoded over the
model's vocabulary shortlist when it has one), sacreBLEU evaluation, source x target heatmaps."""
from __future__ import annotations

import logging
from typing import Any, Sequence

from ...data.batch import Batch
from ...decoding.generation import GenerationConfig
from ...io.loaded import LoadedModel
from ...results import Result
from ..adapter import Adapter, Panel, output, source_probe
from .inference import MAX_SOURCE_TOKENS, evaluate_split, evaluate_texts, learn_shortlist, translate

log = logging.getLogger(__name__)


class TranslationAdapter(Adapter):
    bundled = "multi30k-de-en.pt"
    verb = "translate"
    help = "translate sentences (arguments, --input FILE or stdin; one per line)"
    inputs = "text"
    generation = GenerationConfig(beam=5, max_len=120)
    panel = Panel(title="Translator", example="Ein Mann fährt Fahrrad.\nZwei Hunde spielen im "
                  "Schnee.", placeholder="One sentence per line", attention="heatmap",
                  output_name="translation")
    example = "Ein Mann fährt Fahrrad."

    def predict(self, session: Any, inputs: Sequence[str], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 64) -> list[Result]:
        """The translation(s) of each sentence; empty sentences give empty translations."""
        if n > 1:
            raise ValueError("translation gives one output per sentence; ask for n-best instead")
        loaded = session.loaded
        with session.autocast():
            found = translate(loaded, list(inputs), config, attention=attention,
                              batch_size=batch_size)
        results = []
        for text, hyps in zip(inputs, found):
            source = loaded.src_tokenizer.tokenize(text) if text.strip() else []
            result = Result([output(loaded, h) for h in hyps], source=source[:MAX_SOURCE_TOKENS])
            if len(source) > MAX_SOURCE_TOKENS:
                result.warnings.append(f"{len(source)} source pieces; only the first "
                                       f"{MAX_SOURCE_TOKENS} were translated")
            results.append(result)
        return results

    def evaluate(self, session: Any, data_dir: str, split: str, config: GenerationConfig, *,
                 limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        return evaluate_split(session.loaded, data_dir, split, config, limit=limit)

    def score(self, session: Any, examples: tuple[Sequence[str], Sequence[str]],
              config: GenerationConfig) -> dict:
        """BLEU and chrF of the translations of ``examples`` = (sources, references)."""
        sources, references = examples
        with session.autocast():
            return evaluate_texts(session.loaded, sources, references, config)

    def probe(self, loaded: LoadedModel) -> Batch | None:
        return source_probe(loaded, rows=32, length=20)

    def learn_shortlist(self, loaded: LoadedModel, data_dir: str) -> Any:
        return learn_shortlist(loaded, data_dir)

    def describe(self, loaded: LoadedModel) -> dict:
        saved = loaded.task_config.get("data", {})
        return {"src": saved.get("src", "de"), "tgt": saved.get("tgt", "en"),
                "shortlist": loaded.shortlist is not None}
