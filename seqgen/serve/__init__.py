"""``seqgen serve``: a local web page and JSON API over :mod:`seqgen.pipeline` (needs the ``serve``
extra: ``pip install -e ".[serve]"``). See :mod:`seqgen.serve.app` for the endpoints."""
from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
