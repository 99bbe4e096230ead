"""Where the bundled files live: ``assets/`` (sample data, trained models) and ``recipes/``.

They sit at the top of the source tree and are shipped inside the wheel as ``seqgen/assets`` and
``seqgen/recipes``, so an installed seqgen finds them without a checkout.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """``assets/...`` or ``recipes/...``: inside the installed package, else in the checkout."""
    for base in (PACKAGE, PACKAGE.parent):
        candidate = base.joinpath(*parts)
        if candidate.exists():
            return candidate
    return PACKAGE.joinpath(*parts)
