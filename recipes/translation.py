"""Translation recipe: a Multi30k encoder-decoder (bidirectional GRU encoder, attending GRU decoder).

The bundled data (assets/data/multi30k, German->English) or a Multi30k-style folder:
    python recipes/translation.py                      # bundled de-en sample, a few minutes
    python recipes/translation.py --data-dir ../shared/data/multi30k --src de --tgt en --minutes 60
    python recipes/translation.py --dataset bentrevett/multi30k   # Hugging Face, when online
Your own data: {split}.{lang} line-aligned files in --data-dir, or one file of pairs, --pairs FILE
(TSV, CSV or JSONL; --pairs-format when the extension does not say; --src-field / --tgt-field by
index or name; validation pairs are carved off when none are given):
    python recipes/translation.py --pairs fra.txt --src-field 1 --tgt-field 0   # Tatoeba: fr->en
Fine-tune a trained model on its own samples, rewarded by sentence BLEU:
    python recipes/translation.py --self-critical runs/translation/model.pt
Use the model (the run prints its path):
    seqgen translate --ckpt runs/translation/model.pt "Ein Hund läuft."   # or --input FILE, stdin
    Pipeline.load("runs/translation/model.pt").predict(["Ein Hund läuft."])
Check the setup in seconds:
    python recipes/translation.py --dry-run            # a few steps, for CI

The encoder folds the source sentence into memory and a summary; the shared decoder starts from the
summary (through its bridge) and attends over the memory while it writes the translation. Models
are chosen on validation BLEU (greedy during training); the final scores use beam search.
Config overrides: --model.decoder.hidden_dim=256, --data.tokenizer=word, --train.lr=1e-3.
"""
from __future__ import annotations

import sys

from seqgen.tasks import registry
from seqgen.training.runner import run


def main(argv: list[str] | None = None) -> int:
    return run(registry.get("translation"), doc=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
