"""Shared helpers for the benchmarks: stats, the shipped model, machine info, results file."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
MODEL = REPO / "models" / "planner.onnx"
CHECKPOINT = REPO / "models" / "planner.pt"


def stats(ms: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "n": int(a.size)}


def machine() -> dict[str, str | int]:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count() or 0, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def save(section: str, data: dict) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = data
    results["machine"] = machine()
    RESULTS.write_text(json.dumps(results, indent=1))


def loopback_env() -> None:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 10))
