"""Choosing the training precision by measurement: ``auto`` trains in bf16 autocast on a CPU only
where that is native *and* measured faster for this model, since emulated bf16 (AVX-512 without
``avx512_bf16``) runs several times slower. The decision is cached per CPU, torch and model shape.

    choice = choose_precision("auto", torch.device("cpu"), model=model, batches=batches)
    choice.dtype, choice.name, choice.note   # torch.bfloat16, "bf16", "measured 1.4x faster ..."
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

log = logging.getLogger(__name__)

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86; aarch64 reports "bf16" in Features
MIN_SPEEDUP = 1.1  # bf16 must be at least this much faster than fp32 to be chosen
MAX_SPREAD = 0.25  # rounds disagreeing more than this: a busy machine; measured once more, then
# the conservative fp32 (never a choice made from a disturbed timing, never cached)
ENVIRONMENT = "SEQGEN_PRECISION"  # fp32 or bf16 instead of "auto", for training and inference alike
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PrecisionChoice:
    """The autocast dtype to train in (None: fp32), its name, and why it was chosen."""

    dtype: torch.dtype | None
    name: str
    note: str


# ------------------------------------------------------------------------------------------------
def read_cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return info
    for line in text.split("\n"):
        if not line.strip():
            if info:
                break  # one processor is enough
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip().lower(), value.strip())
    return info


def cpu_flags() -> set[str]:
    """Instruction-set flags of this CPU (x86 ``flags``, aarch64 ``Features``); empty if unknown."""
    info = read_cpuinfo()
    return set((info.get("flags") or info.get("features") or "").split())


def native_bf16(flags: set[str], machine: str | None = None) -> bool:
    """True where the CPU executes bf16 natively; anything unknown counts as no."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64", "i686", "i386"):
        return any(f in flags for f in NATIVE_BF16_FLAGS)
    if machine in ("aarch64", "arm64"):
        return "bf16" in flags
    return False


def cpu_name() -> str:
    info = read_cpuinfo()
    return info.get("model name") or info.get("cpu model") or platform.processor() or "unknown CPU"


def describe_cpu() -> dict[str, Any]:
    """What benchmarks print beside their figures: CPU model, relevant flags and torch threads."""
    flags = cpu_flags()
    relevant = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "bf16",
                "asimd", "sve")
    return {"model": cpu_name(), "machine": platform.machine(),
            "flags": [f for f in relevant if f in flags], "native_bf16": native_bf16(flags),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


# ------------------------------------------------------------------------------------------------
def time_steps(model: torch.nn.Module, batches: Sequence[Any], device: torch.device, *,
               rounds: int = 3, budget_s: float = 8.0) -> dict[str, float]:
    """Seconds per forward+backward pass in fp32 and in bf16 autocast, on these batches, and the
    ``spread`` of their ratio between rounds (large when other work competed for the CPU).

    One warm-up round (oneDNN builds its kernels per shape on first use) is followed by up to
    ``rounds`` timed rounds over all batches, fp32 and bf16 alternating batch by batch so a change
    in machine load hits both alike; each precision keeps its fastest round. Runs on a deep copy
    of ``model`` and restores the RNGs afterwards, so training is unaffected.
    """
    rng, py_rng = torch.get_rng_state(), random.getstate()
    net = copy.deepcopy(model).to(device).train()
    best = {"fp32": math.inf, "bf16": math.inf}
    ratios = []
    try:
        started = time.perf_counter()
        for round_ in range(rounds + 1):
            totals = dict.fromkeys(best, 0.0)
            for batch in batches:
                batch = batch.to(device)
                for name in totals:
                    totals[name] += _one_step(net, batch, device, DTYPES[name])
            if round_ > 0:
                best = {name: min(best[name], totals[name] / len(batches)) for name in best}
                ratios.append(totals["fp32"] / max(totals["bf16"], 1e-12))
                if time.perf_counter() - started > budget_s:
                    break  # a big model: fewer rounds must do
    finally:
        torch.set_rng_state(rng)
        random.setstate(py_rng)
    return {**best, "spread": max(ratios) / min(ratios) - 1}


def _one_step(net: torch.nn.Module, batch: Any, device: torch.device,
              dtype: torch.dtype | None) -> float:
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        total, n_tokens = net(batch)
    (total / n_tokens.clamp(min=1)).backward()
    net.zero_grad(set_to_none=True)
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------
def cache_path() -> Path:
    """``$SEQGEN_CACHE_DIR/precision.json``, by default under ``~/.cache/seqgen``."""
    root = os.environ.get("SEQGEN_CACHE_DIR") or Path.home() / ".cache" / "seqgen"
    return Path(root) / "precision.json"


def cache_key(model: torch.nn.Module, device: torch.device) -> str:
    """CPU model, torch version, threads and a short signature of the model's shape."""
    shapes = ";".join(f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters())
    digest = hashlib.sha1(shapes.encode()).hexdigest()[:10]
    n_params = sum(p.numel() for p in model.parameters())
    return (f"{cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
            f"{device.type} | {type(model).__name__} {n_params} params {digest}")


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, key: str, entry: dict) -> None:
    """Adds one entry; a cache that cannot be written only costs a new measurement next time."""
    try:
        data = _read_cache(path)
        data[key] = entry
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        log.warning("cannot write the precision cache %s: %s", path, err)


