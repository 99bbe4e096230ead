"""DDP on CPU: two gloo processes on 127.0.0.1 train one tiny model through ``seqgen.training.trainer.Trainer``;
their weights must stay identical (averaged gradients) while they read disjoint shards of the plan,
also under a time budget when their clocks disagree (all follow rank 0's), and weights that differ
at the end are caught."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

pytestmark = pytest.mark.slow  # every test launches two gloo processes

ROOT = Path(__file__).resolve().parents[1]
N_BATCHES = 8
TIMEOUT = 120

WORKER = r'''
"""One rank: the same tiny headline model on every rank, a plan of 8 batches, 4 steps each."""
import json, os, sys
from pathlib import Path

import torch

from seqgen.data.batch import Batch, target_pair
from seqgen.nn.decoder import DecoderConfig
from seqgen.nn.model import EncoderDecoder, ModelConfig
from seqgen.training.trainer import TrainConfig, Trainer

out, n_batches = Path(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(1)


class Data:
    """Batch i holds example rows 2i and 2i+1; each rank logs which batches it was asked for."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.examples = [torch.randint(4, 12, (int(n),), generator=g).tolist()
                         for n in torch.randint(3, 9, (2 * n_batches,), generator=g)]
        self.seen = []

    def train_plan(self, epoch):
        order = torch.randperm(n_batches, generator=torch.Generator().manual_seed(epoch)).tolist()
        return [[2 * i, 2 * i + 1] for i in order]

    def make_batch(self, indices):
        self.seen.append(list(indices))
        tgt_in, tgt_out = target_pair([self.examples[i] for i in indices])
        return Batch(tgt_in=tgt_in, tgt_out=tgt_out)

    def val_batches(self):
        tgt_in, tgt_out = target_pair(self.examples[:2])
        yield Batch(tgt_in=tgt_in, tgt_out=tgt_out)


torch.manual_seed(0)
model = EncoderDecoder(ModelConfig(decoder=DecoderConfig(emb_dim=6, hidden_dim=8)),
                       src_vocab_size=12, tgt_vocab_size=12)
initial = {k: v.clone() for k, v in model.state_dict().items()}
data = Data()
config = TrainConfig(lr=3e-2, max_epochs=1, warmup_steps=0, eval_every=0, precision="fp32",
                     device="cpu", seed=1)
trainer = Trainer(model, data, config)
state = trainer.fit()
rank = trainer.rank
torch.save({"weights": model.state_dict(), "initial": initial}, out / f"rank{rank}.pt")
(out / f"rank{rank}.json").write_text(json.dumps(
    {"seen": data.seen, "plan": data.train_plan(0), "world": trainer.world, "step": state.step}))
torch.distributed.destroy_process_group()
'''


CLOCK_WORKER = WORKER.split("torch.manual_seed(0)\nmodel")[0] + r'''
import time
from types import SimpleNamespace

import seqgen.training.trainer
from seqgen.training.distributed import ReplicasDiverged

rank = int(os.environ["RANK"])
if rank == 1:  # this rank's clock runs 1.5 times as fast: its own schedule would decay sooner
    real = time.perf_counter
    seqgen.training.trainer.time = SimpleNamespace(perf_counter=lambda: 1.5 * real(), monotonic=time.monotonic)


class LearningRates:
    def __init__(self):
        self.seen = []

    def on_step_end(self, trainer, **_):
        self.seen.append(trainer.optimizer.param_groups[0]["lr"])


torch.manual_seed(0)
model = EncoderDecoder(ModelConfig(decoder=DecoderConfig(emb_dim=6, hidden_dim=8)),
                       src_vocab_size=12, tgt_vocab_size=12)
lrs = LearningRates()
config = TrainConfig(lr=3e-2, max_epochs=1_000_000, max_minutes=0.01, warmup_steps=0,
                     eval_every=1_000_000, precision="fp32", device="cpu", seed=1)
trainer = Trainer(model, Data(), config, callbacks=[lrs])
state = trainer.fit()  # the replicas' checksums agree, or this raises
torch.save(model.state_dict(), out / f"rank{rank}.pt")
with torch.no_grad():
    if rank == 1:
        model.decoder.output.weight[0, 0] += 1e-3
try:
    trainer.check_replicas()
    caught = ""
except ReplicasDiverged as err:
    caught = str(err)
(out / f"rank{rank}.json").write_text(json.dumps(
    {"lrs": lrs.seen, "step": state.step, "elapsed": state.elapsed, "caught": caught}))
torch.distributed.destroy_process_group()
'''


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(tmp_path: Path, world: int = 2, worker: str = WORKER
           ) -> list[subprocess.CompletedProcess | None]:
    script = tmp_path / "worker.py"
    script.write_text(worker)
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path), str(N_BATCHES)],
                                      env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=TIMEOUT)
            errors.append(err)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        pytest.fail(f"the two DDP processes did not finish within {TIMEOUT} s")
    for proc, err in zip(procs, errors):
        assert proc.returncode == 0, err[-2000:]
    return procs


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with gloo is not available")
def test_two_gloo_ranks_keep_identical_weights_and_read_disjoint_shards(tmp_path):
    launch(tmp_path)
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    ckpts = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    plan = logs[0]["plan"]
    assert logs[1]["plan"] == plan and all(log["world"] == 2 for log in logs)
    # sharding: rank r gets plan[r::2], each rank half of the steps, together the whole plan
    assert logs[0]["seen"] == plan[0::2] and logs[1]["seen"] == plan[1::2]
    assert logs[0]["step"] == logs[1]["step"] == N_BATCHES // 2
    seen = [tuple(b) for log in logs for b in log["seen"]]
    assert len(seen) == len(set(seen)) == N_BATCHES
    # gradient averaging: different batches, same weights after every step
    for name, weight in ckpts[0]["weights"].items():
        assert torch.equal(weight, ckpts[1]["weights"][name]), name
    assert torch.equal(ckpts[0]["initial"]["decoder.output.weight"],
                       ckpts[1]["initial"]["decoder.output.weight"])
    assert not torch.equal(ckpts[0]["weights"]["decoder.output.weight"],
                           ckpts[0]["initial"]["decoder.output.weight"])  # it did train


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with gloo is not available")
def test_under_a_time_budget_every_rank_follows_rank_0s_clock(tmp_path):
    launch(tmp_path, worker=CLOCK_WORKER)
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    weights = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert logs[0]["step"] == logs[1]["step"] == len(logs[0]["lrs"]) > 1
    assert logs[0]["lrs"] == logs[1]["lrs"]  # one schedule, though rank 1's clock runs fast
    assert logs[0]["lrs"][-1] < logs[0]["lrs"][0]  # and it did follow the clock
    assert logs[0]["elapsed"] == logs[1]["elapsed"]
    for name, weight in weights[0].items():
        assert torch.equal(weight, weights[1][name]), name
    for log in logs:  # a replica that drifted is caught, on every rank, in one line
        assert log["caught"].startswith("the replicas' weights differ at the end of training "
                                        "(rank 1 vs rank 0, first in decoder.output.weight")
        assert "\n" not in log["caught"]
