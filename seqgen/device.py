"""Choosing the device to run on: ``auto`` takes a GPU when torch sees one, else the CPU.

A device that is named but missing (``cuda`` on a machine without a GPU) is an error that says
so, instead of a traceback from the first tensor moved there.
"""
from __future__ import annotations

import re

import torch

_DEVICE = re.compile(r"^(cpu|cuda|mps)(:\d+)?$")


def pick_device(name: str = "auto") -> torch.device:
    """The torch device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises:
        ValueError: the name is not a device, or that device is not available here.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _DEVICE.match(name)
    if not match:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    kind = match.group(1)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
        index = int(match.group(2)[1:]) if match.group(2) else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise ValueError("--device mps: no Apple GPU available here; use --device cpu or auto")
    return torch.device(name)