# ------------------------------------------------------------------------------------------------
def from_environment(requested: str) -> str:
    """``requested``, or for ``auto`` the ``SEQGEN_PRECISION`` override when it is set.

    Raises:
        ValueError: the variable holds something other than fp32 or bf16.
    """
    value = os.environ.get(ENVIRONMENT, "").strip().lower()
    if requested != "auto" or not value:
        return requested
    if value not in ("fp32", "bf16"):
        raise ValueError(f"{ENVIRONMENT} must be fp32 or bf16 (got {value!r})")
    return value


def choose_precision(requested: str, device: torch.device, *, model: torch.nn.Module,
                     batches: Sequence[Any] | Callable[[], Sequence[Any]] = ()
                     ) -> PrecisionChoice:
    """The autocast dtype for ``requested`` ("auto", "fp32", "bf16" or "fp16").

    Args:
        requested: explicit settings are obeyed (and ``SEQGEN_PRECISION`` stands for ``auto``
            when set); ``auto`` is fp16 on CUDA, and on a CPU bf16 only
            when the CPU has native bf16 and a timing of ``model`` on ``batches`` finds it at
            least ``MIN_SPEEDUP`` times faster than fp32 (the result is cached).
        device: where training runs.
        model: the model to time (a deep copy is timed; the model itself is not touched).
        batches: a few real training batches for the timing, or a function that makes them
            (called only when a timing is needed).
    """
    given = from_environment(requested)
    if given != "auto":
        if given not in DTYPES:
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16; got {given!r}")
        how = "set explicitly" if given == requested else f"set by {ENVIRONMENT}"
        return PrecisionChoice(DTYPES[given], given, how)
    if device.type == "cuda":
        return PrecisionChoice(torch.float16, "fp16", "CUDA autocast")
    if device.type != "cpu":
        return PrecisionChoice(None, "fp32", f"no autocast on {device.type}")
    if not native_bf16(cpu_flags()):
        return PrecisionChoice(None, "fp32", "CPU has no native bf16 (no avx512_bf16/amx_bf16)")
    def measure() -> dict[str, float] | None:
        found = batches() if callable(batches) else batches
        return time_steps(model, found, device) if found else None

    return _measured_choice(cache_key(model, device), measure)


