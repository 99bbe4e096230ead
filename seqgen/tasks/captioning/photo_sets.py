"""Sets of captioned photos: a Flickr8k-style folder's layout (images/, Flickr8k.token.txt, one
list of file names per split), the listed photos that have captions and are in the folder, and
those among them that decode."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

FLICKR_SPLITS = {"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt",
                 "val": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"}


@dataclass
class CaptionSet:
    """Image paths and their reference captions (same order)."""

    paths: list[str]
    refs: list[list[str]]


def flickr_layout(data_dir: str | Path, split: str) -> tuple[Path, Path, Path]:
    """(images folder, captions file, split list) of a Flickr8k-style folder."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    if split not in FLICKR_SPLITS and not (folder / split).is_file():
        raise ValueError(f"unknown split {split!r}; expected train, dev or test")
    split_path = folder / FLICKR_SPLITS.get(split, split)
    return folder / "images", folder / "Flickr8k.token.txt", split_path


def caption_set(images: str | Path, captions: dict[str, list[str]], names: Sequence[str],
                *, limit: int = 0, missing_max: float = 1.0) -> CaptionSet:
    """The listed images that have captions (others are skipped, with a count in the log) and
    are in the folder: missing ones are counted and the first few named in the log, and more
    than ``missing_max`` of them missing is a one-line error."""
    kept = [n for n in names if n in captions]
    if len(kept) < len(names):
        log.warning("%d listed images have no captions; skipped", len(names) - len(kept))
    if missing_max < 1.0 and kept:
        found = {n for n in kept if (Path(images) / n).is_file()}
        present = [n for n in kept if n in found]
        missing = [n for n in kept if n not in found]
        if missing:
            log.warning("%d of %d captioned images are not in %s; skipped (first: %s)",
                        len(missing), len(kept), images, ", ".join(missing[:5]))
            if len(missing) > missing_max * len(kept):
                raise ValueError(f"{len(missing)} of {len(kept)} captioned images are not in "
                                 f"{images} (first: {missing[0]}); is --images the right folder?")
        kept = present
    kept = kept[:limit] if limit else kept
    return CaptionSet([str(Path(images) / n) for n in kept], [captions[n] for n in kept])


def readable(data: CaptionSet) -> tuple[CaptionSet, dict[str, str]]:
    """The images that decode, and a one-line error for each that does not."""
    from .features import ImageError, load_image

    kept, errors = [], {}
    for path, refs in zip(data.paths, data.refs):
        try:
            load_image(path)
            kept.append((path, refs))
        except ImageError as err:
            errors[path] = str(err)
    return CaptionSet([p for p, _ in kept], [r for _, r in kept]), errors
