"""Precision by measurement: native bf16 flag first, then a cached timing of the model itself."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model

from seqgen import precision
from seqgen.data.batch import Batch
from seqgen.precision import choose_precision, describe_cpu, native_bf16

CPU = torch.device("cpu")


@pytest.fixture
def fake_cpu(tmp_path, monkeypatch):
    """A CPU whose flags and timing the test sets; the cache goes to a temporary folder, and the
    suite's SEQGEN_PRECISION=fp32 is lifted (these tests are about what ``auto`` chooses)."""
    monkeypatch.setenv("SEQGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQGEN_PRECISION", raising=False)
    calls = []

    class Fake:
        flags: set[str] = set()
        seconds = {"fp32": 1.0, "bf16": 1.0}

    def fake_timing(model, batches, device, **_):
        calls.append(len(batches))
        return dict(Fake.seconds)

    monkeypatch.setattr(precision, "cpu_flags", lambda: set(Fake.flags))
    monkeypatch.setattr(precision, "time_steps", fake_timing)
    Fake.calls = calls
    return Fake


def batches() -> list[Batch]:
    tokens = torch.randint(4, 12, (3, 6))
    return [Batch(tgt_in=tokens, tgt_out=tokens)]


def test_without_native_bf16_auto_is_fp32_and_nothing_is_timed(fake_cpu):
    fake_cpu.flags = {"avx512f", "avx512bw"}  # AVX-512 alone: bf16 would only be emulated
    made = []
    choice = choose_precision("auto", CPU, model=tiny_model(),
                              batches=lambda: made.append(1) or batches())
    assert made == []  # no batch is even built
    assert choice.dtype is None and choice.name == "fp32"
    assert "no native bf16" in choice.note and fake_cpu.calls == []


def test_native_bf16_that_is_slower_stays_fp32(fake_cpu):
    fake_cpu.flags = {"avx512_bf16", "bf16"}  # x86 and aarch64 spellings
    fake_cpu.seconds = {"fp32": 1.0, "bf16": 1.3}
    choice = choose_precision("auto", CPU, model=tiny_model(), batches=batches())
    assert choice.name == "fp32" and fake_cpu.calls == [1]


def test_native_bf16_that_is_barely_faster_stays_fp32(fake_cpu):
    fake_cpu.flags = {"amx_bf16", "bf16"}
    fake_cpu.seconds = {"fp32": 1.0, "bf16": 0.95}
    assert choose_precision("auto", CPU, model=tiny_model(), batches=batches()).name == "fp32"


def test_native_bf16_that_is_faster_is_chosen_and_cached(fake_cpu):
    fake_cpu.flags = {"avx512_bf16", "bf16"}
    fake_cpu.seconds = {"fp32": 1.4, "bf16": 1.0}
    first = choose_precision("auto", CPU, model=tiny_model(), batches=batches())
    assert first.dtype is torch.bfloat16 and "1.40x faster" in first.note
    cache = json.loads(precision.cache_path().read_text())
    assert len(cache) == 1 and "torch" in next(iter(cache))
    fake_cpu.seconds = {"fp32": 1.0, "bf16": 9.0}  # would say fp32 if it were measured again
    again = choose_precision("auto", CPU, model=tiny_model(seed=3), batches=batches())
    assert again.name == "bf16" and "cached" in again.note and fake_cpu.calls == [1]
    other = choose_precision("auto", CPU, model=tiny_model(layers=2), batches=batches())
    assert other.name == "fp32" and len(fake_cpu.calls) == 2  # another shape is measured anew


def test_a_measurement_disturbed_by_other_work_twice_is_fp32_and_not_cached(fake_cpu):
    fake_cpu.flags = {"avx512_bf16", "bf16"}
    fake_cpu.seconds = {"fp32": 2.0, "bf16": 1.0, "spread": 0.6}  # bf16 "faster", but noisy
    choice = choose_precision("auto", CPU, model=tiny_model(), batches=batches())
    assert choice.name == "fp32" and "disturbed" in choice.note and "not cached" in choice.note
    assert fake_cpu.calls == [1, 1] and not precision.cache_path().exists()


