"""The task registry, proved by a task that lives only in tests/ (``reverse_task.py``): it is
found (registered in code, or through the ``seqgen.tasks`` entry-point group), trained by the
shared runner, and run through Pipeline, ``seqgen predict`` and the server's JSON API, with no
change under seqgen/; it can also be trained self-critically."""
from __future__ import annotations

import sys

import pytest
import reverse_task
import torch

from seqgen.cli.main import main as cli
from seqgen.pipeline import Pipeline
from seqgen.tasks import registry
from seqgen.training.runner import run


def test_built_in_tasks_are_registered_and_unknown_names_are_one_line():
    assert registry.names()[:3] == ["headlines", "translation", "captioning"]
    with pytest.raises(ValueError, match="no task named 'nope'; registered: headlines"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(reverse_task.Reverse())  # a second object under a taken name


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    """A package that declares ``[seqgen.tasks]`` in its metadata adds its task on import."""
    dist = tmp_path / "reverse_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: reverse-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[seqgen.tasks]\nreverse = reverse_task:TASK\n"
                                           "broken = no_such_module:TASK\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.unregister("reverse")
    monkeypatch.setattr(registry, "_discovered", False)
    assert "reverse" in registry.names()  # the broken plugin is logged and skipped
    assert registry.get("reverse") is reverse_task.TASK


@pytest.fixture(scope="module")
def reverser(tmp_path_factory) -> str:
    """The test task trained for a few seconds by the runner every recipe uses."""
    registry.register(reverse_task.TASK, replace=True)
    run_dir = tmp_path_factory.mktemp("reverse")
    assert run(reverse_task.TASK, argv=["--run-dir", str(run_dir), "--quiet", "--no-resume"]) == 0
    return str(run_dir / "model.pt")


def test_the_test_task_runs_through_pipeline_cli_and_server(reverser, capsys):
    from fastapi.testclient import TestClient

    from seqgen.serve import create_app

    texts = ["red cat sun", "dog moon", ""]
    pipe = Pipeline.load(reverser)
    assert pipe.task == "reverse" and pipe.generation_config().max_len == 12
    results = pipe.predict(texts)
    assert len(results) == 3 and all(r.ok for r in results)
    assert cli(["predict", "--model", reverser, *texts]) == 0
    assert capsys.readouterr().out.splitlines() == [r.text for r in results]
    with TestClient(create_app({"reverse": reverser}), base_url="http://127.0.0.1") as client:
        [model] = client.get("/api/models").json()["models"]
        assert model["task"] == "reverse" and model["panel"]["title"] == "Reverser"
        served = client.post("/api/reverse", json={"inputs": texts[:2], "attention": True})
        assert [r["text"] for r in served.json()["results"]] == [r.text for r in results[:2]]
        assert served.json()["results"][0]["attention"]


def test_a_model_of_an_unregistered_task_is_a_one_line_error(reverser, monkeypatch):
    monkeypatch.setattr(registry, "_tasks", {k: v for k, v in registry._tasks.items()
                                             if k != "reverse"})
    with pytest.raises(ValueError, match="task 'reverse', which is not registered"):
        Pipeline.load(reverser)


def test_the_test_task_trains_self_critically(reverser):
    """Its inputs are its own fields: the objective samples, rewards and repeats them all."""
    from seqgen.io.loaded import LoadedModel
    from seqgen.training.self_critical import SelfCritical, SelfCriticalConfig

    loaded = LoadedModel.from_file(reverser)
    data = reverse_task.ReverseData(reverse_task.ReverseDataConfig(examples=40), loaded.tgt_vocab)
    batch = data.make_batch(range(4))
    batch.ids = torch.arange(4)
    batch.extra = {"weight": torch.ones(4)}  # a task-defined tensor travels with the rows

    def reward(ids, samples):  # share of positions that match the reversed source
        wanted = [data.train[i][::-1] for i in ids]
        return [sum(a == b for a, b in zip(s, w)) / max(len(w), 1) for s, w in zip(samples, wanted)]

    model = loaded.model.train()
    loss, tokens = SelfCritical(reward, SelfCriticalConfig(samples=3, max_len=8))(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and tokens > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_seqgen_train_runs_a_task_without_a_recipe_file(tmp_path):
    from seqgen.cli.main import main

    registry.register(reverse_task.TASK, replace=True)
    code = main(["train", "reverse", "--dry-run", "--quiet", "--run-dir", str(tmp_path / "r")])
    assert code == 0 and (tmp_path / "r" / "model.pt").is_file()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
