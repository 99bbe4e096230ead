"""The ``seqgen`` command: :mod:`.main` runs the sub-commands, :mod:`.parser` declares their
flags, :mod:`.inputs` reads what they are given."""
from .main import main

__all__ = ["main"]
