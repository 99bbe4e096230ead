"""Checks on the text that reaches a tokenizer: it must be valid Unicode.

A Python ``str`` can hold a lone surrogate (``"\\ud800"``): JSON's ``\\ud800`` escape decodes to one,
and so does ``os.fsdecode`` of a file name that is not UTF-8. No tokenizer can encode it and no
response can carry it back as UTF-8, so it is refused, per item, with the position it is at.

    check_text("Ein Hund.")        # -> "Ein Hund."
    check_text("Ein \\udc80 Hund.")  # ValueError: text has an unpaired surrogate (U+DC80) at position 4
"""
from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str, every surrogate is unpaired


def check_text(text: str) -> str:
    """``text`` itself when it is valid Unicode.

    Raises:
        ValueError: naming the first unpaired surrogate and its (0-based) character position;
            the message never contains the text, so it can be sent back as UTF-8.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    found = _SURROGATE.search(text)
    if found:
        raise ValueError(f"text has an unpaired surrogate (U+{ord(found.group()):04X}) at "
                         f"position {found.start()}; send valid Unicode")
    return text


def text_problem(text: str) -> str | None:
    """The one-line reason ``text`` cannot be used (see :func:`check_text`), or None."""
    try:
        check_text(text)
    except ValueError as err:
        return str(err)
    return None
