"""Attention pictures checked by what they show: the translation heatmap puts its bright cells
where the weights are, and the captioning strip has one panel per word whose overlay peaks over
the attended grid cell."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seqgen.nn.backbones import build_backbone
from seqgen.tasks.captioning.inference import save_attention_strip
from seqgen.tasks.pictures import save_attention_heatmap

VIRIDIS_LOW, VIRIDIS_HIGH = (68, 1, 84), (253, 231, 37)  # the colours of weight 0 and weight 1


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int32)  # (H, W, 3)


def near(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return np.abs(rgb - np.array(colour)).sum(-1) < tol


def heatmap_cells(path: Path, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) bool: which cells of the plotted matrix are drawn in the brightest colour."""
    rgb = pixels(path)
    painted = near(rgb, VIRIDIS_LOW) | near(rgb, VIRIDIS_HIGH)
    ys, xs = np.nonzero(painted)
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    height, width = (bottom - top + 1) / rows, (right - left + 1) / cols
    bright = np.zeros((rows, cols), dtype=bool)
    for i in range(rows):
        for j in range(cols):
            y, x = int(top + (i + 0.5) * height), int(left + (j + 0.5) * width)
            colour = rgb[y, x]
            assert near(colour[None], VIRIDIS_HIGH)[0] or near(colour[None], VIRIDIS_LOW)[0], \
                f"cell {i},{j} is {colour.tolist()}, neither the low nor the high colour"
            bright[i, j] = bool(near(colour[None], VIRIDIS_HIGH)[0])
    return bright


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [2, 0, 5, 1, 4, 3]],
                         ids=["identity", "permutation"])
def test_heatmap_bright_cells_are_where_the_attention_is(tmp_path, order):
    attention = torch.eye(6)[order]  # target i attends source order[i]; the 6th pair is </s>
    path = tmp_path / "attention.png"
    save_attention_heatmap(list("abcde"), ["v", "w", "x", "y", "z"], attention, path)
    rgb = pixels(path)
    assert rgb.reshape(-1, 3).std(0).max() > 30  # not a uniform picture
    assert near(rgb, VIRIDIS_HIGH).sum() > 6 * 50 and near(rgb, VIRIDIS_LOW).sum() > 30 * 50
    assert heatmap_cells(path, 6, 6).tolist() == (attention > 0.5).tolist()


def test_heatmap_shows_only_the_real_source_and_target_cells(tmp_path):
    attention = torch.zeros(5, 7)  # 2 words + </s> attend over 3 source symbols + </s> + padding
    attention[0, 1] = attention[1, 0] = attention[2, 3] = 1.0
    attention[3:, :] = 1.0  # rows past the end of the translation: never drawn
    path = tmp_path / "short.png"
    save_attention_heatmap(["a", "b", "c"], ["x", "y"], attention, path)
    expected = torch.zeros(3, 4, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = expected[2, 3] = True
    assert heatmap_cells(path, 3, 4).tolist() == expected.tolist()


# ------------------------------------------------------------------------------------------------
def panels(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each picture in a strip: the runs of non-white pixels along
    the strip's middle row, each as tall as the longest non-white run down its middle column
    (the title above is a few short runs)."""
    middle = rgb[rgb.shape[0] // 2]
    content = np.abs(middle - 255).sum(-1) > 30  # (W,)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], content.astype(int), [0]])))
    boxes = []
    for left, end in zip(edges[::2], edges[1::2]):
        column = np.abs(rgb[:, (left + end) // 2] - 255).sum(-1) > 30
        ys = np.flatnonzero(column)
        runs = np.split(ys, np.flatnonzero(np.diff(ys) > 1) + 1)
        body = max(runs, key=len)
        boxes.append((int(body[0]), int(body[-1]), int(left), int(end - 1)))
    return boxes


def hottest_quadrant(rgb: np.ndarray, box: tuple[int, int, int, int]) -> str:
    top, bottom, left, right = box
    heat = rgb[top:bottom + 1, left:right + 1]
    red = heat[..., 0] - heat[..., 2]  # jet: red where the weight is high, blue where it is low
    h, w = red.shape
    quads = {"top-left": red[: h // 2, : w // 2], "top-right": red[: h // 2, w // 2:],
             "bottom-left": red[h // 2:, : w // 2], "bottom-right": red[h // 2:, w // 2:]}
    return max(quads, key=lambda q: quads[q].mean())


@pytest.fixture
def grey_photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(path)
    return path


def test_strip_has_the_photo_then_one_panel_per_word_overlaid_where_it_looked(tmp_path, grey_photo):
    backbone = build_backbone("pixels", image_size=48)  # a 3x3 grid: 9 cells
    attention = torch.zeros(3, 9)
    attention[0, 0] = attention[1, 8] = attention[2, 2] = 1.0  # top-left, bottom-right, top-right
    out = tmp_path / "strip.png"
    save_attention_strip(grey_photo, ["red", "square"], attention, backbone, out)
    rgb = pixels(out)
    boxes = panels(rgb)
    assert len(boxes) == 4  # photo, "red", "square", "<end>"
    photo = rgb[boxes[0][0]:boxes[0][1] + 1, boxes[0][2]:boxes[0][3] + 1]
    assert np.abs(photo - 128).max() < 10  # the plain photo, no overlay
    quadrants = [hottest_quadrant(rgb, box) for box in boxes[1:]]
    assert quadrants == ["top-left", "bottom-right", "top-right"]
    (t1, b1, l1, r1), (t2, b2, l2, r2) = boxes[1:3]
    h, w = min(b1 - t1, b2 - t2), min(r1 - l1, r2 - l2)
    first, second = rgb[t1:t1 + h, l1:l1 + w], rgb[t2:t2 + h, l2:l2 + w]
    assert np.abs(first - second).mean() > 8  # two words, two different (light) overlays


def test_strip_grows_with_the_number_of_words(tmp_path, grey_photo):
    backbone = build_backbone("pixels", image_size=48)
    widths = {}
    for n_words in (1, 2, 5):
        attention = torch.softmax(torch.randn(n_words + 1, 9), dim=-1)
        out = tmp_path / f"strip-{n_words}.png"
        save_attention_strip(grey_photo, [f"w{i}" for i in range(n_words)], attention, backbone, out)
        rgb = pixels(out)
        assert len(panels(rgb)) == n_words + 2
        widths[n_words] = rgb.shape[1]
    assert widths[1] < widths[2] < widths[5]
    per_panel = [widths[n] / (n + 2) for n in widths]
    assert max(per_panel) - min(per_panel) < 2  # the same width for every panel
