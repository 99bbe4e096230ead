"""The wheel holds every package under seqgen/ (each built-in task's included, found rather than
listed), the bundled models and data, the recipes and the page, so a plain ``pip install`` gives
everything the README shows. Built with the installed hatchling (the ``test`` extra), without a
package index."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                                reason="building the wheel needs hatchling (the test extra)")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=300)
    [wheel] = out.glob("seqgen-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_package_and_every_task(wheel_names):
    packages = sorted(p.parent.relative_to(ROOT).as_posix()
                      for p in (ROOT / "seqgen").rglob("__init__.py")
                      if "__pycache__" not in p.parts)
    assert "seqgen/tasks/summarization" in packages and len(packages) > 10
    missing = [p for p in packages if f"{p}/__init__.py" not in wheel_names]
    assert not missing, f"packages missing from the wheel: {missing}"
    tasks = [p.parent.name for p in (ROOT / "seqgen" / "tasks").glob("*/task.py")]
    assert len(tasks) >= 4
    assert all(f"seqgen/tasks/{t}/task.py" in wheel_names for t in tasks)


def test_the_wheel_carries_models_data_recipes_and_the_page(wheel_names):
    for path in (ROOT / "assets" / "models").glob("*.pt"):
        assert f"seqgen/assets/models/{path.name}" in wheel_names
    for path in (ROOT / "recipes").glob("*.py"):
        assert f"seqgen/recipes/{path.name}" in wheel_names
    assert any(n.startswith("seqgen/assets/data/ag_news/") for n in wheel_names)
    assert {"seqgen/serve/static/index.html", "seqgen/serve/static/app.js"} <= wheel_names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in wheel_names)