def test_a_disturbed_measurement_is_taken_again_and_the_calm_one_decides(fake_cpu, monkeypatch):
    fake_cpu.flags = {"avx512_bf16", "bf16"}
    spreads = [0.6, 0.01]
    monkeypatch.setattr(precision, "time_steps", lambda *a, **k: {"fp32": 2.0, "bf16": 1.0,
                                                                  "spread": spreads.pop(0)})
    choice = choose_precision("auto", CPU, model=tiny_model(), batches=batches())
    assert choice.name == "bf16" and spreads == [] and precision.cache_path().exists()


def test_the_environment_override_means_the_same_for_training_and_decoding(fake_cpu,
                                                                           monkeypatch):
    fake_cpu.flags = {"avx512_bf16"}
    monkeypatch.setenv("SEQGEN_PRECISION", "bf16")
    train = choose_precision("auto", CPU, model=tiny_model(), batches=batches())
    decode = precision.choose_inference_precision("auto", CPU, model=tiny_model(),
                                                  decode=lambda: None)
    assert train.name == decode.name == "bf16" and fake_cpu.calls == []
    assert train.note == decode.note == "set by SEQGEN_PRECISION"
    assert choose_precision("fp32", CPU, model=tiny_model()).name == "fp32"  # explicit wins
    monkeypatch.setenv("SEQGEN_PRECISION", "fp8")
    with pytest.raises(ValueError, match="SEQGEN_PRECISION must be fp32 or bf16"):
        choose_precision("auto", CPU, model=tiny_model(), batches=batches())


def test_a_damaged_cache_is_measured_again(fake_cpu):
    fake_cpu.flags = {"avx512_bf16", "bf16"}
    precision.cache_path().parent.mkdir(parents=True)
    precision.cache_path().write_text("{not json")
    assert choose_precision("auto", CPU, model=tiny_model(), batches=batches()).name == "fp32"
    assert fake_cpu.calls == [1] and json.loads(precision.cache_path().read_text())


@pytest.mark.parametrize("requested,dtype", [("fp32", None), ("bf16", torch.bfloat16),
                                             ("fp16", torch.float16)])
def test_explicit_settings_are_obeyed_without_timing(fake_cpu, requested, dtype):
    fake_cpu.flags = {"avx512_bf16"}
    choice = choose_precision(requested, CPU, model=tiny_model(), batches=batches())
    assert choice.dtype == dtype and choice.name == requested and fake_cpu.calls == []


def test_cuda_auto_is_fp16(fake_cpu):
    choice = choose_precision("auto", torch.device("cuda"), model=tiny_model(), batches=batches())
    assert choice.dtype is torch.float16 and fake_cpu.calls == []


def test_flags_by_architecture():
    assert native_bf16({"avx512_bf16"}, "x86_64") and native_bf16({"amx_bf16"}, "AMD64")
    assert not native_bf16({"avx512f", "avx512bw"}, "x86_64")
    assert native_bf16({"bf16", "asimd"}, "aarch64") and not native_bf16({"asimd"}, "aarch64")
    assert not native_bf16({"bf16"}, "riscv64")
    info = describe_cpu()
    assert info["threads"] == torch.get_num_threads() and isinstance(info["flags"], list)


def test_real_timing_leaves_model_and_rng_untouched():
    model = tiny_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = batches()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    seconds = precision.time_steps(model, data, CPU, rounds=1)
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert seconds["fp32"] > 0 and seconds["bf16"] > 0
    assert all(p.grad is None for p in model.parameters())


def test_trainer_reports_its_choice(fake_cpu, tmp_path):
    from seqgen.training.trainer import TrainConfig, Trainer

    fake_cpu.flags = {"avx512_bf16", "bf16"}
    fake_cpu.seconds = {"fp32": 2.0, "bf16": 1.0}

    class Data:
        def train_plan(self, epoch):
            return [[0], [1]]

        def make_batch(self, indices):
            return batches()[0]

        def val_batches(self):
            return iter(())

    trainer = Trainer(tiny_model(), Data(), TrainConfig(device="cpu"))
    assert trainer.precision == "bf16" and trainer.amp_dtype is torch.bfloat16
    assert "2.00x faster" in trainer.precision_note and fake_cpu.calls == [2]


