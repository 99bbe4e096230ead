"""Captioning task glue shared by the recipe, the CLI and the benchmark: captioning image files,
multi-reference evaluation and attention strips."""
from __future__ import annotations

import logging
from collections import Counter, deque
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch

from ...data.batch import Batch
from ...decoding.generation import GenerationConfig
from ...decoding.search import Hypothesis, generate
from ...io.loaded import LoadedModel
from ...metrics import caption_bleu
from ...nn.backbones import Backbone, build_backbone
from ...nn.encoders import ImageEncoder
from ...training.self_critical import Reward
from ...vocab import Vocab
from ..pictures import figure
from .cider import CiderD, cider_d
from .features import ImageError, extract, load_image

log = logging.getLogger(__name__)


def backbone_of(loaded: LoadedModel) -> Backbone:
    """The CNN the checkpoint was trained on (named in it; weights come from its package), or the
    model's own fine-tuned one."""
    if isinstance(loaded.model.encoder, ImageEncoder):
        return loaded.model.encoder.backbone
    spec = loaded.task_config.get("backbone")
    if not spec:
        raise ValueError("this checkpoint does not name its image backbone; is it a captioner?")
    return build_backbone(spec["name"], image_size=int(spec["image_size"])).to(loaded.model.device)


def image_inputs(loaded: LoadedModel, backbone: Backbone, paths: Sequence[str]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Per readable image what the model's encoder takes: grid features from the frozen CNN, or
    pixels when the model runs its own (fine-tuned) CNN; and a one-line error per bad file."""
    if not isinstance(loaded.model.encoder, ImageEncoder):
        return extract(backbone, paths, batch_size=max(len(paths), 1))
    transform, inputs, errors = backbone.transform(), {}, {}
    for path in paths:
        try:
            inputs[path] = transform(load_image(path, min_side=backbone.image_size))
        except ImageError as err:
            errors[path] = str(err)
    return inputs, errors


def caption_features(loaded: LoadedModel, features: torch.Tensor, config: GenerationConfig, *,
                     attention: bool = False, batch_size: int = 100) -> list[list[Hypothesis]]:
    """Hypotheses for a (n, N, C) stack of grid features, searched as ``config`` says."""
    searcher = config.searcher(attention=attention)
    out: list[list[Hypothesis]] = []
    for start in range(0, features.size(0), batch_size):
        chunk = features[start:start + batch_size].float().to(loaded.model.device)
        out += generate(loaded.model, Batch(features=chunk), searcher)
    return out


def caption_images(loaded: LoadedModel, paths: Sequence[str], config: GenerationConfig, *,
                   attention: bool = False, batch_size: int = 16,
                   backbone: Backbone | None = None) -> list[list[Hypothesis] | str]:
    """Per image its hypotheses, or a one-line error when the file cannot be used."""
    backbone = backbone or backbone_of(loaded)
    results: list[list[Hypothesis] | str] = []
    for start in range(0, len(paths), batch_size):
        chunk = [str(p) for p in paths[start:start + batch_size]]
        with torch.autocast(loaded.model.device.type, enabled=False):  # the CNN stays fp32
            features, errors = image_inputs(loaded, backbone, chunk)
        readable = [p for p in chunk if p in features]
        hyps = (caption_features(loaded, torch.stack([features[p] for p in readable]), config,
                                 attention=attention) if readable else [])
        by_path = dict(zip(readable, hyps))
        results += [by_path[p] if p in by_path else errors[p] for p in chunk]
    return results


def save_attention_strip(image_path: str | Path, words: Sequence[str], attention: torch.Tensor,
                         backbone: Backbone, out: str | Path) -> None:
    """The photo, then one panel per generated word with its attention map laid over the photo.

    Args:
        words: the generated words; attention: (len(words) + 1, cells) weights over the grid.
    """
    image = load_image(image_path).resize((backbone.image_size, backbone.image_size))
    words = [*words, "<end>"][: attention.size(0)]
    weights = attention.float().cpu()
    side = int(round(weights.size(1) ** 0.5))
    panels = len(words) + 1
    with figure(out, dpi=90, nrows=1, ncols=panels, figsize=(1.8 * panels, 2.1)) as (_, axes):
        axes[0].imshow(image)
        axes[0].set_title("image", fontsize=8)
        for ax, word, w in zip(axes[1:], words, weights):
            ax.imshow(image)
            ax.imshow(light_overlay(w[: side * side].view(side, side), image.size[::-1]))
            ax.set_title(word, fontsize=8)
        for ax in axes:
            ax.axis("off")


def light_overlay(grid: torch.Tensor, size: tuple[int, int]) -> Any:
    """An (H, W, 4) amber layer for one word: its weights stretched to their own range and
    squared, so the cells it leans on stand out and the rest of the photo stays clear (attention
    over a few dozen cells is nearly flat in absolute terms)."""
    low, high = grid.min(), grid.max()
    strength = ((grid - low) / (high - low).clamp(min=1e-12)) ** 2  # (side, side) in [0, 1]
    up = torch.nn.functional.interpolate(strength[None, None], size=size, mode="bilinear",
                                         align_corners=False)[0, 0].clamp(0, 1)
    layer = torch.zeros(*size, 4)
    layer[..., 0], layer[..., 1], layer[..., 3] = 1.0, 0.75, 0.65 * up
    return layer.numpy()


# ------------------------------------------------------------------------------------------------
def cider_reward(images: Any, vocab: Vocab, *, shared_penalty: float = 0.0,
                 memory: int = 5000) -> Reward:
    """Self-critical reward: each sampled caption's CIDEr-D against its photo's references
    (``images.references``, one list per training row), with document frequencies over all of
    them, as Rennie et al. computed it on the training set.

    ``shared_penalty`` > 0 also counts variety: a caption that was also sampled for another photo,
    in this batch or among the last ``memory`` samples, loses that much. CIDEr-D alone pays the
    safe caption that fits many photos ("a dog runs through the grass"), which is why
    self-critical captioners repeat themselves; the penalty makes the caption that only this
    photo gets worth more. (Repeats within one photo's own samples cost nothing.)"""
    scorer = CiderD(images.references)
    recent: deque[tuple[str, int]] = deque()
    said_of: dict[str, Counter] = {}

    def remember(text: str, index: int) -> None:
        recent.append((text, index))
        said_of.setdefault(text, Counter())[index] += 1
        if len(recent) > memory:
            old_text, old_index = recent.popleft()
            said_of[old_text][old_index] -= 1
            if not +said_of[old_text]:
                del said_of[old_text]

    def reward(ids: Sequence[int], samples: Sequence[Sequence[int]]) -> list[float]:
        texts = [" ".join(vocab.decode(tokens)) for tokens in samples]
        scores = [scorer.score(text, index) for index, text in zip(ids, texts)]
        if not shared_penalty:
            return scores
        for index, text in zip(ids, texts):
            remember(text, index)
        return [score - shared_penalty * (len(+said_of.get(text, Counter())) > 1)
                for score, text in zip(scores, texts)]
    return reward


# ------------------------------------------------------------------------------------------------
def score_captions(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """BLEU-1..4 (0-100, lower-cased, multi-reference), CIDEr-D, exact-caption accuracy, and
    the share of distinct captions (a captioner that says the same thing of many photos has
    learnt the data set's average caption, whatever its BLEU)."""
    scores = caption_bleu(hypotheses, references)
    scores["cider"] = round(cider_d(hypotheses, references), 4)
    normal = lambda s: " ".join(s.lower().replace(".", " ").split())  # noqa: E731
    exact = sum(normal(h) in {normal(r) for r in refs} for h, refs in zip(hypotheses, references))
    scores["exact_match"] = round(exact / max(len(hypotheses), 1), 4)
    scores["distinct"] = round(len({normal(h) for h in hypotheses}) / max(len(hypotheses), 1), 4)
    return scores


def evaluate_batches(loaded: LoadedModel, batches: Iterable[tuple[Batch, list[list[str]]]],
                     config: GenerationConfig) -> dict:
    """Captions every batch of image features (searched as ``config`` says) and scores them
    against their references."""
    hyps, refs = caption_batches(loaded, batches, config)
    return {**score_captions(hyps, refs), "images": len(hyps)}


def caption_batches(loaded: LoadedModel, batches: Iterable[tuple[Batch, list[list[str]]]],
                    config: GenerationConfig) -> tuple[list[str], list[list[str]]]:
    """The caption of every photo in ``batches`` and the photos' references, in order."""
    searcher = config.searcher()
    hyps, refs = [], []
    for batch, references in batches:
        results = generate(loaded.model, batch.to(loaded.model.device), searcher)
        hyps += [loaded.decode(r[0].tokens) for r in results]
        refs += references
    return hyps, refs


def evaluation_batches(loaded: LoadedModel, data_dir: str, split: str, *, limit: int = 0,
                       cache_dir: str | None = None, progress: bool = False
                       ) -> Iterator[tuple[Batch, list[list[str]]]]:
    """Batches of one split of a Flickr8k-style folder (images/, Flickr8k.token.txt, split
    lists): the photos' features (or pixels, for a model that runs its own CNN) and their
    references. Unreadable photos are skipped with a warning."""
    from ...data.captions import read_captions, read_split
    from .photo_sets import caption_set, flickr_layout
    from .features import DEFAULT_CACHE, FeatureCache

    images, captions_file, split_path = flickr_layout(data_dir, split)
    data = caption_set(images, read_captions(captions_file), read_split(split_path), limit=limit)
    refs = dict(zip(data.paths, data.refs))
    if isinstance(loaded.model.encoder, ImageEncoder):  # runs its own CNN: pixels, no cache
        inputs, errors = image_inputs(loaded, backbone_of(loaded), data.paths)
        kept = [p for p in data.paths if p in inputs]
        features = torch.stack([inputs[p] for p in kept]) if kept else None
    else:
        cache = FeatureCache(cache_dir or DEFAULT_CACHE, backbone_of(loaded))
        with torch.autocast(loaded.model.device.type, enabled=False):  # the CNN stays fp32
            features, kept, errors = cache.stack(data.paths, progress=progress)
    for message in list(errors.values())[:5]:
        log.warning("skipped: %s", message)
    if not kept:
        raise ValueError(f"split {split!r} in {data_dir} has no readable images to caption")
    log.info("captioning %d images", len(kept))
    return ((Batch(features=features[i:i + 100].float()), [refs[p] for p in kept[i:i + 100]])
            for i in range(0, len(kept), 100))
