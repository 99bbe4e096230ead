"""A deterministic synthetic captioning set: two coloured shapes and where each one is.

Scenes are rendered from a seed, so nothing but this file is committed: the same seed gives the
same images and captions on every machine ("a red circle at the top left and a blue square in the
centre"). A captioner must name both shapes, both colours and both places, and must look at the
right part of the image for each, so exact-caption accuracy is a meaningful test, yet a small
attention model learns it in about a minute on a CPU. Both orders of the two objects are given as
references.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 230),
           "yellow": (235, 210, 40)}
SHAPES = ("circle", "square", "triangle")
IMAGE_SIZE = 48
GRID = 3  # objects sit in the cells of a GRID x GRID layout
ROWS = ("at the top{}", "{}", "at the bottom{}")
COLUMNS = (" left", "", " right")
MIDDLE_ROW = ("on the left", "in the centre", "on the right")


def place(col: int, row: int) -> str:
    """Where a cell of the 3x3 layout is, in words: "at the top left", "in the centre", ..."""
    if row == 1:
        return MIDDLE_ROW[col]
    return ROWS[row].format(COLUMNS[col])


def captions_for(objects: list[tuple[str, str]], cells: list[tuple[int, int]]) -> list[str]:
    """Both objects with their places, in reading order first, then the other order."""
    parts = [f"a {colour} {shape} {place(*cell)}" for (colour, shape), cell in zip(objects, cells)]
    order = sorted(range(2), key=lambda i: (cells[i][1], cells[i][0]))
    first, second = parts[order[0]], parts[order[1]]
    return [f"{first} and {second}", f"{second} and {first}"]


def _draw(draw: ImageDraw.ImageDraw, shape: str, colour: str, cx: float, cy: float, r: float) -> None:
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)


def render_scene(rng: random.Random, size: int = IMAGE_SIZE) -> tuple[Image.Image, list[str]]:
    """One scene: two different (colour, shape) objects in two cells of a 3x3 layout, with a
    little jitter in size and place, and a dark background of random shade."""
    objects = rng.sample([(c, s) for c in COLOURS for s in SHAPES], 2)
    cells = [divmod(i, GRID)[::-1] for i in rng.sample(range(GRID * GRID), 2)]  # (col, row)
    cell = size / GRID
    shade = rng.randint(10, 50)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    for (colour, shape), (col, row) in zip(objects, cells):
        r = rng.uniform(0.30, 0.40) * cell
        cx = (col + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        cy = (row + 0.5) * cell + rng.uniform(-0.08, 0.08) * cell
        _draw(draw, shape, colour, cx, cy, r)
    return image, captions_for(objects, cells)


def write_synthetic_set(folder: str | Path, *, n_train: int = 3000, n_val: int = 300,
                        n_test: int = 300, seed: int = 0) -> Path:
    """Renders the set into ``folder`` (images/, captions.csv, {train,val,test}.txt) once.

    A ``done`` marker written last makes an interrupted render start over rather than be reused.
    """
    folder = Path(folder)
    marker = folder / f"done-{seed}-{n_train}-{n_val}-{n_test}"
    if marker.exists():
        return folder
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        names = []
        for i in range(count):
            image, refs = render_scene(rng)
            name = f"{split}-{i:05d}.png"
            image.save(images / name)
            names.append(name)
            rows += [(name, ref) for ref in refs]
        (folder / f"{split}.txt").write_text("\n".join(names) + "\n")
    with (folder / "captions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    marker.write_text("ok\n")
    return folder
