"""Benchmark: seqgen's Multi30k translator against a re-implementation of the anchor model.

    python tests/bench/bench_translation.py --ckpt runs/translation-m30k/model.pt
    python tests/bench/bench_translation.py --quick    # under 3 minutes: speed figures only

The anchor is Joey NMT 2.3's recurrent configuration, re-implemented here from its description:
word-level vocabularies, bidirectional GRU-256 encoder, GRU-512 decoder with Bahdanau (additive)
attention and input feeding (the previous attentional vector is fed with the next word, so the
decoder must loop over time steps), bridge initialisation, batches of 64, Adam 1e-3. seqgen's
decoder instead runs the fused GRU over the whole target and attends afterwards (Luong style), so
its teacher-forced pass is a few large matrix products.

Figures (on ../shared/data/multi30k, German->English):
1. test_2016_flickr sacreBLEU (cased, 13a, detokenised) and chrF, beam 5, of ``--ckpt``;
2. training throughput: target tokens per second for both (each in its own tokens: seqgen's are
   subword pieces, the anchor's words) and, unit-free, sentence pairs per second, whose ratio is
   the reported speed-up;
3. batched beam-5 decoding speed on the 1,000 test sentences.
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from machine import machine, machine_line
from seqgen.checkpoint import LoadedModel
from seqgen.metrics import translation_scores
from seqgen.pipeline import Pipeline, SearchOptions
from seqgen.runs import run_minutes
from seqgen.data.batch import bucket_plan, pad
from seqgen.data.translation import TranslationDataConfig, load_pairs
from seqgen.tokenizers import WordTokenizer
from seqgen.train import TrainConfig, Trainer
from seqgen.vocab import BOS, EOS, PAD, Vocab

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "multi30k"


# ------------------------------------------------------------------------------------------------
class AnchorNMT(nn.Module):
    """Bi-GRU encoder + GRU decoder with additive attention and input feeding (Joey NMT style)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, emb: int = 256, enc: int = 256,
                 dec: int = 512, dropout: float = 0.2) -> None:
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, emb, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, enc, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * enc, dec)
        self.key = nn.Linear(2 * enc, dec, bias=False)
        self.query = nn.Linear(dec, dec, bias=False)
        self.energy = nn.Linear(dec, 1, bias=False)
        self.cell = nn.GRUCell(emb + dec, dec)
        self.att_vector = nn.Linear(dec + 2 * enc, dec)
        self.output = nn.Linear(dec, tgt_vocab)
        self.dropout = nn.Dropout(dropout)
        self.dec = dec

    def forward(self, src, src_len, tgt_in, tgt_out):
        x = self.dropout(self.src_embed(src))
        packed = pack_padded_sequence(x, src_len, batch_first=True, enforce_sorted=False)
        memory, _ = self.encoder(packed)
        memory, _ = pad_packed_sequence(memory, batch_first=True, total_length=src.size(1))
        mask = src != PAD
        summary = (memory * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        hidden = torch.tanh(self.bridge(summary))
        keys = self.key(memory)
        prev_att = memory.new_zeros(src.size(0), self.dec)
        y = self.dropout(self.tgt_embed(tgt_in))
        outputs = []
        for t in range(tgt_in.size(1)):  # input feeding forces a loop over time
            hidden = self.cell(torch.cat([y[:, t], prev_att], -1), hidden)
            scores = self.energy(torch.tanh(keys + self.query(hidden)[:, None])).squeeze(-1)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            context = torch.bmm(weights[:, None], memory).squeeze(1)
            prev_att = torch.tanh(self.att_vector(self.dropout(torch.cat([hidden, context], -1))))
            outputs.append(prev_att)
        logits = self.output(self.dropout(torch.stack(outputs, 1)))
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD,
                               reduction="sum")


