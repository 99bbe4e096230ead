"""Headlines recipe: a character-level (or word-level) news-headline generator on AG News titles.

The bundled data (assets/data/ag_news) or a full AG News folder:
    python recipes/headlines.py                       # bundled sample, ~3 minutes on 2 cores
    python recipes/headlines.py --data-dir ../shared/data/ag_news --train.max_steps=12000  # ~20 min
    python recipes/headlines.py --dataset sh0416/ag_news          # Hugging Face, when online
Your own data:
    python recipes/headlines.py --text-file titles.txt            # one example per line
    python recipes/headlines.py --text-file news.jsonl --field title   # JSONL, or CSV with a header
    python recipes/headlines.py --level word --text-file book.txt      # words instead of characters
Use the model (the run prints its path):
    seqgen generate --ckpt runs/headlines/model.pt --prompt "Oil prices " --temperature 0.8 -n 5
    Pipeline.load("runs/headlines/model.pt").stream("Oil prices ", GenerationConfig(temperature=0.8))
Check the setup in seconds:
    python recipes/headlines.py --dry-run             # a few steps, for CI

The decoder has no encoder: the prompt is run through it once to build the state, then text is
generated one symbol at a time from that state. Runs are defined by steps (--minutes N caps time);
rerunning the same command resumes. Config overrides: --model.decoder.hidden_dim=256.
"""
from __future__ import annotations

import sys

from seqgen.tasks import registry
from seqgen.training.runner import run


def main(argv: list[str] | None = None) -> int:
    return run(registry.get("headlines"), doc=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
