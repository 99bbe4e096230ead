"""Caption data: images with several reference captions each, for the CNN-feature captioner.

Layouts read:
- Flickr8k: ``images/``, ``Flickr8k.token.txt`` (``IMAGE.jpg#N<TAB>caption``) and the split lists
  ``Flickr_8k.{train,dev,test}Images.txt``;
- explicit paths to an image folder and a captions file, whose format is told by its content:
  that token format, a CSV with ``image`` and ``caption`` columns (one row per reference),
  Karpathy's split JSON (``images[].filename``/``filepath``/``split``/``sentences[].raw``; its
  splits are used, ``restval`` joining train) or a COCO captions JSON (``images[].file_name``,
  ``annotations[].image_id/caption``; one file per split, ``val_captions`` names validation's);
  split lists may name the images of each split, else a deterministic 5% is held out. Rows naming
  images that are not in the folder are counted and skipped (a one-line error past
  ``missing_max``);
- a Hugging Face dataset by name (online), written once to a local folder in the CSV layout;
- the synthetic shapes set (:mod:`seqgen.tasks.captioning.synthetic`), the offline default.

Grid features come from a frozen backbone through the on-disk :class:`~seqgen.tasks.captioning.features.FeatureCache`.
"""
from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from ...data.batch import Batch, bucket_plan, target_pair
from ...data.captions import read_caption_file, read_captions, read_split  # noqa: F401
from ...nn.backbones import build_backbone, native_size
from ...tokenizers import WordTokenizer
from ...vocab import Vocab
from .features import DEFAULT_CACHE, FeatureCache, upright
from .photo_sets import CaptionSet, caption_set, flickr_layout, readable

SYNTHETIC_DIR = Path("runs") / "synthetic-shapes"
log = logging.getLogger(__name__)


@dataclass
class CaptionDataConfig:
    data_dir: str = ""  # Flickr8k-style folder; empty: the synthetic shapes set
    images: str = ""  # explicit layout: image folder ...
    captions: str = ""  # ... captions file (Flickr8k token, CSV, Karpathy or COCO JSON) ...
    val_captions: str = ""  # ... validation captions file (COCO: one file per split) ...
    train_split: str = ""  # ... and split lists (one image file name per line)
    val_split: str = ""
    dataset: str = ""  # Hugging Face name (online), e.g. jxie/flickr8k
    synthetic_dir: str = str(SYNTHETIC_DIR)
    synthetic_train: int = 3000
    backbone: str = ""  # default: pixels for the synthetic set, efficientnet_lite0 for photos
    image_size: int = 0  # default: 48 synthetic, 224 photos
    cache_dir: str = str(DEFAULT_CACHE)
    min_freq: int = 3
    max_len: int = 40  # words per caption; longer ones are cut
    batch_size: int = 64
    mirror: bool = False  # each epoch shows each training photo as it is or mirrored (features
    # of the mirrored photo, cached like the others; "left" and "right" swapped in its captions)
    limit: int = 0  # first N training images only (0: all)
    val_limit: int = 0
    seed: int = 0
    missing_max: float = 0.2  # stop when more than this share of captioned images is missing

    @property
    def synthetic(self) -> bool:
        return not (self.data_dir or self.captions or self.dataset)

    def resolved_backbone(self) -> tuple[str, int]:
        name = self.backbone or ("pixels" if self.synthetic else "efficientnet_lite0")
        return name, self.image_size or (48 if name == "pixels" else native_size(name))


# ------------------------------------------------------------------------------------------------
def swap_sides(tokens: Sequence[str]) -> list[str]:
    """A mirrored photo's caption: "left" and "right" trade places."""
    sides = {"left": "right", "right": "left"}
    return [sides.get(t, t) for t in tokens]