def anchor_throughput(src: list[str], tgt: list[str], seconds: float) -> dict:
    """Trains the anchor for ``seconds`` and reports target words and sentence pairs per second."""
    tokenizer = WordTokenizer()
    src_tok = [tokenizer.tokenize(s) for s in src]
    tgt_tok = [tokenizer.tokenize(t) for t in tgt]
    src_vocab, tgt_vocab = Vocab.build(src_tok, min_freq=2), Vocab.build(tgt_tok, min_freq=2)
    src_ids = [src_vocab.encode(s)[:50] + [EOS] for s in src_tok]
    tgt_ids = [tgt_vocab.encode(t)[:50] for t in tgt_tok]
    torch.manual_seed(0)
    model = AnchorNMT(len(src_vocab), len(tgt_vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    plan = bucket_plan([len(t) for t in tgt_ids], batch_size=64, seed=0, epoch=0)
    tokens = sentences = 0
    start = time.perf_counter()
    for step, indices in enumerate(plan):
        s, s_len = pad([src_ids[i] for i in indices])
        tin, _ = pad([[BOS, *tgt_ids[i]] for i in indices])
        tout, _ = pad([[*tgt_ids[i], EOS] for i in indices])
        if step == 3:  # the first steps warm up the allocator
            tokens, sentences, start = 0, 0, time.perf_counter()
        loss = model(s, s_len, tin, tout)
        optimizer.zero_grad()
        (loss / len(indices)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += int((tout != PAD).sum())
        sentences += len(indices)
        if time.perf_counter() - start > seconds and step > 3:
            break
    elapsed = time.perf_counter() - start
    return {"tokens_per_s": tokens / elapsed, "sentences_per_s": sentences / elapsed}


def seqgen_throughput(data_dir: Path, seconds: float) -> dict:
    """Trains the recipe's default model for ``seconds`` through the real Trainer."""
    sys.path.insert(0, str(ROOT / "recipes"))
    from translation import Translation, TranslationConfig  # the recipe's own wiring

    config = TranslationConfig()
    config.data.data_dir = str(data_dir)
    built = Translation().build(config, None)
    data, model = built.data, built.model
    counted = {"tokens": 0, "sentences": 0, "seconds": 0.0}
    sizes: list[int] = []
    make_batch = data.make_batch
    data.make_batch = lambda indices: (sizes.append(len(indices)), make_batch(indices))[1]

    class Meter:
        def on_step_end(self, trainer, *, n_tokens: int, seconds: float, **_):
            if trainer.state.step > 3:
                counted["tokens"] += n_tokens
                counted["seconds"] += seconds
                counted["sentences"] += sizes[-1]

    train_config = TrainConfig(lr=2e-3, max_minutes=seconds / 60, warmup_steps=200, eval_every=10**9,
                               max_epochs=1, schedule="constant")
    trainer = Trainer(model, data, train_config, callbacks=[Meter()])
    trainer.fit()
    return {"tokens_per_s": counted["tokens"] / counted["seconds"],
            "sentences_per_s": counted["sentences"] / counted["seconds"],
            "precision": trainer.precision}


def decoding_speed(pipe: Pipeline, sources: list[str], beam: int = 5) -> tuple[float, list[str]]:
    """Sentences per second through the inference API (its measured precision), and the text."""
    options = SearchOptions(beam=beam, max_len=120)
    pipe.translate(sources[:64], options)  # warm-up (and the one-off precision timing)
    start = time.perf_counter()
    results = pipe.translate(sources, options, batch_size=100)
    return len(sources) / (time.perf_counter() - start), [r.text for r in results]


def int8_figures(ckpt: Path, sources: list[str], references: list[str]) -> dict:
    """Beam-5 speed and BLEU of ``seqgen export --int8`` against the same model in fp32 (both
    decode with float activations; the int8 one runs its Linear layers as int8 products)."""
    import tempfile

    from seqgen.checkpoint import export_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        export_checkpoint(ckpt, Path(tmp) / "int8.pt", int8=True)
        int8 = Pipeline(LoadedModel.from_file(Path(tmp) / "int8.pt"))
    fp32 = Pipeline(LoadedModel.from_file(ckpt), precision="fp32")
    (fast, hyps8), (slow, hyps32) = decoding_speed(int8, sources), decoding_speed(fp32, sources)
    bleu8 = translation_scores(hyps8, references)["bleu"]
    bleu32 = translation_scores(hyps32, references)["bleu"]
    print(f"int8 export: {fast:.1f} vs fp32 {slow:.1f} sentences/s ({fast / slow:.2f}x), "
          f"BLEU {bleu8} vs {bleu32}", file=sys.stderr)
    return {"int8_sentences_per_s": round(fast, 1), "fp32_sentences_per_s": round(slow, 1),
            "int8_speedup": round(fast / slow, 2), "int8_bleu_change": round(bleu8 - bleu32, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="speed figures only, under 3 minutes")
    parser.add_argument("--ckpt", default=str(ROOT / "assets" / "models" / "multi30k-de-en.pt"))
    parser.add_argument("--run-dir", help="the training run of --ckpt (for its training time)")
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--seconds", type=float, default=45.0, help="training time per side")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"error: data folder not found: {data_dir}", file=sys.stderr)
        return 2
    config = TranslationDataConfig(data_dir=str(data_dir))
    train_src, train_tgt = load_pairs(config, "train")
    test_src, test_ref = load_pairs(config, "test_2016_flickr")
    result: dict = {}

    anchor = anchor_throughput(train_src, train_tgt, args.seconds)
    print(f"anchor (input feeding, stepped): {anchor['tokens_per_s']:,.0f} target words/s, "
          f"{anchor['sentences_per_s']:.1f} pairs/s", file=sys.stderr)
    ours = seqgen_throughput(data_dir, args.seconds)
    print(f"seqgen (fused GRU, Luong attention, {ours['precision']}): "
          f"{ours['tokens_per_s']:,.0f} target pieces/s, {ours['sentences_per_s']:.1f} pairs/s",
          file=sys.stderr)
    result.update(train_tokens_per_s=round(ours["tokens_per_s"]),
                  reference_train_tokens_per_s=round(anchor["tokens_per_s"]),
                  train_sentences_per_s=round(ours["sentences_per_s"], 1),
                  reference_train_sentences_per_s=round(anchor["sentences_per_s"], 1),
                  train_speedup=round(ours["sentences_per_s"] / anchor["sentences_per_s"], 2))

    ckpt = Path(args.ckpt)
    if ckpt.is_file():
        loaded = LoadedModel.from_file(ckpt)
        pipe = Pipeline(loaded)
        speed, hyps = decoding_speed(pipe, test_src[:300] if args.quick else test_src)
        decoding = pipe.precision.name
        print(f"beam-5 decoding ({decoding}: {pipe.precision.note}): {speed:.1f} sentences/s",
              file=sys.stderr)
        result["beam5_sentences_per_s"] = round(speed, 1)
        result.update(int8_figures(ckpt, test_src[:300] if args.quick else test_src,
                                   test_ref[:300] if args.quick else test_ref))
        if not args.quick:
            scores = translation_scores(hyps, test_ref)
            print(f"test_2016_flickr: BLEU {scores['bleu']} chrF {scores['chrf']} "
                  f"({scores['signature']})", file=sys.stderr)
            result.update(test_bleu=scores["bleu"], test_chrf=scores["chrf"],
                          train_minutes=run_minutes(args.run_dir or ckpt.parent))
    else:
        decoding = "none"
        print(f"no checkpoint at {ckpt}; decoding and BLEU skipped", file=sys.stderr)
    precision = {"anchor": "fp32", "seqgen": ours["precision"], "decoding": decoding}
    print(machine_line(precision), file=sys.stderr)
    result["machine"] = machine(precision)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
