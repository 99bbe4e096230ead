"""The task registry: every generator seqgen knows, by name.

The built-in tasks are packages of ``seqgen.tasks``; any installed package can add one through
the entry-point group ``seqgen.tasks`` (the usual plugin convention), and code can add one at run
time with :func:`register`:

    # pyproject.toml of another package
    [project.entry-points."seqgen.tasks"]
    reverse = "mypackage.reverse:TASK"

    from seqgen.tasks import registry
    registry.register(MyTask())

Everything generic (the runner, :class:`seqgen.pipeline.Pipeline`, the CLI, the server) loops over
this registry; outside ``seqgen/tasks/`` no module names a task.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import Task

ENTRY_POINT_GROUP = "seqgen.tasks"
log = logging.getLogger(__name__)
_tasks: dict[str, "Task"] = {}
_discovered = False


def register(task: "Task", *, replace: bool = False) -> "Task":
    """Adds ``task`` under ``task.name``; a second task of the same name is an error unless
    ``replace`` (tests re-register theirs). The built-in tasks are loaded first, so they keep
    their places at the head of every listing."""
    _discover()
    if not task.name or not task.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a task needs a name of letters, digits, - or _ (got {task.name!r})")
    if task.name in _tasks and not replace and _tasks[task.name] is not task:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _tasks[task.name] = task
    return task


def unregister(name: str) -> None:
    """Removes a task added at run time (tests clean up with it)."""
    _tasks.pop(name, None)


def _discover() -> None:
    """Loads the built-in tasks, then those other packages declare (a broken plugin is logged
    and skipped: it must not take the built-in tasks down with it)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for task in sorted(_built_in(), key=lambda t: (t.position, t.name)):
        register(task)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(point.load())
        except Exception as err:  # noqa: BLE001 - someone else's package
            log.warning("task plugin %s (%s) could not be loaded: %s", point.name, point.value,
                        err)


def _built_in() -> list["Task"]:
    """The ``TASK`` of every package under ``seqgen/tasks/`` that has a ``task`` module: a new
    built-in task is its own package, and nothing here changes for it."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.ispkg and importlib.util.find_spec(f"{__package__}.{info.name}.task"):
            found.append(importlib.import_module(f"{__package__}.{info.name}.task").TASK)
    return found


def names() -> list[str]:
    """Registered task names: the built-in ones first, then the others as they were added."""
    _discover()
    return list(_tasks)


def tasks() -> list["Task"]:
    _discover()
    return list(_tasks.values())


def get(name: str) -> "Task":
    """The task called ``name``; an unknown name is a ValueError that lists the known ones."""
    _discover()
    if name not in _tasks:
        raise ValueError(f"no task named {name!r}; registered: {', '.join(_tasks) or 'none'}")
    return _tasks[name]
