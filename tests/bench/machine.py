"""What every benchmark states beside its figures: the CPU model, its relevant flags, the torch
threads, and the precision each side ran in (speed depends on all four)."""
from __future__ import annotations

import json

from seqgen.precision import describe_cpu


def machine(precision: dict[str, str]) -> dict:
    """The ``machine`` entry of a benchmark's JSON: CPU, flags, threads and per-side precision."""
    return {**describe_cpu(), "precision": precision}


def machine_line(precision: dict[str, str]) -> str:
    info = machine(precision)
    return (f"CPU {info['model']} ({info['machine']}; {', '.join(info['flags']) or 'no relevant flags'}"
            f"), torch {info['torch']}, {info['threads']} threads, precision "
            + ", ".join(f"{side} {p}" for side, p in precision.items()))


if __name__ == "__main__":
    print(json.dumps(machine({})))
