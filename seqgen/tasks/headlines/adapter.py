"""Headlines at inference: a prompt is run through the decoder once to build its state, then text
is generated from that state (sampled, greedy or beam), or streamed piece by piece."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Sequence

import torch

from ...data.batch import Batch
from ...decoding.generation import GenerationConfig
from ...decoding.search import generate
from ...io.loaded import LoadedModel
from ...results import Output, Result
from ...vocab import BOS, EOS, PAD
from ..adapter import Adapter, Panel, output
from .inference import (evaluate_split, evaluate_stream, evaluate_texts, is_stream, join_prompt,
                        prompt_ids)
from .stream import StreamSpan


class HeadlinesAdapter(Adapter):
    bundled = "headlines.pt"
    also_bundled = {"shakespeare": "shakespeare.pt"}  # a stream model of Tiny Shakespeare
    verb = "generate"
    help = "continue prompts with a text model (headlines)"
    inputs = "prompt"
    generation = GenerationConfig(max_len=100)
    panel = Panel(title="Headline generator", example="Oil prices ",
                  placeholder="the start of a headline")
    example = "Today "

    def settings(self, loaded: LoadedModel, caller: GenerationConfig | None = None
                 ) -> GenerationConfig:
        """As for every task; a stream model's text never ends, so it writes ``max_len``
        symbols (the end symbol, which it never saw in training, is not chosen)."""
        config = super().settings(loaded, caller)
        if is_stream(loaded) and config.min_length < config.max_len:
            config = replace(config, min_length=config.max_len)
        return config

    def predict(self, session: Any, inputs: Sequence[str], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 64) -> list[Result]:
        """``n`` continuations per prompt (sampling), or its n-best list (beam search)."""
        if n > 1 and not config.sampling:
            raise ValueError("several samples need sampling (a temperature, top-k or top-p); "
                             "with beam search ask for n-best instead")
        searcher, loaded = config.searcher(attention=attention), session.loaded
        results = []
        for prompt in inputs:  # one prompt at a time: a sampled row's draws stay its own
            with session.autocast():
                hyps = generate(loaded.model, prompt_ids(loaded, [prompt]), searcher,
                                num_samples=n)[0]
            results.append(Result([continuation(loaded, prompt, h) for h in hyps]))
        return results

    def stream(self, session: Any, prompt: str, config: GenerationConfig) -> Iterator[str]:
        """Yields the prompt, then each generated piece of text as soon as it is chosen (settings
        are checked now, before the first piece)."""
        if config.beam > 1:
            raise ValueError("beam search cannot stream: it settles the text only at the end")
        return self._pieces(session, prompt, config)

    def _pieces(self, session: Any, prompt: str, config: GenerationConfig) -> Iterator[str]:
        loaded = session.loaded
        model = loaded.model.eval()
        with torch.no_grad(), session.autocast():
            state, first = model.init_state(prompt_ids(loaded, [prompt]))
        yield prompt
        vocab, tokenizer = loaded.tgt_vocab, loaded.tgt_tokenizer
        symbols: list[str] = []
        shown = prompt
        steps = config.searcher().steps(model, state, first)
        while True:
            with session.autocast():  # only around the work: the caller runs between yields
                token = next(steps, None)
            if token is None or int(token[0]) in (EOS, PAD):
                break
            symbols += vocab.decode([int(token[0])])
            if tokenizer.level == "char":  # fast path: a character is its own text
                shown += symbols[-1]
                yield symbols[-1]
                continue
            # words: spacing depends on the neighbours ("cat ," -> "cat,"), so the text so far is
            # detokenised as a whole, as predict() does, and only what is new is yielded
            text = join_prompt(loaded, prompt, tokenizer.detokenize(symbols))
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown):]
                shown = text

    def evaluate(self, session: Any, data_dir: str, split: str, config: GenerationConfig, *,
                 limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        return evaluate_split(session.loaded, data_dir, split, config, limit=limit)

    def score(self, session: Any, examples: Sequence[str] | StreamSpan,
              config: GenerationConfig) -> dict:
        """Bits per symbol on the texts ``examples``, and the variety of continuations of their
        first words searched with ``config``; for a span of a stream, nats and bits per
        character with the state carried through it."""
        with session.autocast():
            if isinstance(examples, StreamSpan):
                return evaluate_stream(session.loaded, examples)
            return evaluate_texts(session.loaded, examples, config)

    def probe(self, loaded: LoadedModel) -> Batch:
        n, device = 32, loaded.model.device
        return Batch(prompt=torch.full((n, 1), BOS, device=device),
                     prompt_lengths=torch.ones(n, dtype=torch.long))


def continuation(loaded: LoadedModel, prompt: str, hyp: Any) -> Output:
    """The prompt followed by what the model wrote."""
    out = output(loaded, hyp)
    out.text = join_prompt(loaded, prompt, out.text) if prompt else out.text
    return out
