"""int8 models: weights stored as 8-bit integers with one scale per row (half the size of fp16),
and the Linear layers run as dynamically quantised int8 products on the CPU.

``seqgen export --int8`` writes such a checkpoint; loading dequantises the stored rows and then
quantises every ``nn.Linear`` again per output channel (``quantize_dynamic``), so activations stay
float and only the weights are 8-bit. Recurrent weights are stored as int8 too but run in float:
the decoder steps through them with the cell functions. Embeddings (and an output layer tied to
one) stay in half precision.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

FORMAT = "int8-rows"  # the checkpoint's "quantized" value
SCALE = "::int8_scale"  # suffix of the per-row scale stored beside each int8 weight


def quantize_rows(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every 2-D float weight (not an embedding, nor a tensor shared with one) as int8 rows with
    a float scale each: w ~= q * scale, |q| <= 127."""
    embeddings = {v.data_ptr() for k, v in weights.items() if "embed" in k}
    out = {}
    for key, value in weights.items():
        if (value.is_floating_point() and value.dim() == 2 and "embed" not in key
                and value.data_ptr() not in embeddings):
            rows = value.float()
            scale = rows.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (R,)
            out[key] = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[key + SCALE] = scale
        else:
            out[key] = value
    return out


def dequantize_rows(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """The float weights back from :func:`quantize_rows`' output."""
    out = {}
    for key, value in weights.items():
        if key.endswith(SCALE):
            continue
        scale = weights.get(key + SCALE)
        out[key] = value.float() * scale[:, None] if scale is not None else value
    return out


def quantize_linear_layers(model: nn.Module) -> nn.Module:
    """Replaces every ``nn.Linear`` by a dynamically quantised int8 one (CPU only)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch points eager-mode quantisation users to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, inplace=True)


def is_quantized(model: nn.Module) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in model.modules())
