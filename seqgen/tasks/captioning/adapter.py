"""Captioning at inference: image files in, captions out (the CNN built once per model, its
precision measured apart from the search), multi-reference evaluation, attention strips."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ...data.batch import Batch
from ...decoding.generation import GenerationConfig
from ...io.loaded import LoadedModel
from ...nn.backbones import Backbone
from ...precision import PrecisionChoice, choose_inference_precision
from ...results import Result
from ..adapter import Adapter, Panel, output
from .coco_scores import coco_scores
from .inference import (backbone_of, caption_batches, caption_images, evaluate_batches,
                        evaluation_batches, save_attention_strip, score_captions)


class CaptioningAdapter(Adapter):
    bundled = "flickr8k-lite0.pt"
    verb = "caption"
    help = "caption image files"
    inputs = "image"
    generation = GenerationConfig(beam=3, max_len=40)
    panel = Panel(title="Captioner", attention="strip")
    example = "photo.jpg"

    def predict(self, session: Any, inputs: Sequence[str | Path], config: GenerationConfig, *,
                n: int = 1, attention: bool = False, batch_size: int = 16) -> list[Result]:
        """Caption(s) of each image file; an unreadable file gives a Result with its error."""
        if n > 1:
            raise ValueError("captioning gives one output per image; ask for n-best instead")
        loaded, backbone = session.loaded, self.backbone(session)
        with session.autocast():
            found = caption_images(loaded, [str(p) for p in inputs], config, attention=attention,
                                   batch_size=batch_size, backbone=backbone)
        return [Result(error=item) if isinstance(item, str)
                else Result([output(loaded, h) for h in item]) for item in found]

    def backbone(self, session: Any) -> Backbone:
        """The model's CNN, built once per session, in the precision timed fastest for it."""
        if "backbone" not in session.state:
            backbone = backbone_of(session.loaded)
            choice = cnn_precision(session, backbone)
            backbone.autocast_dtype = choice.dtype
            session.state["backbone"], session.state["cnn_precision"] = backbone, choice
        return session.state["backbone"]

    def evaluate(self, session: Any, data_dir: str, split: str, config: GenerationConfig, *,
                 limit: int = 0, progress: bool = False, cache_dir: str | None = None) -> dict:
        """seqgen's own scores and, beside them, the COCO caption toolkit's (``coco``: BLEU-1..4,
        METEOR, ROUGE-L, CIDEr-D, SPICE, as the published tables report them); a metric that
        cannot run is named under ``skipped`` and said on stderr in one line."""
        batches = evaluation_batches(session.loaded, data_dir, split, limit=limit,
                                     progress=progress, cache_dir=cache_dir)
        with session.autocast():
            hyps, refs = caption_batches(session.loaded, batches, config)
        coco, skipped = coco_scores(hyps, refs)
        for note in skipped:
            print(f"seqgen: {note}", file=sys.stderr)
        return {"split": split, **score_captions(hyps, refs), "images": len(hyps),
                **self.search_settings(config), "coco": coco,
                **({"skipped": skipped} if skipped else {})}

    def score(self, session: Any, examples: Iterable[tuple[Batch, list[list[str]]]],
              config: GenerationConfig) -> dict:
        """Caption scores of ``examples``: batches of image features (or pixels) with each
        photo's references; and the search that made the captions."""
        with session.autocast():
            scores = evaluate_batches(session.loaded, examples, config)
        return {**scores, **self.search_settings(config)}

    @staticmethod
    def search_settings(config: GenerationConfig) -> dict:
        """The search that made the captions, recorded beside their scores."""
        return {"beam": config.beam, "length_penalty": config.length_penalty,
                **({"no_repeat_ngram": config.no_repeat_ngram} if config.no_repeat_ngram else {})}

    def probe(self, loaded: LoadedModel) -> Batch | None:
        if loaded.model.config.encoder.kind != "features":
            return None
        dim = loaded.model.config.encoder.feature_dim
        return Batch(features=torch.randn(32, 49, dim, device=loaded.model.device))

    def save_attention(self, session: Any, item: str, result: Result, out: Path) -> None:
        best = result.outputs[0] if result.outputs else None
        if best is None or best.attention is None:
            raise ValueError("no attention to draw")
        save_attention_strip(item, best.symbols, best.attention, self.backbone(session), out)

    def attention_grid(self, result: Result) -> dict:
        grid = super().attention_grid(result)
        if grid:
            cells = len(grid["attention"][0]) if grid["attention"] else 0
            grid["grid"] = int(round(cells ** 0.5))
        return grid


def cnn_precision(session: Any, backbone: Backbone) -> PrecisionChoice:
    """What a captioner's CNN runs in, measured apart from the search (convolutions and recurrent
    steps gain differently from bf16). bf16 CNN features scored BLEU-4 16.69 vs 16.48 (fp32) on
    500 Flickr8k dev photos, so the choice is made for speed alone."""
    if not backbone.is_cnn:
        return PrecisionChoice(None, "fp32", "no CNN")
    device, size = session.loaded.model.device, backbone.image_size

    def run_cnn() -> None:  # a batch of 8 made-up photos, only if a timing is needed
        with torch.inference_mode():
            backbone(torch.rand(8, 3, size, size, device=device))

    return choose_inference_precision(session.requested_precision, device, model=backbone,
                                      decode=run_cnn, what="CNN")
