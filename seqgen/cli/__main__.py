"""``python -m seqgen.cli``: the same as the ``seqgen`` command."""
import sys

from .main import main

sys.exit(main())
