"""The inference API: load a trained model (a checkpoint file or a bundled name), then
``generate`` / ``stream`` headlines, ``translate`` sentences or ``caption`` images.

    from seqgen.pipeline import Pipeline, SearchOptions

    headlines = Pipeline.load("headlines")
    for piece in headlines.stream("Moscow, ", SearchOptions(temperature=0.8, seed=0)):
        print(piece, end="", flush=True)

The CLI and the HTTP server are thin layers over this module. Every method returns one
:class:`Result` per input, in input order; a failed item carries its error and the others are still
processed. Memory stays bounded: at most ``MAX_ROWS`` sequences (inputs x beam, or samples) are
decoded at once, so a million samples or a beam of 1,000 run in chunks.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import torch

from .checkpoint import LoadedModel
from .data.batch import Batch
from .device import pick_device
from .int8 import is_quantized
from .options import Output, Result, SearchOptions, given_tuning, tuned_decoding
from .precision import PrecisionChoice, choose_inference_precision
from .resources import resource_path
from .search import Hypothesis, build_searcher, generate as run_search
from .tasks.headlines.inference import join_prompt, prompt_ids
from .vocab import BOS, EOS, PAD

MAX_ROWS = 1024  # sequences decoded at once (inputs x beam, or samples): bounds memory
TRANSLATE_WINDOW = 1024  # inputs sorted and batched together; results come out window by window
BUNDLED = {"headlines": "headlines.pt", "translation": "multi30k-de-en.pt",
           "captioning": "flickr8k-lite0.pt"}
DEFAULT_OPTIONS = {"headlines": dict(max_len=100), "translation": dict(beam=5, max_len=120),
                   "captioning": dict(beam=3, max_len=40)}


def bundled_model(task: str) -> Path:
    """The shipped checkpoint of a task (``headlines``, ``translation`` or ``captioning``)."""
    if task not in BUNDLED:
        raise ValueError(f"no bundled model for {task!r}; choose {', '.join(BUNDLED)}")
    return resource_path("assets", "models", BUNDLED[task])


# ------------------------------------------------------------------------------------------------
class Pipeline:
    """A loaded model and the task-specific ways to run it."""

    def __init__(self, loaded: LoadedModel, *, precision: str = "auto") -> None:
        self.loaded = loaded
        self.requested_precision = precision
        self._precision: PrecisionChoice | None = None
        self._backbone = None
        self._cnn_precision: PrecisionChoice | None = None

    @property
    def precision(self) -> PrecisionChoice:
        """What searches run in: ``auto`` measures bf16 against fp32 once per machine and model
        (see :func:`seqgen.precision.choose_inference_precision`); fp32 wherever unsure."""
        if self._precision is None:
            probe = self._probe_batch()
            if is_quantized(self.loaded.model):
                self._precision = PrecisionChoice(None, "fp32", "int8 weights, float activations")
            elif probe is None:
                self._precision = PrecisionChoice(None, "fp32", "no probe input for this model")
            else:
                beam = 1 if probe.prompt is not None else 5
                searcher = build_searcher(beam=beam, max_len=20)
                self._precision = choose_inference_precision(
                    self.requested_precision, self.loaded.model.device, model=self.loaded.model,
                    decode=lambda: run_search(self.loaded.model, probe, searcher))
        return self._precision

    def _autocast(self):
        dtype = self.precision.dtype
        return torch.autocast(self.loaded.model.device.type, dtype=dtype, enabled=dtype is not None)

    def _probe_batch(self) -> Batch | None:
        """A made-up input of a realistic size for timing this model's search."""
        model, n = self.loaded.model, 32
        kind = model.config.encoder.kind
        device = model.device
        if kind == "rnn" and self.loaded.src_vocab is not None:
            src = torch.randint(4, max(len(self.loaded.src_vocab), 5), (n, 20), device=device)
            return Batch(src=src, src_lengths=torch.full((n,), 20))
        if kind == "features":
            return Batch(features=torch.randn(n, 49, model.config.encoder.feature_dim,
                                              device=device))
        if kind == "none":
            return Batch(prompt=torch.full((n, 1), BOS, device=device),
                         prompt_lengths=torch.ones(n, dtype=torch.long))
        return None

    @property
    def backbone(self):
        """The captioner's CNN, built once (its weights come from the package that ships it)."""
        from .tasks.captioning.inference import backbone_of

        self._require("captioning")
        if self._backbone is None:
            backbone = backbone_of(self.loaded)
            self._cnn_precision = self._cnn_choice(backbone)
            backbone.autocast_dtype = self._cnn_precision.dtype
            self._backbone = backbone
        return self._backbone

    @property
    def cnn_precision(self) -> PrecisionChoice:
        """What a captioner's CNN runs in, measured apart from the search (convolutions and
        recurrent steps gain differently from bf16). bf16 CNN features scored BLEU-4 16.69 vs
        16.48 (fp32) on 500 Flickr8k dev photos, so the choice is made for speed alone."""
        self.backbone  # noqa: B018 - builds the CNN and chooses
        return self._cnn_precision

    def _cnn_choice(self, backbone) -> PrecisionChoice:
        if not backbone.is_cnn:
            return PrecisionChoice(None, "fp32", "no CNN")
        device, size = self.loaded.model.device, backbone.image_size

        def run_cnn() -> None:  # a batch of 8 made-up photos, only if a timing is needed
            with torch.inference_mode():
                backbone(torch.rand(8, 3, size, size, device=device))

        return choose_inference_precision(self.requested_precision, device, model=backbone,
                                          decode=run_cnn, what="CNN")

    @classmethod
    def load(cls, model: str | Path | None = None, *, task: str | None = None,
             device: str = "auto", precision: str = "auto") -> "Pipeline":
        """From a checkpoint path, a bundled name (``headlines``, ``translation``,
        ``captioning``), or ``task``'s bundled model when ``model`` is None.

        Raises:
            ValueError (CheckpointError included): missing file, damaged file, wrong task.
        """
        name = str(model) if model is not None else task
        if name is None:
            raise ValueError("name a model file or a task")
        path = bundled_model(name) if name in BUNDLED else Path(name)
        if name in BUNDLED and not path.is_file():
            raise ValueError(f"no bundled model at {path}; pass a checkpoint file")
        loaded = LoadedModel.from_file(path, device=pick_device(device))
        if task is not None and loaded.task != task:
            raise ValueError(f"{path} is a {loaded.task} model, not a {task} model")
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16; got {precision!r}")
        return cls(loaded, precision=precision)

    @property
    def task(self) -> str:
        return self.loaded.task

    def default_options(self, **changes: object) -> SearchOptions:
        """The task's usual search (greedy / beam 5 / beam 3), then the beam size and length
        penalty chosen on validation for this model (its checkpoint's ``decoding``), then
        ``changes``."""
        tuned = tuned_decoding(self.loaded)
        return replace(SearchOptions(**{**DEFAULT_OPTIONS.get(self.task, {}), **tuned}), **changes)

    def _require(self, task: str) -> None:
        if self.task != task:
            raise ValueError(f"this is a {self.task} model; {task} needs a {task} model")

    def _batched_search(self, task: str, options: SearchOptions | None, attention: bool,
                        batch_size: int) -> tuple[object, int]:
        """The searcher for ``options`` (checked) and a batch size that keeps inputs x beam
        within ``MAX_ROWS``."""
        self._require(task)
        options = options or self.default_options()
        options.check()
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1 (got {batch_size})")
        return options.searcher(attention=attention), min(batch_size,
                                                          max(1, MAX_ROWS // options.beam))

    def _output(self, hyp: Hypothesis, *, prefix: str = "") -> Output:
        symbols = self.loaded.tgt_vocab.decode(hyp.tokens)
        text = self.loaded.tgt_tokenizer.detokenize(symbols)
        return Output(join_prompt(self.loaded, prefix, text) if prefix else text, hyp.score, symbols,
                      hyp.attention)

    # -------------------------------------------------------------------------------- headlines
    def generate(self, prompts: Sequence[str], *, n: int = 1,
                 options: SearchOptions | None = None) -> list[Result]:
        """``n`` continuations per prompt (sampling), or its n-best list (beam search)."""
        return [Result(list(self.iter_samples(p, n=n, options=options))) for p in prompts]

    def iter_samples(self, prompt: str, *, n: int = 1, options: SearchOptions | None = None
                     ) -> Iterator[Output]:
        """The outputs for one prompt, yielded chunk by chunk as they finish (bounded memory)."""
        self._require("headlines")
        options = options or self.default_options()
        options.check()
        if n < 1:
            raise ValueError(f"the number of samples must be >= 1 (got {n})")
        if n > 1 and not options.sampling:
            raise ValueError("several samples need sampling (a temperature, top-k or top-p); "
                             "with beam search ask for --n-best instead")
        searcher = options.searcher()
        batch = self._prompt_batch(prompt)
        rows = max(1, MAX_ROWS // options.beam)
        done = 0
        while done < n:
            chunk = min(rows, n - done)
            with self._autocast():
                results = run_search(self.loaded.model, batch, searcher, num_samples=chunk)
            for hyp in results[0]:
                yield self._output(hyp, prefix=prompt)
            done += chunk

    def stream(self, prompt: str, options: SearchOptions | None = None) -> Iterator[str]:
        """Yields the prompt, then each generated piece of text as soon as it is chosen."""
        self._require("headlines")
        options = options or self.default_options()
        options.check()
        if options.beam > 1:
            raise ValueError("beam search cannot stream: it settles the text only at the end")
        model = self.loaded.model.eval()
        with torch.no_grad(), self._autocast():
            state, first = model.init_state(self._prompt_batch(prompt))
        yield prompt
        vocab, tokenizer = self.loaded.tgt_vocab, self.loaded.tgt_tokenizer
        symbols: list[str] = []
        shown = prompt
        steps = options.searcher().steps(model, state, first)
        while True:
            with self._autocast():  # only around the work: the caller runs between yields
                token = next(steps, None)
            if token is None:
                break
            tok = int(token[0])
            if tok in (EOS, PAD):
                break
            symbols += vocab.decode([tok])
            if tokenizer.level == "char":  # fast path: a character is its own text
                shown += symbols[-1]
                yield symbols[-1]
                continue
            # words: spacing depends on the neighbours ("cat ," -> "cat,"), so the text so far is
            # detokenised as a whole, exactly as generate() does, and only what is new is yielded
            text = join_prompt(self.loaded, prompt, tokenizer.detokenize(symbols))
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown):]
                shown = text

    def _prompt_batch(self, prompt: str):
        return prompt_ids(self.loaded, [prompt])

    # -------------------------------------------------------------------------------- translation
    def translate(self, texts: Sequence[str], options: SearchOptions | None = None, *,
                  attention: bool = False, batch_size: int = 64) -> list[Result]:
        """The translation(s) of each sentence; empty sentences give empty translations."""
        return list(self.iter_translate(texts, options, attention=attention,
                                        batch_size=batch_size))

    def iter_translate(self, texts: Sequence[str], options: SearchOptions | None = None, *,
                       attention: bool = False, batch_size: int = 64) -> Iterator[Result]:
        """Like :meth:`translate`, yielding results in input order window by window."""
        from .tasks.translation.inference import MAX_SOURCE_TOKENS, translate

        searcher, batch_size = self._batched_search("translation", options, attention, batch_size)
        tokenizer = self.loaded.src_tokenizer
        for start in range(0, len(texts), TRANSLATE_WINDOW):
            window = list(texts[start:start + TRANSLATE_WINDOW])
            with self._autocast():
                found = translate(self.loaded, window, searcher, batch_size=batch_size,
                                  shortlist=(options or SearchOptions()).shortlist)
            for text, hyps in zip(window, found):
                source = tokenizer.tokenize(text) if text.strip() else []
                result = Result([self._output(h) for h in hyps], source=source[:MAX_SOURCE_TOKENS])
                if len(source) > MAX_SOURCE_TOKENS:
                    result.warnings.append(f"{len(source)} source pieces; only the first "
                                           f"{MAX_SOURCE_TOKENS} were translated")
                yield result

    # -------------------------------------------------------------------------------- captioning
    def caption(self, images: Sequence[str | Path], options: SearchOptions | None = None, *,
                attention: bool = False, batch_size: int = 16) -> list[Result]:
        """Caption(s) of each image file; an unreadable file gives a Result with its error."""
        return list(self.iter_caption(images, options, attention=attention, batch_size=batch_size))

    def iter_caption(self, images: Sequence[str | Path], options: SearchOptions | None = None, *,
                     attention: bool = False, batch_size: int = 16) -> Iterator[Result]:
        """Like :meth:`caption`, yielding results batch by batch."""
        from .tasks.captioning.inference import caption_images

        searcher, batch_size = self._batched_search("captioning", options, attention, batch_size)
        backbone = self.backbone
        for start in range(0, len(images), batch_size):
            chunk = [str(p) for p in images[start:start + batch_size]]
            with self._autocast():
                found = caption_images(self.loaded, chunk, searcher, batch_size=batch_size,
                                       backbone=backbone)
            for item in found:
                yield (Result(error=item) if isinstance(item, str)
                       else Result([self._output(h) for h in item]))

    # -------------------------------------------------------------------------------- evaluation
    def evaluate(self, data_dir: str | Path, split: str, *, beam: int | None = None,
                 length_penalty: float | None = None, limit: int = 0,
                 progress: bool = False, shortlist: bool = True, no_repeat_ngram: int = 0
                 ) -> dict:
        """The task's scores on one split of a data folder (bits/char, BLEU or caption BLEU);
        beam and length penalty default to the model's own; ``progress`` shows a bar while image
        features are computed; ``shortlist=False`` makes a translator score every target word;
        ``no_repeat_ngram`` blocks repeated n-grams in the searched texts."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0 (got {limit}); 0 scores every example")
        options = self.default_options(**given_tuning(beam=beam, length_penalty=length_penalty),
                                       shortlist=shortlist, no_repeat_ngram=no_repeat_ngram)
        options.check()
        with self._autocast():
            return self._evaluate(str(data_dir), split, options, limit, progress)

    def _evaluate(self, data_dir: str, split: str, options: SearchOptions, limit: int,
                  progress: bool) -> dict:
        search = dict(beam=options.beam, length_penalty=options.length_penalty,
                      no_repeat_ngram=options.no_repeat_ngram)
        if self.task == "headlines":
            from .tasks.headlines.inference import evaluate_split
            return evaluate_split(self.loaded, str(data_dir), split, limit=limit)
        if self.task == "translation":
            from .tasks.translation.inference import evaluate_split
            return evaluate_split(self.loaded, str(data_dir), split, limit=limit,
                                  shortlist=options.shortlist, **search)
        if self.task == "captioning":
            from .tasks.captioning.inference import evaluate_split
            return evaluate_split(self.loaded, str(data_dir), split, limit=limit,
                                  progress=progress, **search)
        raise ValueError(f"unknown task {self.task!r}")

