"""argparse types shared by the CLI and the recipe runner: numbers checked as they are parsed, so
a bad value is reported in one line naming the flag."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    return _at_least(_int(text), 1, f"expected a whole number >= 1, got {text!r}")


def non_negative_int(text: str) -> int:
    return _at_least(_int(text), 0, f"expected a whole number >= 0, got {text!r}")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    return _at_least(finite_float(text), 0, f"must be a number >= 0, got {text!r}")


def _at_least(value, low, message: str):
    if value < low:
        raise argparse.ArgumentTypeError(message)
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
