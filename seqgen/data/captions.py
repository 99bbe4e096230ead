"""Caption files in the formats users already have, told apart by content: the Flickr8k token
file (``IMAGE.jpg#N<TAB>caption``), a CSV with ``image`` and ``caption`` columns, Karpathy's split
JSON (``images[].filename``, optional ``filepath``, ``split``, ``sentences[].raw``) and a COCO
captions JSON (``images[].file_name``, ``annotations[].image_id/caption``); and split lists (one
image file name per line). Bad input is one line naming the file."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..io.fileio import read_lines, read_text, split_lines


def read_captions(path: str | Path) -> dict[str, list[str]]:
    """Image file name -> its captions, from any captions file :func:`read_caption_file` reads."""
    return read_caption_file(path)[0]


def read_caption_file(path: str | Path) -> tuple[dict[str, list[str]], dict[str, str] | None]:
    """(image -> captions, image -> split or None) from a Flickr8k token file, an
    ``image,caption`` CSV, a Karpathy split JSON or a COCO captions JSON (told by content).
    Karpathy names are ``filepath/filename`` when a file path is given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file not found: {path}")
    text = read_text(path)
    if text.lstrip().startswith("{"):
        try:
            return _read_json_captions(path, json.loads(text))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    captions: dict[str, list[str]] = {}
    if path.suffix.lower() in (".csv",) or path.name.endswith(".csv.gz"):
        rows = csv.DictReader(io.StringIO(text))
        if not rows.fieldnames or not {"image", "caption"} <= set(rows.fieldnames):
            raise ValueError(f"{path}: a captions CSV needs 'image' and 'caption' columns")
        for row in rows:
            if row["caption"] and row["caption"].strip():
                captions.setdefault(row["image"].strip(), []).append(row["caption"].strip())
        return captions, None
    for line_no, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}: line {line_no} is not 'IMAGE#N<TAB>caption'")
        key, caption = line.split("\t", 1)
        if caption.strip():
            captions.setdefault(key.split("#")[0].strip(), []).append(caption.strip())
    return captions, None


def _read_json_captions(path: Path, data: object) -> tuple[dict[str, list[str]], dict | None]:
    """Karpathy's split JSON (with splits) or a COCO captions JSON (without)."""
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise ValueError(f"{path}: a captions JSON needs an 'images' list (Karpathy or COCO)")
    captions: dict[str, list[str]] = {}
    try:
        if "annotations" in data:  # COCO: captions refer to images by id
            names = {image["id"]: image["file_name"] for image in images}
            for note in data["annotations"]:
                if str(note.get("caption", "")).strip():
                    name = names[note["image_id"]]
                    captions.setdefault(name, []).append(note["caption"].strip())
            return captions, None
        splits = {}
        for image in images:
            name = (f"{image['filepath']}/{image['filename']}" if image.get("filepath")
                    else image["filename"])
            refs = [s.get("raw", "").strip() for s in image.get("sentences", [])]
            captions[name] = [r for r in refs if r]
            splits[name] = {"restval": "train"}.get(image.get("split", "train"),
                                                    image.get("split", "train"))
        return {n: c for n, c in captions.items() if c}, splits
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a Karpathy or COCO captions JSON (missing {err})") from None


def read_split(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path}")
    return [line.strip() for line in read_lines(path) if line.strip()]
