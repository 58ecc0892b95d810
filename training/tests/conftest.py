import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test"))
from pytest_markers import mark_items, register  # noqa: E402


def pytest_configure(config):
    register(config)


def pytest_collection_modifyitems(config, items):
    """unit / dds / slow markers, as in test/conftest.py (``pytest -m unit``)."""
    mark_items(items)
