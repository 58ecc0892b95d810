"""Automatic pytest markers, shared by test/conftest.py and training/tests/conftest.py.

``dds``: the test (or a fixture it uses) talks over DDS or starts ROS processes; ``slow``: it runs the
training pipeline, the demo, a launch file, colcon, a Dask cluster or another command line; ``unit``:
everything else (pure, in-process). A test may say so itself with ``@pytest.mark.<name>``; otherwise
it is classified by its module and the source of its function and fixtures, so new test files are
marked without edits. ``pytest -m unit`` runs the pure tests in seconds; ``make test`` runs all.
"""

from __future__ import annotations

import inspect
import re

import pytest

MARKERS = {
    "unit": "pure in-process tests (core, tensors, safety, session, GA, training units): seconds",
    "dds": "talks over DDS or starts ROS processes (rclpy, the node, ros2, launch)",
    "slow": "runs the training pipeline, the demo, a launch file, colcon, a Dask cluster or a command line",
}
SLOW_MODULES = {"test_pipeline", "test_demo", "test_launch", "test_package", "test_compute"}
DDS = re.compile(r"\brclpy\b|\bHarness\(|\bharness_factory\b|\bplanner_node\b|\bsim_node\b|\bros2\b|\blaunch_ros\b")
SLOW = re.compile(r"\bsubprocess\.(run|Popen|check_output|check_call)\b|\bPopen\(|\bcolcon\b")
_SOURCES: dict[object, str] = {}


def _source(func: object) -> str:
    if func not in _SOURCES:
        try:
            _SOURCES[func] = inspect.getsource(func)  # type: ignore[arg-type]
        except (OSError, TypeError):
            _SOURCES[func] = ""
    return _SOURCES[func]


def _code(item: pytest.Item) -> str:
    """The source of the test function, of the module's functions it calls, and of every fixture it
    uses (the project's, not pytest's own)."""
    function = getattr(item, "function", None)
    funcs = [function]
    module = getattr(item, "module", None)
    for name in getattr(getattr(function, "__code__", None), "co_names", ()):  # helpers one call deep
        obj = getattr(module, name, None)
        if inspect.isfunction(obj) and obj.__module__ == getattr(module, "__name__", None):
            funcs.append(obj)
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        funcs += [d.func for d in defs if d.baseid]  # pytest's built-in fixtures have no base id
    return "\n".join(_source(f) for f in funcs)


def mark_items(items: list[pytest.Item]) -> None:
    """Add ``unit``, ``dds`` and/or ``slow`` to every item that has none of them yet."""
    for item in items:
        if any(item.get_closest_marker(name) for name in MARKERS):
            continue
        code = _code(item)
        dds = "harness_factory" in getattr(item, "fixturenames", ()) or bool(DDS.search(code))
        module = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else ""
        slow = module in SLOW_MODULES or bool(SLOW.search(code))
        for name, on in (("dds", dds), ("slow", slow), ("unit", not (dds or slow))):
            if on:
                item.add_marker(getattr(pytest.mark, name))


def register(config: pytest.Config) -> None:
    """Register the markers unless pyproject.toml did (a run rooted elsewhere)."""
    known = {line.split(":")[0].strip() for line in config.getini("markers")}
    for name, text in MARKERS.items():
        if name not in known:
            config.addinivalue_line("markers", f"{name}: {text}")
