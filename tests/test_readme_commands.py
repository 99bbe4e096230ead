"""The README's runnable commands run: every line of a fence opened with ```` ```bash runnable ````
is executed in a temporary folder, as a newcomer would type it, and must exit 0 with output.

Only cheap commands are marked runnable (a few seconds each: the bundled models, ``--help``, a
recipe's ``--dry-run``); trainings, data files the reader must bring and the server are plain
```` ```bash ```` fences. ``seqgen`` and ``python`` resolve to this checkout's code; ``recipes/``
and ``assets/`` are linked into the folder; ``photo.jpg`` is made here. Decoding precision is
pinned to fp32 so a fresh machine does not spend a one-off timing on the first model it loads.
The README's first fence is CI's contract (.ci/run installs "the way the README says" and runs
"the README's test command"), so its two commands are checked, not run.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\S*)[ \t]*(.*?)\n(.*?)^```", re.S | re.M)
INSTALL = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test,offline,serve]" ' \
          '&& python recipes/headlines.py'


def fences(text: str) -> list[tuple[str, str, str]]:
    """(language, the rest of the info string, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def runnable_commands(text: str) -> list[str]:
    """The lines of the ```bash runnable fences, without blank lines."""
    return [line.strip() for lang, info, body in fences(text)
            if lang == "bash" and "runnable" in info.split()
            for line in body.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------
def test_the_first_fence_is_ci_s_install_and_test_commands():
    text = README.read_text(encoding="utf-8")
    lang, info, body = fences(text)[0]
    assert (lang, info) == ("bash", "")
    assert [line.strip() for line in body.splitlines() if line.strip()] == [INSTALL, "pytest"]
    assert len(text.splitlines()) <= 200, "the README is for a first five minutes: 200 lines"
    assert "(RESULTS.md)" in text and (ROOT / "RESULTS.md").is_file()


def test_the_convention_finds_the_marked_fences_only():
    text = "```bash runnable\nseqgen a\n\nseqgen b\n```\n```bash\nseqgen c\n```\n```python\nx\n```\n"
    assert runnable_commands(text) == ["seqgen a", "seqgen b"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder laid out like the checkout's top (recipes/, assets/, photo.jpg) and an environment
    whose ``seqgen`` and ``python`` are this checkout's."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("recipes", "assets"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    Image.new("RGB", (64, 48), (200, 120, 40)).save(folder / "photo.jpg")
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    python = shlex.quote(sys.executable)  # a script, not a link: a venv is found by its path
    for name, line in (("python", f'exec {python} "$@"'), ("seqgen", f'exec {python} -c '
                       '"import sys; from seqgen.cli.main import main; sys.exit(main())" "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{line}\n")
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               SEQGEN_PRECISION="fp32")
    return folder, env


COMMANDS = runnable_commands(README.read_text(encoding="utf-8"))


def test_the_readme_marks_some_commands_runnable():
    assert any(c.startswith("seqgen translate") for c in COMMANDS)
    assert any(c.startswith("seqgen caption") for c in COMMANDS)
    assert any(c.startswith("seqgen generate") for c in COMMANDS)


@pytest.mark.slow  # each command is a seqgen or recipe subprocess
@pytest.mark.parametrize("command", COMMANDS, ids=[c.split("  #")[0].strip() for c in COMMANDS])
def test_a_runnable_readme_command_runs(command, workdir):
    folder, env = workdir
    done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert done.stdout.strip(), f"{command} printed nothing"
