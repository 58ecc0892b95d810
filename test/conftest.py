"""Test set-up: DDS stays on loopback, on a domain of this run's own."""

import os
import sys

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 10))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI runs a fixed, reproducible set of examples; local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from pytest_markers import mark_items, register  # noqa: E402

from plan_ga_ros.contract import ModelSpec  # noqa: E402


def pytest_configure(config):
    register(config)


def pytest_collection_modifyitems(config, items):
    """unit / dds / slow markers for every test (see pytest_markers.py): ``pytest -m unit``."""
    mark_items(items)


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec()


@pytest.fixture
def models(tmp_path, spec):
    """Paths of small real contract models built for this test."""
    import onnx_models as om

    class Models:
        go_to_goal = om.go_to_goal(str(tmp_path / "go_to_goal.onnx"), spec)
        forward = om.constant(str(tmp_path / "forward.onnx"), (0.4, 0.0, 0.0), spec)
        nan = om.constant(str(tmp_path / "nan.onnx"), (0, 0, 0), spec, value=float("nan"))
        wrong_output = om.wrong_output(str(tmp_path / "wrong_output.onnx"), spec)
        wrong_names = om.wrong_input_names(str(tmp_path / "wrong_names.onnx"), spec)
        no_metadata = om.go_to_goal(str(tmp_path / "no_meta.onnx"), spec, metadata=False)
        wrong_window = om.wrong_window(str(tmp_path / "wrong_window.onnx"), spec)

    return Models


@pytest.fixture
def harness_factory():
    from harness import Harness

    made = []

    def make(params, **kw):
        h = Harness(params, **kw)
        made.append(h)
        return h

    yield make
    errors = [h.spin_error for h in made if h.spin_error]
    for h in made:
        h.close()
    assert not errors, "a callback raised inside the executor:\n" + "\n".join(errors)
