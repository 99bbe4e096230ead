"""The headlines task's training spec: its default config (what ``recipes/headlines.py`` and
``seqgen train headlines`` run) and how data and model are built from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...decoding.generation import GenerationConfig
from ...io.loaded import vocabularies
from ...nn.decoder import DecoderConfig
from ...nn.model import EncoderDecoder, ModelConfig
from ...training.config import TrainConfig
from ...training.distributed import world_size
from ...training.tbptt import CarriedState
from ...vocab import Vocab
from ..session import Session
from ..spec import Built, Task
from .adapter import HeadlinesAdapter
from .data import HeadlineData, HeadlineDataConfig
from .inference import PROMPTS, TEMPERATURES, sample_table
from .stream import StreamData


@dataclass
class HeadlinesConfig:
    data: HeadlineDataConfig = field(default_factory=HeadlineDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(decoder=DecoderConfig(
        cell="lstm", emb_dim=64, hidden_dim=512, num_layers=1, dropout=0.3)))
    # steps, not minutes, define the run: a busy machine takes longer but gets the same numbers
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=8e-3, max_epochs=1000, max_steps=1600, warmup_steps=50, eval_every=100))
    run_dir: str = "runs/headlines"
    sample_every: int = 1  # show samples after every N-th evaluation (0: never)
    sample_temperatures: tuple[float, ...] = (0.5, 1.0)


STREAM_MAX_LEN = 500  # what a stream model writes by default (it never ends by itself)


def stream(config: HeadlinesConfig) -> None:
    """One continuous text (``--stream``, char-rnn's job): a two-layer LSTM reads 64 parallel
    streams in windows of 128 characters, its state carried from window to window."""
    config.model = ModelConfig(decoder=DecoderConfig(cell="lstm", emb_dim=64, hidden_dim=512,
                                                     num_layers=2, dropout=0.2))
    config.train = TrainConfig(lr=3e-3, max_epochs=10_000, max_steps=4000, warmup_steps=100,
                               eval_every=250, clip_norm=1.0)
    config.run_dir = "runs/stream"


class Headlines(Task):
    """Character-level (or word-level) news-headline generation: the prompt is run through the
    decoder, text is generated from its state (recipes/headlines.py shows the data flags). With
    --stream, a character model of one continuous text instead (a book: char-rnn's job)."""

    name = "headlines"
    position = 10
    adapter = HeadlinesAdapter()
    config = HeadlinesConfig
    shortcuts = {
        "--data-dir": ("data.data_dir", "folder with AG News train.csv / test.csv (or .gz)"),
        "--dataset": ("data.dataset", "Hugging Face dataset name, e.g. sh0416/ag_news"),
        "--text-file": ("data.text_file", "text file: plain (one example per line), JSONL or CSV"),
        "--text-format": ("data.text_format", "text, jsonl or csv (default: by extension)"),
        "--field": ("data.text_field", "JSONL key / CSV column (name or 0-based index) of the "
                    "text (default text)"),
        "--cache-dir": ("data.cache_dir", "token cache folder (default ~/.cache/seqgen/tokens)"),
        "--level": ("data.level", "char (default) or word"),
    }
    switches = {"--stream": ("data.stream", "the text file is one continuous text (a book, a "
                             "script): read it as parallel streams, the state carried across "
                             "windows, the last 10%% held out")}
    presets = {"stream": stream}

    def default_preset(self, config: HeadlinesConfig) -> str | None:
        return "stream" if config.data.stream else None

    def dry_run(self, config: HeadlinesConfig) -> None:
        if config.data.stream:  # characters, not examples: a few windows' worth
            config.data.limit, config.data.batch_size, config.data.window = 20_000, 8, 32
            return
        config.data.limit, config.data.val_fraction = 256, 0.02

    def build(self, config: HeadlinesConfig, previous: dict | None) -> Built:
        saved = vocabularies(previous) if previous else {}  # a resumed run keeps its symbols
        if config.data.stream:
            return self.build_stream(config, saved.get("tgt_vocab"))
        data = HeadlineData(config.data, vocab=saved.get("tgt_vocab"),
                            tokenizer=saved.get("tgt_tokenizer"))
        model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                               tgt_vocab_size=len(data.vocab))
        return Built(data, model, data.vocab, data.tokenizer, task_config={"data": asdict(config.data)},
                     summary=f"{len(data.train_texts)} training / {len(data.val_texts)} validation "
                     f"examples, {len(data.vocab)} symbols, {model.num_parameters():,} parameters")

    def build_stream(self, config: HeadlinesConfig, vocab: Vocab | None) -> Built:
        """A continuous text, its model, and the objective that carries the state on."""
        if world_size() > 1:
            raise ValueError("--stream trains in one process: its streams are read in order, "
                             "which torchrun's shards of the batches would break")
        data = StreamData(config.data, vocab=vocab)
        model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                               tgt_vocab_size=len(data.vocab))
        return Built(data, model, data.vocab, data.tokenizer, objective=CarriedState(),
                     task_config={"data": asdict(config.data), "stream": data.describe(),
                                  "decoding": {"max_len": STREAM_MAX_LEN}},
                     summary=f"{data.path}: {data.train.stop:,} characters to train on, "
                     f"{data.val.stop - data.val.start:,} held out; {config.data.batch_size} streams, windows of "
                     f"{config.data.window}, {len(data.vocab)} symbols, "
                     f"{model.num_parameters():,} parameters")

    def samples(self, built: Built, model: EncoderDecoder, config: HeadlinesConfig) -> list[str]:
        loaded = built.loaded(self.name, model)
        if config.data.stream:
            settings = self.adapter.settings(loaded, GenerationConfig(max_len=200))
            return sample_table(loaded, settings, ("",), config.sample_temperatures[-1:])
        settings = self.adapter.settings(loaded, GenerationConfig(max_len=80))
        return sample_table(loaded, settings, PROMPTS[:3], config.sample_temperatures)

    def final(self, built, loaded, config, *, dry_run):
        long = 300 if config.data.stream else None
        settings = self.adapter.settings(loaded, GenerationConfig(max_len=30 if dry_run else long))
        if config.data.stream:
            lines = sample_table(loaded, settings, ("",), (0.5, 0.8, 1.0))
            examples = built.data.val_span()
        else:
            lines = sample_table(loaded, settings, PROMPTS, TEMPERATURES)
            examples = built.data.val_texts
        metrics = self.adapter.score(Session(loaded), examples, settings)
        return [*lines, json.dumps({"split": "validation", **metrics})]

    def hint(self, built: Built, path: Path) -> str:
        if isinstance(built.data, StreamData):
            return f"seqgen generate --ckpt {path} --prompt 'ROMEO:' --temperature 0.8 --max-len 500"
        return f"seqgen generate --ckpt {path} --prompt 'Today ' --temperature 0.8 -n 5"


TASK = Headlines()
