"""Shared test fixtures: tiny models and scripted probability tables, no trained weights."""
from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.encoders import EncoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TITLES = [
    "Stocks rise as oil falls", "Oil prices hit record high", "Team wins the cup final",
    "New chip speeds up phones", "Rain delays the cup final", "Markets calm after rate cut",
    "Phone maker posts profit", "Storm hits the coast", "Court rules on merger",
    "Rocket launch delayed again",
]


def tiny_model(*, cell: str = "lstm", attention: str = "none", encoder: str = "none",
               vocab: int = 12, layers: int = 1, seed: int = 0,
               input_feeding: bool = False, attend_first: bool = False,
               attention_spread: float = 0.0) -> EncoderDecoder:
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder=EncoderConfig(kind=encoder, cell="gru", emb_dim=6, hidden_dim=5, feature_dim=7),
        decoder=DecoderConfig(cell=cell, emb_dim=6, hidden_dim=8, num_layers=layers,
                              input_feeding=input_feeding, attend_first=attend_first,
                              attention=attention),
        attention_spread=attention_spread)
    return EncoderDecoder(config, src_vocab_size=vocab, tgt_vocab_size=vocab).eval()


def write_ramp_flickr(folder: Path, captions: list[list[str]], *, n_train: int) -> Path:
    """A Flickr8k-style folder: photo i (``i.png``) is a left-to-right grey ramp at 1/(i+1) of
    full brightness, with ``captions[i]``; the first ``n_train`` photos train, the rest are dev."""
    (folder / "images").mkdir(parents=True)
    ramp = np.tile(np.arange(48, dtype=np.uint8)[None, :, None] * 5, (48, 1, 3))
    for i in range(len(captions)):
        Image.fromarray(ramp // (i + 1)).save(folder / "images" / f"{i}.png")
    (folder / "Flickr8k.token.txt").write_text("".join(
        f"{i}.png#{n}\t{caption}\n" for i, refs in enumerate(captions)
        for n, caption in enumerate(refs)))
    names = [f"{i}.png\n" for i in range(len(captions))]
    (folder / "Flickr_8k.trainImages.txt").write_text("".join(names[:n_train]))
    (folder / "Flickr_8k.devImages.txt").write_text("".join(names[n_train:]))
    return folder


def write_ag_news(folder: Path, titles: list[str] = TITLES, *, gz: bool = True,
                  split: str = "train") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f'"{i % 4 + 1}","{t}","A description of {t.lower()}."\n'
                   for i, t in enumerate(titles))
    path = folder / (f"{split}.csv.gz" if gz else f"{split}.csv")
    path.write_bytes(gzip.compress(rows.encode()) if gz else rows.encode())
    return path


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableState:
    """A state that is just the history, so a scripted model can look up its next distribution."""

    history: torch.Tensor  # (N, t)

    def index_select(self, index: torch.Tensor) -> "TableState":
        return TableState(self.history.index_select(0, index))


class ScriptedModel:
    """Next-token probabilities from a table keyed by the history (a tuple of ids).

    Histories missing from the table put all mass on EOS (id 2).
    """

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab: int = 8) -> None:
        self.table, self.vocab = table, vocab
        self.training = False

    def eval(self) -> "ScriptedModel":
        return self

    def train(self, mode: bool = True) -> "ScriptedModel":
        return self

    def step(self, tokens: torch.Tensor, state: TableState) -> tuple[torch.Tensor, TableState]:
        history = torch.cat([state.history, tokens[:, None]], dim=1)
        logits = torch.full((tokens.size(0), self.vocab), -1e9)
        for row, hist in enumerate(history[:, 1:].tolist()):  # drop the BOS fed first
            for token, prob in self.table.get(tuple(hist), {2: 1.0}).items():
                logits[row, token] = torch.tensor(prob).log()
        return logits, TableState(history)

    def start(self, batch_size: int) -> tuple[TableState, torch.Tensor]:
        return TableState(torch.zeros((batch_size, 0), dtype=torch.long)), torch.ones(
            batch_size, dtype=torch.long)


