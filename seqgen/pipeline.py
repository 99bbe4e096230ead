"""The inference API, the same for every registered task: load a model (a checkpoint file or a
bundled name), then ``predict`` inputs, ``stream`` a prompt or ``evaluate`` on a data split.

    from seqgen import GenerationConfig, Pipeline

    translator = Pipeline.load("translation")
    print(translator.predict(["Ein Hund läuft."])[0].text)
    headlines = Pipeline.load("headlines")
    for piece in headlines.stream("Moscow, ", GenerationConfig(temperature=0.8, seed=0)):
        print(piece, end="", flush=True)

What an input is (a text line, an image path, a prompt) and how it becomes outputs is the task's
adapter's business (:mod:`seqgen.tasks.adapter`); this module knows no task. Every method returns
one :class:`Result` per input, in input order; a failed item carries its error and the others are
still processed. Memory stays bounded: at most ``MAX_ROWS`` sequences (inputs x beam, or samples)
are decoded at once, and inputs are taken ``WINDOW`` at a time.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from .decoding.generation import GenerationConfig
from .decoding.search import generate
from .device import pick_device
from .io.loaded import LoadedModel
from .nn.int8 import is_quantized
from .precision import PrecisionChoice, choose_inference_precision
from .resources import resource_path
from .results import Output, Result
from .tasks import registry
from .tasks.adapter import Adapter
from .tasks.session import Session
from .text import text_problem

MAX_ROWS = 1024  # sequences decoded at once (inputs x beam, or samples): bounds memory
WINDOW = 1024  # inputs sorted and batched together; results come out window by window


def bundled_model(task: str) -> Path:
    """The shipped checkpoint of a registered task, or a further model a task ships by name."""
    for known in registry.tasks():
        if task in known.adapter.also_bundled:
            return resource_path("assets", "models", known.adapter.also_bundled[task])
    adapter = registry.get(task).adapter
    if not adapter.bundled:
        raise ValueError(f"the {task} task ships no model; pass a checkpoint file")
    return resource_path("assets", "models", adapter.bundled)


def bundled_names() -> list[str]:
    """The tasks that ship a model, and the further models tasks ship by name (what
    ``Pipeline.load(NAME)`` accepts besides files)."""
    return [task.name for task in registry.tasks() if task.adapter.bundled] + [
        name for task in registry.tasks() for name in task.adapter.also_bundled]


# ------------------------------------------------------------------------------------------------
class Pipeline(Session):
    """A loaded model and its task's adapter (the *session* the adapter's calls receive), whose
    searches run in the precision measured fastest on this machine."""

    def __init__(self, loaded: LoadedModel, *, precision: str = "auto") -> None:
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16; got {precision!r}")
        super().__init__(loaded)
        self.adapter: Adapter = registry.get(loaded.task).adapter
        self.requested_precision = precision
        self._precision: PrecisionChoice | None = None
        self._fp32 = False  # evaluation: scores must not depend on the machine

    @classmethod
    def load(cls, model: str | Path | None = None, *, task: str | None = None,
             device: str = "auto", precision: str = "auto") -> "Pipeline":
        """From a checkpoint path, a task name (its bundled model), or ``task``'s bundled model
        when ``model`` is None; with both, the checkpoint must be of that task.

        Raises:
            ValueError (CheckpointError included): missing file, damaged file, wrong task.
        """
        name = str(model) if model is not None else task
        if name is None:
            raise ValueError("name a model file or a task")
        bundled = (name in registry.names() or name in bundled_names()) and not Path(name).is_file()
        path = bundled_model(name) if bundled else Path(name)
        if bundled and not path.is_file():
            raise ValueError(f"no bundled model at {path}; pass a checkpoint file")
        loaded = LoadedModel.from_file(path, device=pick_device(device))
        if task is not None and loaded.task != task:
            raise ValueError(f"{path} is a {loaded.task} model, not a {task} model")
        if loaded.task not in registry.names():
            raise ValueError(f"{path} is a model of the task {loaded.task!r}, which is not "
                             f"registered (registered: {', '.join(registry.names())})")
        return cls(loaded, precision=precision)

    @property
    def task(self) -> str:
        return self.loaded.task

    # -------------------------------------------------------------------------------- settings
    def generation_config(self, caller: GenerationConfig | None = None,
                          **settings: Any) -> GenerationConfig:
        """The settings a search runs with: the task's defaults < this model's recorded ones <
        ``caller`` (and ``settings``, set over it); resolved and checked."""
        if settings:
            caller = GenerationConfig.from_dict({**(caller or GenerationConfig()).given(),
                                                 **settings})
        return self.adapter.settings(self.loaded, caller)

    def row_budget(self, config: GenerationConfig, batch_size: int) -> int:
        """A batch size that keeps inputs x beam within ``MAX_ROWS``."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1 (got {batch_size})")
        return min(batch_size, max(1, MAX_ROWS // config.beam))

    # -------------------------------------------------------------------------------- precision
    @property
    def precision(self) -> PrecisionChoice:
        """What searches run in (chosen on first use; see :meth:`choose_precision`)."""
        return self.choose_precision()

    def choose_precision(self) -> PrecisionChoice:
        """Chooses what searches run in, once: ``auto`` measures bf16 against fp32 once per
        machine and model (see :func:`seqgen.precision.choose_inference_precision`); fp32
        wherever unsure. The server calls it at start-up, so no request waits for a timing."""
        if self._precision is None:
            probe = self.adapter.probe(self.loaded)
            if is_quantized(self.loaded.model):
                self._precision = PrecisionChoice(None, "fp32", "int8 weights, float activations")
            elif probe is None:
                self._precision = PrecisionChoice(None, "fp32", "no probe input for this model")
            else:
                beam = 1 if probe.prompt is not None else 5
                searcher = GenerationConfig(beam=beam, max_len=20).searcher()
                self._precision = choose_inference_precision(
                    self.requested_precision, self.loaded.model.device, model=self.loaded.model,
                    decode=lambda: generate(self.loaded.model, probe, searcher))
        return self._precision

    def autocast(self):
        """The precision searches run in (fp32 while evaluating)."""
        if self._fp32:
            return nullcontext()
        dtype = self.precision.dtype
        return torch.autocast(self.loaded.model.device.type, dtype=dtype, enabled=dtype is not None)

    @contextmanager
    def full_precision(self) -> Iterator[None]:
        previous, self._fp32 = self._fp32, True
        try:
            yield
        finally:
            self._fp32 = previous

    # -------------------------------------------------------------------------------- inference
    def predict(self, inputs: Sequence[Any], config: GenerationConfig | None = None, *,
                n: int = 1, attention: bool = False, batch_size: int | None = None
                ) -> list[Result]:
        """One :class:`Result` per input (a text, an image path or a prompt, as the task says):
        its outputs (n-best, or ``n`` samples), or its error."""
        return list(self.iter_predict(inputs, config, n=n, attention=attention,
                                      batch_size=batch_size))

    def iter_predict(self, inputs: Sequence[Any], config: GenerationConfig | None = None, *,
                     n: int = 1, attention: bool = False, batch_size: int | None = None
                     ) -> Iterator[Result]:
        """Like :meth:`predict`, yielding results in input order window by window."""
        config = self.generation_config(config)
        if n < 1:
            raise ValueError(f"the number of samples must be >= 1 (got {n})")
        if n * config.beam > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} sequences are decoded at once per input; "
                             f"use iter_samples for {n} samples")
        size = self.row_budget(config, batch_size or (16 if self.adapter.inputs == "image"
                                                      else 64))
        for start in range(0, len(inputs), WINDOW):
            window = list(inputs[start:start + WINDOW])
            problems = [text_problem(x) if isinstance(x, str) else None for x in window]
            todo = [x for x, p in zip(window, problems) if p is None]
            found = iter(self.adapter.predict(self, todo, config, n=n, attention=attention,
                                              batch_size=size) if todo else [])
            for problem in problems:
                yield Result(error=problem) if problem else next(found)

    def iter_samples(self, prompt: Any, config: GenerationConfig | None = None, *,
                     n: int = 1) -> Iterator[Output]:
        """``n`` outputs for one input, yielded chunk by chunk as they finish (bounded memory)."""
        config = self.generation_config(config)
        if n < 1:
            raise ValueError(f"the number of samples must be >= 1 (got {n})")
        if n > 1 and not config.sampling:
            raise ValueError("several samples need sampling (a temperature, top-k or top-p); "
                             "with beam search ask for n-best instead")
        problem = text_problem(prompt) if isinstance(prompt, str) else None
        if problem:
            raise ValueError(problem)
        yield from self.adapter.iter_samples(self, prompt, config, n=n,
                                             chunk=max(1, MAX_ROWS // config.beam))

    def stream(self, prompt: Any, config: GenerationConfig | None = None) -> Iterator[str]:
        """Yields the prompt, then each generated piece of text as soon as it is chosen."""
        config = self.generation_config(config)
        problem = text_problem(prompt) if isinstance(prompt, str) else None
        if problem:
            raise ValueError(problem)
        return self.adapter.stream(self, prompt, config)

    def save_attention(self, item: Any, result: Result, out: str | Path) -> None:
        """Draws ``result``'s attention (asked for with ``attention=True``) into a PNG."""
        self.adapter.save_attention(self, item, result, Path(out))

    # -------------------------------------------------------------------------------- evaluation
    def evaluate(self, data_dir: str | Path, split: str, config: GenerationConfig | None = None,
                 *, limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        """The task's scores on one split of a data folder, always in fp32 (the measured
        precision is for speed alone: a score must not depend on the CPU it was computed on);
        generation settings default to the model's own."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0 (got {limit}); 0 scores every example")
        config = self.generation_config(config)
        with self.full_precision():
            return self.adapter.evaluate(self, str(data_dir), split, config, limit=limit,
                                         progress=progress, cache_dir=cache_dir)