def load_split(config: CaptionDataConfig, split: str) -> CaptionSet:
    """One split (train / val / test) from whichever source the config names."""
    limit = config.limit if split == "train" else config.val_limit
    if config.synthetic:
        from .synthetic import write_synthetic_set

        folder = write_synthetic_set(config.synthetic_dir, n_train=config.synthetic_train,
                                     seed=config.seed)
        split = {"dev": "val"}.get(split, split)
        return caption_set(folder / "images", read_captions(folder / "captions.csv"),
                           read_split(folder / f"{split}.txt"), limit=limit)
    if config.dataset:
        return load_split(_hf_to_local(config), split)
    if config.data_dir and not config.captions:
        images, captions_file, split_path = flickr_layout(config.data_dir, split)
        return caption_set(images, read_captions(captions_file), read_split(split_path), limit=limit)
    captions, splits = read_caption_file(config.captions)
    listed = config.train_split if split == "train" else config.val_split
    images = config.images or Path(config.captions).parent / "images"
    wanted = {"dev": "val"}.get(split, split)
    if listed:
        names = read_split(listed)
    elif splits is not None:  # Karpathy's own splits
        names = [n for n, s in splits.items() if s == wanted]
    elif config.val_captions:  # COCO: one captions file per split
        if split != "train":
            captions, _ = read_caption_file(config.val_captions)
        names = sorted(captions)
    else:  # no split lists: hold out a deterministic 5% of the images
        names = sorted(captions)
        random.Random(config.seed).shuffle(names)
        cut = max(1, len(names) // 20)
        names = names[cut:] if split == "train" else names[:cut]
    return caption_set(images, captions, names, limit=limit, missing_max=config.missing_max)


def _hf_to_local(config: CaptionDataConfig) -> CaptionDataConfig:
    """Writes a Hugging Face captioning dataset (image + caption(s) columns) to the CSV layout."""
    from dataclasses import replace

    from datasets import load_dataset

    folder = Path(config.cache_dir) / "datasets" / config.dataset.replace("/", "--")
    if not (folder / "captions.csv").is_file():
        (folder / "images").mkdir(parents=True, exist_ok=True)
        rows, splits = [], {}
        for split, hf_split in (("train", "train"), ("val", "validation")):
            names = []
            for i, item in enumerate(load_dataset(config.dataset, split=hf_split)):
                name = f"{split}-{i:06d}.jpg"
                upright(item["image"]).convert("RGB").save(folder / "images" / name, quality=90)
                texts = [item[k] for k in item if k.startswith("caption")]
                refs = [t for x in texts for t in (x if isinstance(x, list) else [x])]
                rows += [(name, r) for r in refs]
                names.append(name)
            splits[split] = names
            (folder / f"{split}.txt").write_text("\n".join(names) + "\n")
        with (folder / "captions.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "caption"])
            writer.writerows(rows)
    return replace(config, dataset="", data_dir="", images=str(folder / "images"),
                   captions=str(folder / "captions.csv"), train_split=str(folder / "train.txt"),
                   val_split=str(folder / "val.txt"))


# ------------------------------------------------------------------------------------------------
class CaptionData:
    """Cached grid features plus encoded captions, one training example per (image, caption)."""

    def __init__(self, config: CaptionDataConfig, *, vocab: Vocab | None = None,
                 progress: bool = False, pixels: bool = False) -> None:
        """With ``pixels`` batches carry images (B, 3, H, W) for a model that runs (and
        fine-tunes) the CNN itself; otherwise cached grid features (B, N, C)."""
        self.config, self.pixels = config, pixels
        self.tokenizer = WordTokenizer(lowercase=True)
        name, size = config.resolved_backbone()
        self.backbone = build_backbone(name, image_size=size)
        self.transform = self.backbone.transform()
        self.train = load_split(config, "train")
        self.val = load_split(config, "val")
        if pixels and config.mirror:
            raise ValueError("data.mirror works on cached features; it cannot be combined with "
                             "fine-tuning the CNN")
        if pixels:
            self.train_features = self.val_features = None
            self.train, errors = readable(self.train)
            self.val, more = readable(self.val)
        else:
            digests: dict[str, str] = {}  # each photo's bytes are read (and hashed) once
            cache = FeatureCache(config.cache_dir, self.backbone, digests=digests)
            self.train_features, self.train, errors = self._features(cache, self.train, progress)
            self.val_features, self.val, more = self._features(cache, self.val, progress)
            if config.mirror:  # mirrored photo i is feature row i + len(train)
                mirrored = FeatureCache(config.cache_dir, self.backbone, mirrored=True,
                                        digests=digests)
                flipped, kept, _ = mirrored.stack(self.train.paths, progress=progress)
                if kept != self.train.paths:
                    raise ValueError("some training photos could not be mirrored")
                self.train_features = torch.cat([self.train_features, flipped])
        for message in list({**errors, **more}.values())[:5]:
            log.warning("skipped: %s", message)
        tokens = [self.tokenize(c) for refs in self.train.refs for c in refs]
        if config.mirror:  # mirrored captions say "right" where the photo's say "left" (and back):
            # count those swapped words once more, every other word once, so min_freq keeps its sense
            tokens += [[w for w, o in zip(swap_sides(t), t) if w != o] for t in tokens]
        self.vocab = vocab or Vocab.build(tokens, min_freq=config.min_freq)
        self.examples = [(i, self.encode(c)) for i, refs in enumerate(self.train.refs) for c in refs]
        n_images = len(self.train.paths)
        self.mirrored_examples = [
            (i + n_images, self.vocab.encode(swap_sides(self.tokenize(c))))
            for i, refs in enumerate(self.train.refs) for c in refs] if config.mirror else []
        self.val_examples = [(i, self.encode(c)) for i, refs in enumerate(self.val.refs) for c in refs]

    @staticmethod
    def _features(cache: FeatureCache, data: CaptionSet, progress: bool
                  ) -> tuple[Tensor, CaptionSet, dict[str, str]]:
        features, kept, errors = cache.stack(data.paths, progress=progress)
        refs = dict(zip(data.paths, data.refs))
        return features, CaptionSet(kept, [refs[p] for p in kept]), errors

    def tokenize(self, caption: str) -> list[str]:
        return self.tokenizer.tokenize(caption)[: self.config.max_len]

    def encode(self, caption: str) -> list[int]:
        return self.vocab.encode(self.tokenize(caption))

    def __len__(self) -> int:
        return len(self.examples)

    # -- the trainer's data-module protocol ---------------------------------------------------
    def train_plan(self, epoch: int) -> list[list[int]]:
        """Batches of example indices; with ``mirror``, index ``i + len(self)`` stands for example
        i on its mirrored photo, chosen for half the examples, anew each epoch."""
        plan = bucket_plan([len(c) for _, c in self.examples], batch_size=self.config.batch_size,
                           seed=self.config.seed, epoch=epoch)
        if not self.mirrored_examples:
            return plan
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch + 7)
        flip = (torch.rand(len(self.examples), generator=generator) < 0.5).tolist()
        return [[i + len(self) * flip[i] for i in batch] for batch in plan]

    def make_batch(self, indices: Sequence[int]) -> Batch:
        n = len(self)
        return self._batch("train", [self.examples[i] if i < n else self.mirrored_examples[i - n]
                                     for i in indices])

    def val_batches(self) -> Iterator[Batch]:
        plan = bucket_plan([len(c) for _, c in self.val_examples], batch_size=self.config.batch_size,
                           seed=0, epoch=0, shuffle=False)
        for indices in plan:
            yield self._batch("val", [self.val_examples[i] for i in indices])

    def _batch(self, split: str, examples: list[tuple[int, list[int]]]) -> Batch:
        tgt_in, tgt_out = target_pair([c for _, c in examples])
        return Batch(features=self.inputs(split, [i for i, _ in examples]), tgt_in=tgt_in,
                     tgt_out=tgt_out)

    def inputs(self, split: str, images: Sequence[int]) -> Tensor:
        """What the model's encoder takes for these images: grid features or pixels."""
        data, features = ((self.val, self.val_features) if split == "val" else
                          (self.train, self.train_features))
        if features is not None:
            return features.index_select(0, torch.as_tensor(list(images))).float()
        from .features import load_image

        return torch.stack([self.transform(load_image(data.paths[i])) for i in images])

    def image_batches(self, split: str = "val", batch_size: int = 100
                      ) -> Iterator[tuple[Batch, list[list[str]]]]:
        """Batches of whole images with their references, for BLEU."""
        data = self.val if split == "val" else self.train
        for start in range(0, len(data.paths), batch_size):
            images = range(start, min(start + batch_size, len(data.paths)))
            yield Batch(features=self.inputs(split, images)), data.refs[start:start + batch_size]
