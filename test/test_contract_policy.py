"""Model contract, metadata, ONNX Runtime policy loading and the import boundary of the core."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from plan_ga_ros.contract import METADATA_KEY, ContractError, ModelSpec
from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.policy import OnnxPolicy, PolicyError, SessionConfig, load_policy, probe_feed
from plan_ga_ros.session import PlannerSession, StopReason
from plan_ga_ros.tensors import Grid


def test_spec_json_round_trip_and_schema_check():
    spec = ModelSpec(inflation_decay=4.5, training_data_hash="abc", git_commit="123")
    assert ModelSpec.from_json(spec.to_json()) == spec
    bad = json.loads(spec.to_json())
    bad["schema_version"] = 99
    with pytest.raises(ContractError, match="schema_version"):
        ModelSpec.from_json(json.dumps(bad))
    with pytest.raises(ContractError):
        ModelSpec.from_json("{not json")


def test_policy_runs_batch_1_and_8(models, spec):
    policy = OnnxPolicy(models.go_to_goal)
    assert policy.has_metadata and policy.spec == spec
    assert policy.run(probe_feed(spec, 1)).shape == (1, 60)
    assert policy.run(probe_feed(spec, 8)).shape == (8, 60)
    assert policy.providers == ("CPUExecutionProvider",)


def test_model_without_metadata_uses_fallback(models):
    fallback = ModelSpec(goal_clip_distance=1.5)
    policy = OnnxPolicy(models.no_metadata, fallback_spec=fallback)
    assert not policy.has_metadata and policy.spec.goal_clip_distance == 1.5


@pytest.mark.parametrize("which, match", [
    ("wrong_output", "output"),
    ("wrong_names", "input_0"),
])
def test_contract_violations_are_refused(models, which, match):
    with pytest.raises(PolicyError, match=match):
        OnnxPolicy(getattr(models, which))


def test_missing_corrupt_and_bad_config(models, tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        OnnxPolicy(str(tmp_path / "nope.onnx"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(open(models.go_to_goal, "rb").read()[:300])
    with pytest.raises(PolicyError, match="cannot load"):
        OnnxPolicy(str(corrupt))
    with pytest.raises(PolicyError, match="not available"):
        OnnxPolicy(models.go_to_goal, SessionConfig(providers=("NoSuchExecutionProvider",)))


def test_metadata_is_stored_under_one_key(models):
    import onnx

    props = {p.key: p.value for p in onnx.load(models.go_to_goal).metadata_props}
    assert list(props) == [METADATA_KEY]
    assert json.loads(props[METADATA_KEY])["steps"] == 20


def _session(policy, grid, pose, velocity, goal):
    config = PlannerConfig.from_params({"planner": "onnx"}, policy.spec)
    session = PlannerSession(config, policy.spec, policy.run)
    session.set_costmap(grid, 0.0)
    session.set_odometry(pose, velocity, 0.0, "odom")
    session.set_goal(goal, 0.0, "odom")
    return session


def test_plan_is_pose_invariant(models, spec):
    """Moving the robot and the world together changes nothing in the robot-frame plan."""
    policy = OnnxPolicy(models.go_to_goal)
    data = np.zeros((100, 100), np.int8)
    data[40:60, 70] = 100
    outs = []
    for dx, dy in [(0.0, 0.0), (7.0, -3.0)]:
        grid = Grid(data, 0.05, (-2.5 + dx, -2.5 + dy, 0.0))
        d = _session(policy, grid, np.array([dx, dy, 0.0]), np.zeros(3), np.array([1.0 + dx, 0.5 + dy, 0])).tick(0.0)
        assert d.executing, d.message
        outs.append(d.controls)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_colliding_plan_is_rejected(models, spec):
    policy = OnnxPolicy(models.forward)
    data = np.zeros((100, 100), np.int8)
    data[:, 60] = 100  # a wall 0.5 m ahead of a robot at the grid centre
    d = _session(policy, Grid(data, 0.05, (-2.5, -2.5, 0)), np.zeros(3), np.array([0.4, 0, 0]),
                 np.array([2.0, 0, 0])).tick(0.0)
    assert d.reason is StopReason.PLAN_REJECTED and "collides" in d.detail and not d.command.any()


def test_load_policy_bounds_size_time_and_output(models, tmp_path):
    import onnx_models as om

    with pytest.raises(PolicyError, match="max_model_bytes=100$"):
        load_policy(models.go_to_goal, SessionConfig(), None, 5.0, 100)
    hang = om.loop_model(str(tmp_path / "hang.onnx"), (0.3, 0, 0), 2**62, 0)
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match="model_load_timeout=0.5"):
        load_policy(hang, SessionConfig(warmup_runs=1), None, 0.5, 10**9)
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(PolicyError, match="NaN"):
        load_policy(models.nan, SessionConfig(warmup_runs=1), None, 5.0, 10**9)
    policy = load_policy(models.go_to_goal, SessionConfig(warmup_runs=1), None, 5.0, 10**9)
    assert policy.run(probe_feed(policy.spec)).shape == (1, 60)


def test_run_options_cancel_a_run_from_another_thread(tmp_path):
    import threading

    import onnx_models as om
    import onnxruntime as ort

    policy = OnnxPolicy(om.loop_model(str(tmp_path / "hang.onnx"), (0.3, 0, 0), 0, 2**62), SessionConfig(warmup_runs=1))
    feed = probe_feed(policy.spec)
    feed["robot_state_input"][0, 3] = 0.3  # moving: the Loop never ends
    options = ort.RunOptions()
    threading.Timer(0.3, lambda: setattr(options, "terminate", True)).start()
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match="terminate"):
        policy.run(feed, options)
    assert time.monotonic() - t0 < 2.0


def test_core_imports_neither_rclpy_nor_torch():
    code = ("import sys, plan_ga_ros.contract, plan_ga_ros.tensors, plan_ga_ros.kinematics, plan_ga_ros.safety, "
            "plan_ga_ros.policy, plan_ga_ros.planner, plan_ga_ros.sim.world; "
            "bad = [m for m in ('rclpy', 'torch', 'onnxruntime') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_node_module_does_not_import_torch():
    code = ("import sys, plan_ga_ros.ros.planner_node; "
            "sys.exit(1 if {'torch', 'dask', 'distributed'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
