"""Image loading with clear errors, and an on-disk cache of frozen-backbone grid features.

Every image is turned upright as its EXIF Orientation says (a phone stores a portrait photo as a
landscape one plus "rotate 90"), so a captioner sees what a viewer shows. A frozen CNN gives the
same features for an image every epoch, so they are computed once and stored, keyed by backbone,
image size and the file's bytes (an edited photo is a cache miss). Training then never runs the CNN.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ...io.fileio import atomic_save
from ...nn.backbones import Backbone

MAX_PIXELS = 40_000_000  # larger images are refused (decompression-bomb guard)
ORIENTATION = 0x0112  # the EXIF tag; 1 is upright, 2-8 are mirrorings and rotations
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "seqgen" / "features"

log = logging.getLogger(__name__)


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file."""


def load_image(path: str | Path, *, min_side: int = 0) -> Image.Image:
    """An RGB image, upright (EXIF Orientation applied); grayscale, palette, RGBA, CMYK and
    16-bit files are converted.

    Args:
        min_side: the size the caller will shrink the image to; a large JPEG is then decoded
            at the smallest of 1/2, 1/4 or 1/8 scale that keeps both sides at least this long
            (PIL's ``draft``), several times faster than decoding every pixel of a photo.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {image.width}x{image.height} pixels is more than the "
                                     f"{MAX_PIXELS:,}-pixel limit (decompression-bomb guard)")
                if min_side and image.format == "JPEG":
                    image.draft("RGB", (min_side, min_side))
                image.load()
                return to_rgb(upright(image))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or an unsupported format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: too many pixels (decompression-bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot decode image ({str(err).strip() or type(err).__name__}; "
                         "truncated or damaged?)") from None


def orientation(image: Image.Image) -> int:
    """The image's EXIF Orientation (1 = upright, also when the EXIF block is absent or damaged)."""
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the pixels are still usable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF Orientation says (itself when already upright)."""
    if orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def file_orientation(data: bytes) -> int:
    """The EXIF Orientation of an image file's bytes (header only; 1 when unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return orientation(image)
    except Exception:  # noqa: BLE001 - not an image: load_image will say so
        return 1


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; transparency is composited on white, 16-bit depth scaled down."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray((array / peak * 255).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


# ------------------------------------------------------------------------------------------------
def extract(backbone: Backbone, paths: Sequence[str | Path], *, batch_size: int = 32,
            progress: bool = False, mirrored: bool = False
            ) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Grid features (N, C) per readable image (of its mirror image with ``mirrored``), and a
    one-line error per unreadable one."""
    features: dict[str, Tensor] = {}
    errors: dict[str, str] = {}
    for names, grid, bad in extract_batches(backbone, paths, batch_size=batch_size,
                                            progress=progress, mirrored=mirrored):
        features.update(zip(names, grid))
        errors.update(bad)
    return features, errors


@torch.no_grad()
def extract_batches(backbone: Backbone, paths: Sequence[str | Path], *, batch_size: int = 32,
                    progress: bool = False, mirrored: bool = False
                    ) -> Iterator[tuple[list[str], Tensor, dict[str, str]]]:
    """Per batch of ``paths``: the readable images' names, their grid features (b, N, C) and the
    unreadable ones' errors. A caller that stores each batch as it comes keeps what was done if
    a long extraction is interrupted, and never holds every image's features twice."""
    transform = backbone.transform()
    device = next(backbone.parameters(), torch.empty(0)).device
    bar = _progress(len(paths), progress, "extracting features")
    try:
        for start in range(0, len(paths), batch_size):
            pixels, names, errors = [], [], {}
            for path in paths[start:start + batch_size]:
                try:
                    image = load_image(path, min_side=backbone.image_size)
                    if mirrored:
                        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    pixels.append(transform(image))
                    names.append(str(path))
                except ImageError as err:
                    errors[str(path)] = str(err)
            grid = (backbone(torch.stack(pixels).to(device)).float().cpu() if pixels
                    else torch.empty(0))  # (b, N, C)
            yield names, grid, errors
            if bar is not None:
                bar.update(min(batch_size, len(paths) - start))
    finally:
        if bar is not None:
            bar.close()


