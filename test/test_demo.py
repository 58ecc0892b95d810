"""The README's demo, shortened: simulator + planner as separate processes over DDS on loopback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx_models as om

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "planner.onnx"


def run_demo(tmp_path, *extra):
    env = dict(os.environ, ROS_DOMAIN_ID=str(int(os.environ["ROS_DOMAIN_ID"]) + 120))
    exe = Path(sys.executable).with_name("plan_ga_demo")
    return subprocess.run([str(exe), "--out-dir", str(tmp_path), *extra], env=env, capture_output=True, text=True,
                          timeout=300)


def test_demo_two_short_worlds(tmp_path):
    model = []
    if not SHIPPED.exists():  # before the trained model ships: an obstacle-blind test model
        model = ["--model", om.go_to_goal(str(tmp_path / "go_to_goal.onnx"))]
    out = run_demo(tmp_path, "--episodes", "2", "--episode-timeout", "25", *model)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[2/2]" in out.stdout and "success" in out.stdout
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["summary"]["episodes"] == 2
    assert report["summary"]["collisions"] == 0
    assert 15.0 <= report["summary"]["planner_achieved_rate_hz"] <= 21.0
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    if not model:
        assert report["summary"]["success_rate"] >= 0.5, out.stdout


def test_demo_fails_when_the_planner_has_no_model(tmp_path):
    out = run_demo(tmp_path, "--episodes", "1", "--model", str(tmp_path / "missing.onnx"))
    assert out.returncode == 1
    assert "no model" in out.stderr or "planner node failed" in out.stderr
