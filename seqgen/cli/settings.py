"""The generation settings typed on the command line: one ``GenerationConfig`` for every verb,
``seqgen evaluate`` and ``seqgen export`` included."""
from __future__ import annotations

import argparse

from ..decoding.generation import SETTINGS, GenerationConfig


def config_from(args: argparse.Namespace) -> GenerationConfig:
    """The generation settings typed on the command line (the others stay unset)."""
    given = {name: getattr(args, name, None) for name in SETTINGS if name != "shortlist"}
    # (a flag a sub-command does not offer reads as unset)
    if getattr(args, "no_shortlist", False):
        given["shortlist"] = False
    return GenerationConfig.from_dict(given)