@pytest.fixture(autouse=True)
def fp32_decoding(monkeypatch):
    """Tests compare exact outputs: decode in fp32 instead of timing bf16 on every tiny model."""
    monkeypatch.setenv("SEQGEN_PRECISION", "fp32")


@pytest.fixture
def ag_news_dir(tmp_path: Path) -> Path:
    write_ag_news(tmp_path / "ag", gz=True)
    write_ag_news(tmp_path / "ag", TITLES[:4], gz=False, split="test")
    return tmp_path / "ag"


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained but complete headline (char) and translation (word) checkpoints: fast to build,
    enough to check what the CLI and the pipeline do with any input."""
    from seqgen.io.checkpoint import make_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.tokenizers import CharTokenizer, WordTokenizer
    from seqgen.vocab import Vocab

    folder = tmp_path_factory.mktemp("tiny-ckpts")
    chars = Vocab.build(TITLES)
    headlines = tiny_model(vocab=len(chars), seed=1)
    words = WordTokenizer()
    vocab = Vocab.build([words.tokenize(t) for t in TITLES + ["Ein Hund läuft ."]])
    translator = tiny_model(vocab=len(vocab), encoder="rnn", attention="general", seed=2)
    paths = {"headlines": folder / "headlines.pt", "translation": folder / "translation.pt"}
    atomic_save(make_checkpoint(headlines, task="headlines", tgt_vocab=chars,
                                tgt_tokenizer=CharTokenizer()), paths["headlines"])
    atomic_save(make_checkpoint(translator, task="translation", tgt_vocab=vocab,
                                tgt_tokenizer=words, src_vocab=vocab, src_tokenizer=words,
                                task_config={"data": {"src": "de", "tgt": "en"}}),
                paths["translation"])
    return paths


def tiny_captioner(folder: Path, *, decoding: dict | None = None, seed: int = 5) -> Path:
    """An untrained captioner on the ``pixels`` backbone (48 px: a 3x3 grid of 16 px patches),
    recording ``decoding`` (search settings) as a shipped model does."""
    from seqgen.io.checkpoint import make_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.nn.backbones import build_backbone
    from seqgen.nn.decoder import DecoderConfig
    from seqgen.nn.encoders import EncoderConfig
    from seqgen.nn.model import EncoderDecoder, ModelConfig
    from seqgen.tokenizers import WordTokenizer
    from seqgen.vocab import Vocab

    torch.manual_seed(seed)
    words = WordTokenizer()
    vocab = Vocab.build([words.tokenize(t) for t in TITLES])
    dim = build_backbone("pixels", image_size=48).feature_dim
    config = ModelConfig(encoder=EncoderConfig(kind="features", emb_dim=6, hidden_dim=5,
                                               feature_dim=dim),
                         decoder=DecoderConfig(emb_dim=6, hidden_dim=8, attention="general"))
    model = EncoderDecoder(config, src_vocab_size=len(vocab), tgt_vocab_size=len(vocab)).eval()
    path = folder / "captioner.pt"
    atomic_save(make_checkpoint(model, task="captioning", tgt_vocab=vocab, tgt_tokenizer=words,
                                task_config={"backbone": {"name": "pixels", "image_size": 48},
                                             **({"decoding": decoding} if decoding else {})}),
                path)
    return path


def tiny_summarizer(folder: Path, *, seed: int = 7) -> Path:
    """An untrained summarizer: a word-level joint vocabulary, a GRU encoder and a copying
    decoder, as the summarization task builds them (at a toy size)."""
    from seqgen.io.checkpoint import make_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.tokenizers import WordTokenizer
    from seqgen.vocab import Vocab

    torch.manual_seed(seed)
    words = WordTokenizer()
    vocab = Vocab.build([words.tokenize(t) for t in TITLES])
    config = ModelConfig(encoder=EncoderConfig(kind="rnn", cell="gru", emb_dim=6, hidden_dim=5),
                         decoder=DecoderConfig(cell="gru", emb_dim=6, hidden_dim=8,
                                               attention="general", copy=True))
    model = EncoderDecoder(config, src_vocab_size=len(vocab), tgt_vocab_size=len(vocab)).eval()
    path = folder / "summarizer.pt"
    atomic_save(make_checkpoint(model, task="summarization", tgt_vocab=vocab, tgt_tokenizer=words,
                                src_vocab=vocab, src_tokenizer=words,
                                task_config={"data": {"max_src_len": 60}}), path)
    return path


# -- the web app of ``seqgen serve``: for test_serve*.py and test_page_e2e.py --------------------
LOCAL = "http://127.0.0.1"  # the app's Host guard answers only the local host


@pytest.fixture(scope="module")
def serve_app(tiny_checkpoints, tmp_path_factory):
    """The app on the tiny headline, translation and caption models, with limits small enough
    for a test to reach (0.5 MB uploads, 40-character texts)."""
    pytest.importorskip("fastapi")
    from seqgen.serve import create_app

    captioner = tiny_captioner(tmp_path_factory.mktemp("captioner"), seed=3)
    return create_app({"headlines": tiny_checkpoints["headlines"],
                       "translation": tiny_checkpoints["translation"], "captioning": captioner},
                      max_upload_mb=0.5, max_text_chars=40)


@pytest.fixture(scope="module")
def serve_client(serve_app):
    """A test client of :func:`serve_app` on the local host."""
    from fastapi.testclient import TestClient

    with TestClient(serve_app, base_url=LOCAL) as client:
        yield client


def queued_after(batcher, n: int, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set once ``n`` more jobs have been queued on ``batcher`` (a
    :class:`seqgen.serve.batching.Batcher`): a request or task started concurrently has queued
    its job only once it has run, an order a test waits for instead of sleeping. ``run`` calls
    ``self.submit``, so wrapping the instance's attribute (until the test ends) sees every job."""
    queued, submit, count = asyncio.Event(), batcher.submit, [0]

    def counting(key, items, **kwargs):
        future = submit(key, items, **kwargs)
        count[0] += 1
        if count[0] == n:
            queued.set()
        return future

    monkeypatch.setattr(batcher, "submit", counting)
    return queued


