"""Captioning recipe: CNN grid features initialise and are attended to by the shared decoder.

The bundled synthetic set, or a Flickr8k folder (images/, Flickr8k.token.txt, split lists):
    python recipes/captioning.py                         # synthetic shapes set, about a minute
    python recipes/captioning.py --data-dir ../shared/data/flickr8k --minutes 35
Your own data: --images DIR with --captions FILE as a Flickr8k token file, a CSV (image,caption),
Karpathy's split JSON (dataset_flickr8k.json) or COCO captions JSON (with --val-captions FILE):
    python recipes/captioning.py --images DIR --captions captions.csv --train-split train.txt --val-split val.txt
    python recipes/captioning.py --images DIR --captions dataset_flickr8k.json
    python recipes/captioning.py --images DIR --captions captions_train.json --val-captions captions_val.json
Fine-tune a trained model on its own captions, rewarded by CIDEr-D:
    python recipes/captioning.py --data-dir ../shared/data/flickr8k --self-critical runs/cap/best.pt
Use the model (the run prints its path):
    seqgen caption --ckpt runs/captioning/model.pt photo.jpg --attention pictures/
    Pipeline.load("runs/captioning/model.pt").predict(["photo.jpg"])
Check the setup in seconds:
    python recipes/captioning.py --dry-run               # a few steps, for CI

Show, Attend and Tell style: a frozen CNN (EfficientNet-Lite0 for photos, a raw patch grid for the
synthetic set) turns each image into a grid of feature vectors, computed once and cached on disk;
their mean starts the decoder through its bridge and the grid is the memory it attends over while
it writes the caption word by word. Models are chosen on dev BLEU-4 (greedy during training).
Presets: ``photos`` (the default with real data) and ``synthetic`` (the default without).
Config overrides: --model.decoder.hidden_dim=256, --data.min_freq=5, --train.lr=1e-3.
"""
from __future__ import annotations

import sys

from seqgen.tasks import registry
from seqgen.training.runner import run


def main(argv: list[str] | None = None) -> int:
    return run(registry.get("captioning"), doc=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
