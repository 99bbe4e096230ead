"""Summarization recipe: a headline from an article (AG News descriptions -> titles by default).

    python recipes/summarization.py                       # bundled AG News sample, a few minutes
    python recipes/summarization.py --data-dir ../shared/data/ag_news --minutes 60
    python recipes/summarization.py --pairs news.jsonl --src-field text --tgt-field title
    python recipes/summarization.py --src-file train.doc --tgt-file train.title
    python recipes/summarization.py --dataset gigaword --src-field document --tgt-field summary
    python recipes/summarization.py --dry-run             # a few steps, for CI

Then: seqgen summarize --ckpt runs/summarization/model.pt "NEW YORK (Reuters) - ..."
The encoder reads the article; the shared decoder attends over it and copies names and numbers
from it (decoder.copy; --model.decoder.copy=false turns that off). Scores: ROUGE-1/2/L beside the
lead baseline (the article's first 12 words). Config overrides: --data.vocab_size=6000.
"""
from __future__ import annotations

import sys

from seqgen.tasks import registry
from seqgen.training.runner import run


def main(argv: list[str] | None = None) -> int:
    return run(registry.get("summarization"), doc=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
