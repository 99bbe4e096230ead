"""Headlines recipe: a character-level (or word-level) news-headline generator on AG News titles.

    python recipes/headlines.py                       # bundled sample, ~3 minutes on 2 cores
    python recipes/headlines.py --data-dir ../shared/data/ag_news --train.max_steps=12000  # ~20 min
    python recipes/headlines.py --level word --text-file book.txt
    python recipes/headlines.py --dry-run             # a few steps, for CI

The decoder has no encoder: the prompt is run through it once to build the state, then text is
generated one symbol at a time from that state. Config overrides: --model.decoder.hidden_dim=256.
"""
from __future__ import annotations

import sys

from seqgen.runs import run
from seqgen.tasks import registry


def main(argv: list[str] | None = None) -> int:
    return run(registry.get("headlines"), doc=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