def _measured_choice(key: str, measure: Callable[[], dict[str, float] | None], *,
                     what: str = "") -> PrecisionChoice:
    """bf16 if the cached (or else a new) timing finds it ``MIN_SPEEDUP`` times faster than
    fp32. A timing disturbed by other work (its rounds disagree by more than ``MAX_SPREAD``) is
    taken once more; if that one is disturbed too, the choice is fp32, and nothing is cached."""
    path = cache_path()
    entry = _read_cache(path).get(key)
    source = f"cached in {path}"
    if not isinstance(entry, dict) or "fp32_s" not in entry or "bf16_s" not in entry:
        seconds = measure()
        if seconds is not None and seconds.get("spread", 0.0) > MAX_SPREAD:
            seconds = measure()  # once more: the other work may have ended
        if seconds is None:
            return PrecisionChoice(None, "fp32", "no batch to measure bf16 on")
        if seconds.get("spread", 0.0) > MAX_SPREAD:
            return PrecisionChoice(None, "fp32", f"{what}timing disturbed by other work twice "
                                   f"(rounds {seconds['spread']:.0%} apart): fp32, the safe "
                                   "choice; not cached")
        entry = {"fp32_s": seconds["fp32"], "bf16_s": seconds["bf16"], "measured": time.time()}
        _write_cache(path, key, entry)
        source = f"measured now, saved in {path}"
    speedup = entry["fp32_s"] / max(entry["bf16_s"], 1e-12)
    if speedup >= MIN_SPEEDUP:
        return PrecisionChoice(torch.bfloat16, "bf16",
                               f"{what}{speedup:.2f}x faster than fp32 ({source})")
    return PrecisionChoice(None, "fp32", f"bf16 {what}was only {speedup:.2f}x the speed of fp32 "
                           f"({source})")


# ------------------------------------------------------------------------------------------------
def choose_inference_precision(requested: str, device: torch.device, *, model: torch.nn.Module,
                               decode: Callable[[], Any], what: str = "decoding"
                               ) -> PrecisionChoice:
    """The autocast dtype to decode in, by the same rule as training: ``auto`` is bf16 only on a
    CPU with native bf16 where timing ``decode()`` (a small search on the loaded model) in bf16
    beats fp32 by ``MIN_SPEEDUP``; cached per machine, torch and model shape. On other devices,
    and wherever unsure, fp32. ``SEQGEN_PRECISION`` (fp32 or bf16) stands for ``auto``, as in
    training. ``what`` names the work timed (a captioner's CNN is timed apart from its search)."""
    given = from_environment(requested)
    if given in ("fp32", "bf16"):
        how = "set explicitly" if given == requested else f"set by {ENVIRONMENT}"
        return PrecisionChoice(DTYPES[given], given, how)
    requested = given
    if requested != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16; got {requested!r}")
    if device.type != "cpu":
        return PrecisionChoice(None, "fp32", f"{what} in fp32 on {device.type}")
    if not native_bf16(cpu_flags()):
        return PrecisionChoice(None, "fp32", "CPU has no native bf16 (no avx512_bf16/amx_bf16)")
    return _measured_choice(f"{what} | " + cache_key(model, device),
                            lambda: _time_decoding(decode, device), what=f"{what} ")


def _time_decoding(decode: Callable[[], Any], device: torch.device, *, rounds: int = 3
                   ) -> dict[str, float]:
    """Fastest of ``rounds`` runs of ``decode()`` per precision, alternating, after a warm-up."""
    rng, py_rng = torch.get_rng_state(), random.getstate()
    best = {"fp32": math.inf, "bf16": math.inf}
    ratios = []
    try:
        with torch.no_grad():
            for round_ in range(rounds + 1):
                took = {}
                for name in best:
                    start = time.perf_counter()
                    with torch.autocast(device.type, dtype=DTYPES[name],
                                        enabled=DTYPES[name] is not None):
                        decode()
                    took[name] = time.perf_counter() - start
                if round_ > 0:
                    best = {name: min(best[name], took[name]) for name in best}
                    ratios.append(took["fp32"] / max(took["bf16"], 1e-12))
    finally:
        torch.set_rng_state(rng)
        random.setstate(py_rng)
    return {**best, "spread": max(ratios) / min(ratios) - 1}
