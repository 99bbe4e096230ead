"""Reading one split of translation pairs: line-aligned ``{split}.{lang}`` files (plain or .gz;
Multi30k's names, with aliases such as ``test`` and ``dev``) or a Hugging Face data set's split."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...io.fileio import read_lines

SPLIT_ALIASES = {"test": "test_2016_flickr", "validation": "val", "dev": "val", "valid": "val"}
HF_SPLITS = {"val": "validation", "test_2016_flickr": "test"}


def split_file(folder: str | Path, split: str, lang: str) -> Path:
    """``folder/{split}.{lang}`` or its .gz; an alias (``test`` for ``test_2016_flickr``, ``dev``
    for ``val``) is tried only when no file carries the name as given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    names = [split] + ([SPLIT_ALIASES[split]] if split in SPLIT_ALIASES else [])
    for name in names:
        for file_name in (f"{name}.{lang}", f"{name}.{lang}.gz"):
            if (folder / file_name).is_file():
                return folder / file_name
    raise FileNotFoundError(f"no {' or '.join(f'{n}.{lang}' for n in names)} (or .gz) in {folder}")


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per "\n"-separated line (never split elsewhere), stripped of outer spaces."""
    return [line.strip() for line in read_lines(path)]


def load_pairs(config: Any, split: str) -> tuple[list[str], list[str]]:
    """Source and target sentences of one split of ``config`` (a ``TranslationDataConfig``: its
    folder and languages, or its Hugging Face data set), checked to be line-aligned."""
    if config.dataset:
        return load_hf_pairs(config, split)
    src = read_sentences(split_file(config.data_dir, split, config.src))
    tgt = read_sentences(split_file(config.data_dir, split, config.tgt))
    if len(src) != len(tgt):
        raise ValueError(f"{split}.{config.src} has {len(src)} lines but {split}.{config.tgt} has "
                         f"{len(tgt)}; the files must be line-aligned")
    return src, tgt


def load_hf_pairs(config: Any, split: str) -> tuple[list[str], list[str]]:
    from datasets import load_dataset

    split = SPLIT_ALIASES.get(split, split)
    rows = load_dataset(config.dataset, split=HF_SPLITS.get(split, split))
    if "translation" in rows.column_names:  # WMT style: {"translation": {"de": ..., "en": ...}}
        pairs = [r["translation"] for r in rows]
        return [p[config.src] for p in pairs], [p[config.tgt] for p in pairs]
    for lang in (config.src, config.tgt):
        if lang not in rows.column_names:
            raise ValueError(f"dataset {config.dataset} has no {lang!r} column "
                             f"(columns: {', '.join(rows.column_names)})")
    return list(rows[config.src]), list(rows[config.tgt])
