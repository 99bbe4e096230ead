"""Checks on text before it reaches a tokenizer: JSON and the command line can carry strings
that are not valid Unicode (lone surrogates), which tokenizers fail on deep inside."""
from __future__ import annotations


def text_problem(text: str) -> str | None:
    """None for text any tokenizer can take; otherwise one line saying what is wrong."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return (f"text is not valid Unicode: an unpaired surrogate "
                f"(U+{ord(text[err.start]):04X}) at character {err.start + 1}")
    return None
