"""Typed dataclass configs: dotted command-line overrides checked against field types, range
checks, JSON round trip.

Each component keeps its config dataclass next to it; recipes nest them. ``--train.lr=3e-4``
sets ``config.train.lr`` after checking that ``3e-4`` is a finite ``float``; ``check_config`` then
checks ranges (``lr > 0``, ``batch_size >= 1``, ...) so a bad value is a one-line error before any
work starts, not a traceback from deep inside torch.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _convert(value: str, annotation: Any, name: str) -> Any:
    """Parses a command-line string as the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, name)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if errors else f"{name}: cannot parse {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (list, tuple):
        items = [v for v in value.split(",") if v != ""]
        inner = args[0] if args else str
        return (list if origin is list else tuple)(_convert(v, inner, name) for v in items)
    if annotation is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} expects true or false; got {value!r}")
    if annotation in (int, float, str):
        try:
            parsed = annotation(value)
        except ValueError:
            raise ValueError(f"{name} expects {annotation.__name__}; got {value!r}") from None
        if annotation is float and not math.isfinite(parsed):
            raise ValueError(f"{name} must be a finite number; got {value!r}")
        return parsed
    raise ValueError(f"{name}: fields of type {annotation} cannot be set from the command line")


def set_dotted(config: Any, key: str, value: str) -> None:
    """Sets ``config.a.b = value`` for ``key='a.b'``, converting ``value`` to the field's type."""
    *parents, leaf = key.split(".")
    target = config
    for part in parents:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise ValueError(f"unknown config section {key!r}")
        target = getattr(target, part)
    hints = typing.get_type_hints(type(target)) if dataclasses.is_dataclass(target) else {}
    if leaf not in hints:
        known = ", ".join(sorted(hints)) or "none"
        raise ValueError(f"unknown config key {key!r} (known here: {known})")
    setattr(target, leaf, _convert(value, hints[leaf], key))


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Applies ``--a.b=value`` (or ``a.b=value``) strings in order and returns the config."""
    for item in overrides:
        body = item[2:] if item.startswith("--") else item
        if "=" not in body:
            raise ValueError(f"override {item!r} must look like --section.key=value")
        key, value = body.split("=", 1)
        set_dotted(config, key, value)
    return config


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict) -> T:
    """Builds a (nested) dataclass from a dict, ignoring unknown keys from other versions."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in data:
            continue
        value, hint = data[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def save_config(config: Any, path: str | Path) -> None:
    """Writes the resolved config beside a run so it can be reproduced."""
    Path(path).write_text(json.dumps(to_dict(config), indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------
# Ranges of fields that share a name across components (data, model and recipe configs); a config
# class adds its own in a ``RULES`` class attribute and cross-field checks in a ``check()`` method.
COMMON_RULES = {
    "batch_size": ">=1", "max_tokens": ">=0", "limit": ">=0", "val_limit": ">=0",
    "val_fraction": "(0,1)", "max_len": ">=1", "min_freq": ">=0", "max_vocab": ">=0",
    "vocab_size": ">=1", "synthetic_train": ">=1", "image_size": ">=0",
    "emb_dim": ">=1", "hidden_dim": ">=1", "num_layers": ">=1", "feature_dim": ">=0",
    "trainable_blocks": ">=0", "dropout": "[0,1)", "label_smoothing": "[0,1)",
    "weight_drop": "[0,1)", "embed_dropout": "[0,1)", "attention_spread": ">=0",
    "description_epochs": ">=0",
    "beam": ">=1", "length_penalty": ">=0", "average_last": ">=0", "sample_every": ">=0",
    "sample_temperatures": ">0",
}


def _within(value: float, rule: str) -> bool:
    """``value`` against ``>0``, ``>=1`` or an interval such as ``[0,1)``."""
    if rule.startswith(">="):
        return value >= float(rule[2:])
    if rule.startswith(">"):
        return value > float(rule[1:])
    low, high = (float(x) for x in rule[1:-1].split(","))
    return ((value >= low) if rule[0] == "[" else (value > low)) and \
        ((value <= high) if rule[-1] == "]" else (value < high))


def _describe(rule: str) -> str:
    if rule.startswith(">="):
        return f"be >= {rule[2:]}"
    if rule.startswith(">"):
        return f"be > {rule[1:]}"
    return f"be in {rule.replace(',', ', ')}"


def check_config(config: Any, prefix: str = "") -> None:
    """Checks every numeric field of a (nested) dataclass config against its range.

    Raises:
        ValueError: one line naming the first bad key, e.g. ``train.lr must be > 0; got 0.0``.
    """
    rules = {**COMMON_RULES, **getattr(type(config), "RULES", {})}
    for field in dataclasses.fields(config):
        key, value = prefix + field.name, getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            check_config(value, key + ".")
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if not math.isfinite(item):
                raise ValueError(f"{key} must be a finite number; got {item}")
            if field.name in rules and not _within(item, rules[field.name]):
                raise ValueError(f"{key} must {_describe(rules[field.name])}; got {value}")
    check = getattr(config, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as err:
            raise ValueError(f"{prefix}{err}") from None
