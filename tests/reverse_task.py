"""A task defined outside seqgen: reverse a sentence, word by word ("a b c" -> "c b a").

It is everything a new task needs — a data module, a training spec with its config, and an
inference adapter — in one file that registers itself; the shared runner trains it and
``Pipeline``, ``seqgen predict`` and the server run it, with no change under ``seqgen/``. The
README's "Add your own task" walks through this file.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from seqgen.data.batch import Batch, bucket_plan, pad, target_pair
from seqgen.decoding.generation import GenerationConfig
from seqgen.decoding.search import generate
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.encoders import EncoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.results import Result
from seqgen.tasks import registry
from seqgen.tasks.adapter import Adapter, Panel, output
from seqgen.tasks.spec import Built, Task
from seqgen.tokenizers import WordTokenizer
from seqgen.training.config import TrainConfig
from seqgen.vocab import Vocab

WORDS = "red green blue cat dog sun moon tree".split()


# -- data --------------------------------------------------------------------------------------
@dataclass
class ReverseDataConfig:
    examples: int = 400
    batch_size: int = 32
    seed: int = 0


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


class ReverseData:
    """Word sentences and their reversals, as the trainer's DataModule protocol wants them."""

    def __init__(self, config: ReverseDataConfig, vocab: Vocab | None = None) -> None:
        self.config, self.tokenizer = config, WordTokenizer()
        texts = sentences(config.examples, config.seed)
        self.vocab = vocab or Vocab.build([self.tokenizer.tokenize(t) for t in texts])
        ids = [self.vocab.encode(self.tokenizer.tokenize(t)) for t in texts]
        cut = len(ids) // 10
        self.train, self.val = ids[cut:], ids[:cut]

    def train_plan(self, epoch: int) -> list[list[int]]:
        return bucket_plan([len(s) for s in self.train], batch_size=self.config.batch_size,
                           seed=self.config.seed, epoch=epoch)

    def make_batch(self, indices: Sequence[int], rows: Sequence[list[int]] | None = None
                   ) -> Batch:
        rows = [self.train[i] for i in indices] if rows is None else rows
        return encode(rows, [row[::-1] for row in rows])

    def val_batches(self) -> Iterable[Batch]:
        yield self.make_batch([], self.val)


def encode(sources: Sequence[list[int]], targets: Sequence[list[int]] | None = None) -> Batch:
    src, lengths = pad(sources)
    if targets is None:
        return Batch(src=src, src_lengths=lengths)
    tgt_in, tgt_out = target_pair(targets)
    return Batch(src=src, src_lengths=lengths, tgt_in=tgt_in, tgt_out=tgt_out)


# -- training spec -----------------------------------------------------------------------------
@dataclass
class ReverseConfig:
    data: ReverseDataConfig = field(default_factory=ReverseDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=16, hidden_dim=16),
        decoder=DecoderConfig(cell="gru", emb_dim=16, hidden_dim=32, attention="general",
                              bridge=True)))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=1e-2, max_steps=60, warmup_steps=5, eval_every=30, precision="fp32"))
    run_dir: str = "runs/reverse"


# -- inference ---------------------------------------------------------------------------------
class ReverseAdapter(Adapter):
    verb = None  # no verb of its own: `seqgen predict --model FILE` runs it
    inputs = "text"
    generation = GenerationConfig(max_len=12)
    panel = Panel(title="Reverser", example="red cat sun", attention="heatmap")

    def predict(self, session: Any, inputs: Sequence[str], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 64) -> list[Result]:
        loaded, results = session.loaded, []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            ids = [loaded.src_vocab.encode(loaded.src_tokenizer.tokenize(t)) or [0] for t in chunk]
            with session.autocast():
                found = generate(loaded.model, encode(ids).to(loaded.model.device),
                                 config.searcher(attention=attention), num_samples=n)
            results += [Result([output(loaded, h) for h in hyps],
                               source=loaded.src_tokenizer.tokenize(text))
                        for text, hyps in zip(chunk, found)]
        return results


class Reverse(Task):
    """Reverse word sentences (a task that lives in tests/)."""

    name = "reverse"
    config = ReverseConfig
    adapter = ReverseAdapter()
    shortcuts = {"--examples": ("data.examples", "how many sentences to make")}

    def dry_run(self, config: ReverseConfig) -> None:
        config.data.examples = 100

    def build(self, config: ReverseConfig, previous: dict | None) -> Built:
        data = ReverseData(config.data, Vocab(previous["tgt_vocab"]) if previous else None)
        model = EncoderDecoder(config.model, src_vocab_size=len(data.vocab),
                               tgt_vocab_size=len(data.vocab))
        return Built(data, model, data.vocab, data.tokenizer, data.vocab, data.tokenizer,
                     summary=f"{len(data.train)} training sentences")


TASK = registry.register(Reverse(), replace=True)