def test_a_resumed_auto_run_keeps_the_precision_it_chose(fake_cpu, tmp_path, capsys):
    """The choice is recorded (trainer state and config.json) and a resume keeps it, even where
    a new timing would now choose otherwise; nothing is timed again."""
    from seqgen.io.checkpoint import load_checkpoint
    from seqgen.training.runner import run

    fake_cpu.flags = {"avx512_bf16", "bf16"}
    fake_cpu.seconds = {"fp32": 2.0, "bf16": 1.0}
    run_dir = tmp_path / "run"
    tiny = ["--run-dir", str(run_dir), "--quiet", "--data.limit=64", "--data.val_fraction=0.1",
            "--model.decoder.hidden_dim=16", "--model.decoder.emb_dim=8", "--train.eval_every=2",
            f"--data.cache_dir={tmp_path / 'tokens'}"]
    assert run("headlines", argv=[*tiny, "--train.max_steps=2"]) == 0
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["precision"] == "bf16"
    assert json.loads((run_dir / "config.json").read_text())["train"]["precision"] == "bf16"
    assert len(fake_cpu.calls) == 1  # timed once, when the run started
    precision.cache_path().unlink()  # a new timing would find bf16 slower now
    fake_cpu.seconds = {"fp32": 1.0, "bf16": 2.0}
    assert run("headlines", argv=[*tiny, "--train.max_steps=4"]) == 0
    assert len(fake_cpu.calls) == 1  # not timed again
    assert load_checkpoint(run_dir / "last.pt")["trainer"]["precision"] == "bf16"
    assert "precision bf16: chosen when the run started, kept on resume" in capsys.readouterr().err


# -- decoding -----------------------------------------------------------------------------------
def test_decoding_precision_follows_the_same_rule(fake_cpu, monkeypatch):
    monkeypatch.delenv("SEQGEN_PRECISION", raising=False)
    timed = []
    monkeypatch.setattr(precision, "_time_decoding",
                        lambda decode, device: timed.append(1) or dict(fake_cpu.seconds, spread=0))
    decode = lambda: None  # noqa: E731
    fake_cpu.flags = {"avx512f"}
    assert precision.choose_inference_precision("auto", CPU, model=tiny_model(),
                                                decode=decode).name == "fp32"
    assert timed == []
    fake_cpu.flags = {"avx512_bf16"}
    fake_cpu.seconds = {"fp32": 2.0, "bf16": 1.0}
    first = precision.choose_inference_precision("auto", CPU, model=tiny_model(), decode=decode)
    again = precision.choose_inference_precision("auto", CPU, model=tiny_model(), decode=decode)
    assert first.dtype == torch.bfloat16 and again.dtype == torch.bfloat16 and timed == [1]
    assert "2.00x" in first.note and "cached" in again.note


def test_decoding_precision_can_be_forced(monkeypatch):
    monkeypatch.setenv("SEQGEN_PRECISION", "fp32")
    assert precision.choose_inference_precision("auto", CPU, model=tiny_model(),
                                                decode=lambda: None).name == "fp32"
    assert precision.choose_inference_precision("bf16", CPU, model=tiny_model(),
                                                decode=lambda: None).name == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        precision.choose_inference_precision("fp8", CPU, model=tiny_model(), decode=lambda: None)


def test_a_pipeline_measures_once_and_decodes_in_what_it_chose(tiny_checkpoints, fake_cpu,
                                                               monkeypatch):
    from seqgen.decoding.generation import GenerationConfig
    from seqgen.pipeline import Pipeline

    monkeypatch.delenv("SEQGEN_PRECISION", raising=False)
    fake_cpu.flags = {"avx512_bf16"}
    seen = []
    real = precision._time_decoding

    def timing(decode, device):
        seen.append(1)
        return real(decode, device)  # really runs the probe search in both precisions

    monkeypatch.setattr(precision, "_time_decoding", timing)
    pipe = Pipeline.load(tiny_checkpoints["translation"])
    results = pipe.predict(["Ein Hund ."], GenerationConfig(beam=2, max_len=4))
    # one timing (two when other work disturbed the first), then never again for this model
    assert results[0].outputs and seen in ([1], [1, 1])
    timed = len(seen)
    pipe.predict(["Zwei Hunde ."], GenerationConfig(beam=2, max_len=4))
    assert len(seen) == timed and pipe.precision.name in ("fp32", "bf16")