class LiveServer:
    """``app`` served by uvicorn in a thread on a local port that is bound and listening before
    uvicorn starts: the kernel queues connections until uvicorn takes them, so a client may
    connect at once instead of waiting (by the clock) for the server to say it has started."""

    def __init__(self, app) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


# -- photos: shared by test_captioning.py and test_captioning_recipe.py --------------------------
def photo(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Path:
    """A one-colour image of ``size`` in PIL ``mode`` (RGB, L, RGBA, CMYK, or a 16-bit I;16
    ramp) saved at ``path``; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray((np.arange(size[0] * size[1]).reshape(size[::-1]) * 50).astype(np.uint16)
                        ).save(path)
    else:
        Image.new(mode, size, {"RGB": (200, 30, 30), "L": 128, "RGBA": (0, 0, 255, 100),
                               "CMYK": (0, 255, 255, 0)}[mode]).save(path)
    return path


@pytest.fixture()
def flickr_dir(tmp_path) -> Path:
    """A Flickr8k-style folder of six red photos, three captions each, split 4/2 (dev and test
    hold the same two photos, listed in opposite orders)."""
    folder = tmp_path / "flickr"
    for i in range(6):
        photo(folder / "images" / f"{i}.jpg")
    lines = [f"{i}.jpg#{n}\tA dog number {i} runs {'fast' if n else 'slowly'} ." for i in range(6)
             for n in range(3)]
    (folder / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    (folder / "Flickr_8k.trainImages.txt").write_text("0.jpg\n1.jpg\n2.jpg\n3.jpg\n")
    (folder / "Flickr_8k.devImages.txt").write_text("4.jpg\n5.jpg\n")
    (folder / "Flickr_8k.testImages.txt").write_text("5.jpg\n4.jpg\n")
    return folder