def _progress(total: int, enabled: bool, desc: str):
    if not enabled or total < 50:
        return None
    from tqdm import tqdm

    tty = sys.stderr.isatty()  # into a log file: a line every half minute, not a redrawn bar
    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=tty, leave=not tty,
                mininterval=0.1 if tty else 30.0)


class FeatureCache:
    """Grid features on disk, one float16 file per image, under ``cache_dir/backbone-size`` (or
    ``backbone-size-mirrored`` for the features of mirrored images, a training augmentation)."""

    def __init__(self, cache_dir: str | Path, backbone: Backbone, *, mirrored: bool = False,
                 digests: dict[str, str] | None = None) -> None:
        """``digests`` (path -> hash of its bytes), when given, remembers each file's hash: the
        plain and the mirrored caches of one data set share one, so a photo is read once. Without
        it every lookup reads the file, so a changed photo is always seen."""
        self.backbone, self.mirrored = backbone, mirrored
        self.folder = (Path(cache_dir) / f"{backbone.name}-{backbone.image_size}"
                       f"{'-mirrored' if mirrored else ''}")
        self.digests = digests
        self.hits = self.misses = 0
        self.unwritable = False

    def key(self, path: str | Path) -> Path:
        """A file name made from the image's bytes: it changes when the image does, and not when
        the same file is copied, moved or downloaded again (a data set unpacked anew every
        session would otherwise cost a full extraction each time).

        The bytes include the EXIF Orientation, so a rotated file never shares an upright one's
        entry. Files with an orientation other than 1 are hashed with a salt as well: their
        entries from before images were turned upright hold the features of a sideways photo,
        and must be misses (the entries of all other files stay valid)."""
        digest = self.digests.get(str(path)) if self.digests is not None else None
        if digest is None:
            data = Path(path).read_bytes()
            sha = hashlib.sha1(data)
            if file_orientation(data) != 1:
                sha.update(b"\0upright")
            digest = sha.hexdigest()
            if self.digests is not None:
                self.digests[str(path)] = digest
        return self.folder / digest[:2] / f"{digest}.pt"

    def get(self, paths: Sequence[str | Path], *, batch_size: int = 32, progress: bool = False
            ) -> tuple[dict[str, Tensor], dict[str, str]]:
        """Features (float16) for every readable image, computing and storing the misses."""
        found: dict[str, Tensor] = {}
        errors: dict[str, str] = {}
        keys: dict[str, Path] = {}
        missing = []
        for path in paths:
            try:
                key = keys[str(path)] = self.key(path)
            except OSError:
                errors[str(path)] = f"{path}: file not found"
                continue
            if key.is_file():
                with contextlib.suppress(Exception):
                    found[str(path)] = torch.load(key, weights_only=True)
                    self.hits += 1
                    continue
            missing.append(path)
        self.misses += len(missing)
        for names, grids, bad in extract_batches(self.backbone, missing, batch_size=batch_size,
                                                 progress=progress, mirrored=self.mirrored):
            errors.update(bad)
            for name, grid in zip(names, grids.half()):
                grid = grid.clone()  # its own storage: saving a view would save the whole batch
                self._store(grid, keys[name])
                found[name] = grid
        return found, errors

    def _store(self, grid: Tensor, key: Path) -> None:
        """Saves one image's features; a cache that cannot be written (read-only, full) is used
        no further, with one warning: scoring goes on without it."""
        if self.unwritable:
            return
        try:
            atomic_save(grid, key)
        except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError
            self.unwritable = True
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            log.warning("feature cache %s cannot be written (%s); going on without caching "
                        "(choose another with --cache-dir)", self.folder, reason)

    def stack(self, paths: Iterable[str | Path], **kwargs) -> tuple[Tensor, list[str], dict[str, str]]:
        """One (n, N, C) float16 tensor of the readable images, their paths, and the errors."""
        paths = list(paths)
        found, errors = self.get(paths, **kwargs)
        kept = [str(p) for p in paths if str(p) in found]
        if not kept:
            raise ValueError("none of the images could be read" +
                             (f" (first error: {next(iter(errors.values()))})" if errors else ""))
        return torch.stack([found[p] for p in kept]), kept, errors
