"""Typed dataclass configs: dotted command-line overrides checked against field types, JSON round trip.

Each component keeps its config dataclass next to it; recipes nest them. ``--train.lr=3e-4``
sets ``config.train.lr`` after checking that ``3e-4`` is a valid ``float``.
"""
from __future__ import annotations

import dataclasses
import json
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
            return annotation(value)
        except ValueError:
            raise ValueError(f"{name} expects {annotation.__name__}; got {value!r}") from None
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
