"""The captioning task's training spec: its default config (what ``recipes/captioning.py`` and
``seqgen train captioning`` run) and how data and model are built from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ...decoding.generation import GenerationConfig
from ...io.loaded import vocabularies
from ...nn.decoder import DecoderConfig
from ...nn.encoders import EncoderConfig
from ...nn.model import EncoderDecoder, ModelConfig
from ...training.config import TrainConfig
from ...training.self_critical import SelfCriticalConfig, self_critical_preset
from ..fine_tuning import self_critical_built, trained_start
from ..session import Session
from ..spec import Built, Task
from .adapter import CaptioningAdapter
from .data import CaptionData, CaptionDataConfig
from .inference import caption_features, cider_reward
from .photos import CaptionImages

GREEDY = GenerationConfig(beam=1)  # training-time scores: quick, for model selection


@dataclass
class CaptioningConfig:
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        encoder=EncoderConfig(kind="features", hidden_dim=512, dropout=0.3),
        decoder=DecoderConfig(cell="lstm", emb_dim=256, hidden_dim=512, dropout=0.4,
                              attention="general", bridge=True, tie_weights=True),
        label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=2e-3, max_epochs=200, max_minutes=1.5, warmup_steps=100, eval_every=300))
    run_dir: str = "runs/captioning"
    beam: int = 3
    fine_tune: int = 0  # > 0: run the CNN inside the model and train its last N blocks
    self_critical: str = ""  # a trained captioner to fine-tune on its own samples' CIDEr-D
    scst: SelfCriticalConfig = field(default_factory=SelfCriticalConfig)
    shared_penalty: float = 0.0  # self-critical: reward lost by a caption also sampled for
    # another photo lately (variety; 0: CIDEr-D alone; see inference.cider_reward)


def photos(config: CaptioningConfig) -> None:
    """Real captions: rare words become UNK."""
    config.data.min_freq = 5


def synthetic(config: CaptioningConfig) -> None:
    """The shapes set has 19 words and 64 patches: a small model learns it in about a minute."""
    config.model = ModelConfig(
        encoder=EncoderConfig(kind="features", hidden_dim=128),
        decoder=DecoderConfig(cell="lstm", emb_dim=64, hidden_dim=192, attention="general",
                              bridge=True, input_feeding=True))


class Captioning(Task):
    """Image captioning: CNN grid features start and are attended to by the shared decoder,
    scored against every reference caption (recipes/captioning.py shows the data flags)."""

    name = "captioning"
    position = 30
    adapter = CaptioningAdapter()
    config = CaptioningConfig
    monitor, mode = "val_bleu4", "max"
    other_monitors = {"val_cider": "max"}
    presets = {"photos": photos, "synthetic": synthetic, "self-critical": self_critical_preset}
    shortcuts = {
        "--data-dir": ("data.data_dir", "Flickr8k-style folder (images/, Flickr8k.token.txt, "
                       "Flickr_8k.*Images.txt)"),
        "--images": ("data.images", "image folder (other layouts)"),
        "--captions": ("data.captions", "captions file: Flickr8k token file, CSV image,caption, "
                       "Karpathy split JSON or COCO captions JSON (told by content)"),
        "--val-captions": ("data.val_captions", "validation captions file (COCO: one per split; "
                           "default: 5%% of --captions held out)"),
        "--train-split": ("data.train_split", "list of training image file names"),
        "--val-split": ("data.val_split", "list of validation image file names"),
        "--dataset": ("data.dataset", "Hugging Face dataset name (online)"),
        "--backbone": ("data.backbone", "efficientnet_lite0 (1, 2), resnet18, resnet50, "
                       "mobilenet_v3_large or pixels"),
        "--cache-dir": ("data.cache_dir", "feature cache folder (default ~/.cache/seqgen/features)"),
        "--fine-tune": ("fine_tune", "run the CNN inside the model and fine-tune its last N blocks "
                        "(no feature cache; much slower)"),
        "--beam": ("beam", "beam size for the final scores (default 3)"),
        "--self-critical": ("self_critical", "fine-tune this trained captioner (a .pt file) on "
                            "the CIDEr-D of its own samples (self-critical training; --scst.samples"
                            "=5)"),
    }

    def default_preset(self, config: CaptioningConfig) -> str:
        if config.self_critical:  # the model and vocabulary come from the trained captioner
            return "self-critical"
        return "synthetic" if config.data.synthetic else "photos"

    def dry_run(self, config: CaptioningConfig) -> None:
        import tempfile

        config.data.synthetic_train, config.data.val_limit = 200, 30
        config.data.synthetic_dir = tempfile.mkdtemp(prefix="seqgen-shapes-")
        config.data.cache_dir = str(Path(config.data.synthetic_dir) / "cache")

    def build(self, config: CaptioningConfig, previous: dict | None) -> Built:
        if config.self_critical:
            return self.build_self_critical(config)
        pixels = config.fine_tune > 0 or config.model.encoder.kind == "image"  # its own CNN
        vocab = vocabularies(previous)["tgt_vocab"] if previous else None
        data = CaptionData(config.data, vocab=vocab, pixels=pixels, progress=True)  # bar: caching
        backbone = data.backbone
        encoder = replace(config.model.encoder, feature_dim=backbone.feature_dim)
        if pixels:
            encoder = replace(encoder, kind="image",
                              trainable_blocks=config.fine_tune or encoder.trainable_blocks,
                              backbone=backbone.name, image_size=backbone.image_size)
        model = EncoderDecoder(replace(config.model, encoder=encoder),
                               src_vocab_size=len(data.vocab), tgt_vocab_size=len(data.vocab))
        task_config = {"data": asdict(config.data), "decoding": {"beam": config.beam},
                       "backbone": {"name": backbone.name, "image_size": backbone.image_size}}
        return Built(data, model, data.vocab, data.tokenizer, task_config=task_config,
                     summary=f"{len(data.train.paths)} training images ({len(data)} captions), "
                     f"{len(data.val.paths)} validation, {len(data.vocab)} words, backbone "
                     f"{backbone.name}, {model.num_parameters():,} parameters")

    def build_self_critical(self, config: CaptioningConfig) -> Built:
        """The given captioner's model and vocabulary, whole photos as training rows, and the
        self-critical objective rewarded by CIDEr-D on the training references."""
        ckpt, loaded = trained_start(config.self_critical, self.name)
        backbone = (ckpt.get("task_config") or {}).get("backbone", {})
        name, size = config.data.resolved_backbone()
        if (backbone.get("name"), backbone.get("image_size")) != (name, size):
            raise ValueError(f"{config.self_critical} was trained on {backbone.get('name')} "
                             f"features at {backbone.get('image_size')} pixels, not {name} at "
                             f"{size}; pass --backbone to match")
        if config.fine_tune or ckpt["model_config"]["encoder"]["kind"] == "image":
            raise ValueError("self-critical training works on cached features, not with a "
                             "fine-tuned CNN")
        data = CaptionData(config.data, vocab=loaded.tgt_vocab, progress=True)
        images = CaptionImages(data, batch_size=config.data.batch_size)
        reward = cider_reward(images, data.vocab, shared_penalty=config.shared_penalty)
        return self_critical_built(config.self_critical, ckpt, loaded, data,
                                   data_config=config.data, reward=reward, scst=config.scst,
                                   rows=f"{len(images)} training photos",
                                   val=len(data.val.paths), train_data=images)

    def metrics(self, built: Built, model: EncoderDecoder, config: CaptioningConfig) -> dict:
        loaded = built.loaded(self.name, model)
        scores = self.adapter.score(Session(loaded), built.data.image_batches("val"),
                                    self.adapter.settings(loaded, GREEDY))
        return {"val_bleu4": scores["bleu4"], "val_cider": scores["cider"],
                "val_distinct": scores["distinct"], "val_exact": scores["exact_match"]}

    def samples(self, built: Built, model: EncoderDecoder, config: CaptioningConfig) -> list[str]:
        batch, refs = next(built.data.image_batches("val", batch_size=3))
        loaded = built.loaded(self.name, model)
        settings = self.adapter.settings(loaded, GenerationConfig(beam=1, max_len=30))
        hyps = caption_features(loaded, batch.features, settings)
        return [f"{loaded.decode(h[0].tokens)}  |  {r[0]}" for h, r in zip(hyps, refs)]

    def final(self, built, loaded, config, *, dry_run):
        results = self.adapter.score(Session(loaded), built.data.image_batches("val"),
                                     self.adapter.settings(loaded))
        return [json.dumps({"split": "val", **results})]

    def hint(self, built: Built, path: Path) -> str:
        example = built.data.val.paths[0] if built.data.val.paths else "photo.jpg"
        return f"seqgen caption --ckpt {path} {example}"


TASK = Captioning()
