"""Reproducible held-out splits carved from one training source when no validation (or test)
file is given: a seeded permutation of the row numbers, capped at a share and a count."""
from __future__ import annotations

import hashlib

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2


def held_out_size(n: int, fraction: float, cap: int) -> int:
    """``round(n * fraction)``, at least 1 when ``fraction > 0`` and ``n >= 2``, at most ``cap``
    (0: no cap) and never all of ``n``."""
    if not 0 <= fraction < 1:
        raise ValueError(f"a held-out fraction must be in [0, 1), got {fraction}")
    size = int(round(n * fraction))
    if fraction > 0 and n >= 2:
        size = max(size, 1)
    if cap:
        size = min(size, cap)
    return min(size, max(n - 1, 0))


def carve(n: int, *, val_fraction: float, val_max: int, seed: int, test_fraction: float = 0.0
          ) -> tuple[np.ndarray, dict]:
    """Assigns each of ``n`` rows to train, validation or test.

    Args:
        n: the number of rows (their order in the source).
        val_fraction, val_max: the validation share and its cap (0: none).
        test_fraction: the test share (capped like validation); 0: no test rows.
        seed: the permutation's seed; the same (n, shares, seed) always gives the same split.
    Returns:
        (n,) uint8 of TRAIN/VAL/TEST, and a record of the carve for the run's config: the row
        count, sizes, seed, shares and a digest of the held-out row numbers.
    """
    n_val = held_out_size(n, val_fraction, val_max)
    n_test = min(held_out_size(n, test_fraction, val_max), max(n - n_val - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    split = np.zeros(n, dtype=np.uint8)
    split[order[:n_val]] = VAL
    split[order[n_val:n_val + n_test]] = TEST
    held = np.flatnonzero(split).astype(np.int64)
    record = {"rows": n, "val": n_val, "test": n_test, "seed": seed,
              "val_fraction": val_fraction, "test_fraction": test_fraction, "cap": val_max,
              "held_out_sha1": hashlib.sha1(held.tobytes() + split[held].tobytes()).hexdigest()}
    return split, record
