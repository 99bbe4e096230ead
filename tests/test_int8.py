"""int8 export: 8-bit rows with a scale each, Linear layers run as quantised products, float
activations; the tied output layer and embeddings stay in half precision."""
from __future__ import annotations

import torch

from seqgen.cli.main import main as cli
from seqgen.decoding.generation import GenerationConfig
from seqgen.io.checkpoint import load_checkpoint
from seqgen.nn.int8 import SCALE, dequantize_rows, is_quantized, quantize_rows
from seqgen.pipeline import Pipeline


def test_rows_round_trip_within_half_a_step():
    torch.manual_seed(0)
    embed = torch.randn(12, 6)
    weights = {"decoder.embed.weight": embed, "decoder.output.weight": embed,  # tied
               "decoder.combine.weight": torch.randn(5, 8) * 3, "decoder.combine.bias": torch.randn(5)}
    packed = quantize_rows(weights)
    assert packed["decoder.combine.weight"].dtype == torch.int8
    assert packed["decoder.embed.weight"] is embed and packed["decoder.output.weight"] is embed
    back = dequantize_rows(packed)
    scale = packed["decoder.combine.weight" + SCALE]
    error = (back["decoder.combine.weight"] - weights["decoder.combine.weight"]).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-6).all())
    assert set(back) == set(weights) and torch.equal(back["decoder.combine.bias"],
                                                     weights["decoder.combine.bias"])


def test_an_int8_export_loads_translates_and_stays_close(tiny_checkpoints, tmp_path, capsys):
    source = tiny_checkpoints["translation"]
    out = tmp_path / "int8.pt"
    assert cli(["export", "--ckpt", str(source), "--out", str(out), "--int8"]) == 0
    saved = load_checkpoint(out)
    assert saved["quantized"] == "int8-rows"
    assert any(v.dtype == torch.int8 for v in saved["model"].values())
    exact, small = Pipeline.load(source), Pipeline.load(out)
    assert is_quantized(small.loaded.model) and small.precision.name == "fp32"
    options = GenerationConfig(beam=2, max_len=5)
    assert len(small.predict(["Ein Hund .", "", "Ein Hund läuft ."], options)) == 3
    from seqgen.data.batch import Batch

    src = torch.tensor([[4, 5, 6, 2]])
    batch = Batch(src=src, src_lengths=torch.tensor([4]))
    with torch.no_grad():
        (s1, f1), (s2, f2) = exact.loaded.model.init_state(batch), small.loaded.model.init_state(batch)
        l1, _ = exact.loaded.model.step(f1, s1)
        l2, _ = small.loaded.model.step(f2, s2)
    assert torch.allclose(l1, l2, atol=0.05 * float(l1.abs().max()) + 1e-3)
    again = tmp_path / "back.pt"  # an int8 model exported again without --int8 is fp16
    assert cli(["export", "--ckpt", str(out), "--out", str(again)]) == 0
    assert load_checkpoint(again)["quantized"] is None
    assert cli(["translate", "--ckpt", str(again), "--max-len", "3", "Ein Hund ."]) == 0


def test_int8_cells_step_like_the_float_cells_and_are_used(tiny_checkpoints):
    from conftest import tiny_model

    from seqgen.nn.int8 import quantize_linear_layers

    for cell in ("lstm", "gru"):
        exact = tiny_model(cell=cell, layers=2, seed=5)
        small = quantize_linear_layers(tiny_model(cell=cell, layers=2, seed=5))
        assert small.decoder.step_cells is not None
        tokens = torch.tensor([4, 7])
        state_exact = exact.decoder.init_state(batch_size=2)
        state_small = small.decoder.init_state(batch_size=2)
        with torch.no_grad():
            for _ in range(3):
                l1, state_exact = exact.step(tokens, state_exact)
                l2, state_small = small.step(tokens, state_small)
                torch.testing.assert_close(l2, l1, atol=0.05 * float(l1.abs().max()) + 1e-3,
                                           rtol=0)
            calls = []
            real = small.decoder.step_cells
            small.decoder.step_cells = lambda *a: calls.append(a[0]) or real(*a)
            small.step(tokens, state_small)
        assert calls == [0, 1]  # both layers went through the int8 kernels


def test_only_the_decoder_runs_int8_products_the_encoder_stays_float():
    from conftest import tiny_model
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from seqgen.nn.int8 import quantize_linear_layers

    model = quantize_linear_layers(tiny_model(encoder="features", attention="general", seed=3))
    assert type(model.encoder.proj) is torch.nn.Linear  # raw CNN features keep float products
    assert isinstance(model.decoder.output, DynamicLinear) and is_quantized(model)
