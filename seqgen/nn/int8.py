"""int8 models: weights stored as 8-bit integers with one scale per row (half the size of fp16),
and the Linear layers and the decoder's recurrent cells run as dynamically quantised int8
products on the CPU.

``seqgen export --int8`` writes such a checkpoint; loading dequantises the stored rows and then
quantises the decoder's ``nn.Linear`` layers again per output channel (``quantize_dynamic``): their
inputs are quantised on the fly; the encoder, which runs once per input, computes in float. The
decoder's step runs its LSTM/GRU cells on packed int8 weights (:class:`Int8Cells`); the one fused
pass over a prompt uses the dequantised weights.
Embeddings (and an output layer tied to one) stay in half precision.
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
    """Replaces the decoder's ``nn.Linear`` layers by dynamically quantised int8 ones, and gives
    every module with ``step_cells`` (the decoder) int8 cells for its RNN (CPU only)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    for module in model.modules():
        if hasattr(module, "step_cells") and isinstance(getattr(module, "rnn", None),
                                                        (nn.LSTM, nn.GRU)):
            module.step_cells = Int8Cells(module.rnn)
    # Only the decoder's products, which run at every step, become int8: an encoder runs once per
    # input, so int8 would save little there, and raw inputs such as CNN features are where 8-bit
    # activations are riskiest. (The encoder's weights are still stored as int8 rows.)
    target = getattr(model, "decoder", model)
    with warnings.catch_warnings():  # torch points eager-mode quantisation users to torchao
        warnings.simplefilter("ignore")
        quantize_dynamic(target, {nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    return model


def is_quantized(model: nn.Module) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in model.modules())


class Int8Cells:
    """An RNN's layers as int8 cells: ``cells(layer, x, hidden) -> hidden``, where hidden is h
    (GRU) or an (h, c) pair (LSTM), each (B, H). Weights are quantised per output row once;
    each call quantises its inputs on the fly (``quantized_*_cell_dynamic``)."""

    def __init__(self, rnn: nn.LSTM | nn.GRU) -> None:
        self.lstm = isinstance(rnn, nn.LSTM)
        self.layers = []
        for k in range(rnn.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{name}_l{k}").detach().float()
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            # the kernels take their biases from the packed weights; the bias arguments must be
            # zeros (passing the real ones there gives wrong gates)
            self.layers.append((_pack(w_ih, b_ih), _pack(w_hh, b_hh), torch.zeros_like(b_ih)))

    def __call__(self, layer: int, x: Tensor, hidden):
        w_ih, w_hh, zeros = self.layers[layer]
        if self.lstm:
            h, c = torch.ops.quantized.quantized_lstm_cell_dynamic(x, list(hidden), w_ih, w_hh,
                                                                   zeros, zeros)
            return h, c
        return torch.ops.quantized.quantized_gru_cell_dynamic(x, hidden, w_ih, w_hh, zeros, zeros)


def _pack(weight: Tensor, bias: Tensor):
    """A float (R, C) matrix as a packed int8 one (one scale per row) with its float bias."""
    scale = weight.abs().amax(dim=1).clamp(min=1e-12).double() / 127.0
    with warnings.catch_warnings():  # torch marks its quantised tensor factories as deprecated
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long),
                                       0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, bias)
