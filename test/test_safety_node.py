"""Issue 12 against the real node over DDS: no parameter, model, clock or signal bypasses the safety layer.

Each test names the finding it covers; each would fail on the node before the fix.
"""

import os
import signal
import sys
import time

import numpy as np
import onnx_models as om
import pytest
from harness import ExternalPlanner
from rclpy.lifecycle import TransitionCallbackReturn
from test_node import FREE, ORIGIN, moving, stopped

from plan_ga_ros.ros import conversions as conv

SUCCESS = TransitionCallbackReturn.SUCCESS
ONNX = {"planner": "onnx"}  # the network alone: the GA fallback would change what these tests watch


def driving(factory, model, goal=(1.5, 0.5), **params):
    h = factory({"model_path": model, **params})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(*goal)
    assert h.wait_for(lambda: moving(h), 10), "never started driving"
    return h


def cmd_gaps(h, since: float) -> float:
    """The longest time (s) between two commands received after ``since`` (wall)."""
    t = [r.t for r in h.messages("cmd_vel") if r.t >= since]
    return float(np.max(np.diff(t))) if len(t) > 1 else float("inf")


# 1 -------------------------------------------------------------------------------------------------------
def test_1_publisher_type_is_static_and_the_robot_still_stops(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    [res] = h.set_params(use_twist_stamped=True)
    assert not res.successful and "static" in res.reason and "use_twist_stamped" in res.reason
    [res] = h.call_set_parameters([("use_twist_stamped", True)])
    assert not res.successful and "static" in res.reason
    assert h.planner.get_parameter("use_twist_stamped").value is False
    h.state.send_odom = False  # the stop must still go out on the same publisher
    assert h.wait_for(lambda: stopped(h), 3), "no zero command after the refused change"
    d = h.wait_diag(lambda d: "odometry is stale" in d.get("stop_reason", ""))
    assert d["level"] == 1 and "publish failed" not in d["message"]
    # Unconfigured, it may change: the next configure publishes TwistStamped.
    h.planner.trigger_deactivate()
    h.planner.trigger_cleanup()
    [res] = h.set_params(use_twist_stamped=True)
    assert res.successful, res.reason


# 2 -------------------------------------------------------------------------------------------------------
def test_2_zero_lookahead_still_checks_the_stopping_distance(harness_factory, models):
    wall = FREE.copy()
    wall[:, 70] = 100  # x in [0.5, 0.55] m
    h = harness_factory({"model_path": models.forward, "collision_lookahead_time": 0.0, **ONNX})
    h.state.integrate_cmd = True  # a perfect base follows the commands
    h.set_costmap(wall, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    front = []
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        front.append(h.state.pose[0] + 0.2)  # robot_radius
        time.sleep(0.02)
    assert max(front) < 0.5, f"the footprint reached x={max(front):.2f} m, into the wall at 0.5 m"
    d = h.wait_diag(lambda d: "collides" in d.get("stop_reason", ""))
    assert "plan rejected" in d["stop_reason"] and stopped(h)


# 3 -------------------------------------------------------------------------------------------------------
def test_3_watchdog_stops_a_hung_inference_and_the_node_answers(harness_factory, tmp_path):
    """A model whose Loop never ends once the robot moves: zero command from the watchdog, ERROR, the
    run cancelled, services still answered."""
    hang = om.loop_model(str(tmp_path / "hang.onnx"), (0.3, 0.0, 0.0), 0, 2**62)
    h = driving(harness_factory, hang, max_tick_time=0.2, **ONNX)
    t0 = time.monotonic()
    h.state.velocity = np.array([0.3, 0.0, 0.0])  # odometry says moving: the next inference never returns
    assert h.wait_for(lambda: stopped(h), 3), "no zero command while inference hangs"
    took = h.messages("cmd_vel")[-1].t - t0
    assert took < 0.2 + 0.05 + 0.75, f"zero command {took:.2f} s after the hang began"
    d = h.wait_diag(lambda d: d.get("level") == 2 and "max_tick_time" in d.get("message", ""), 5)
    assert d["level"] == 2 and int(d["tick_overruns"]) >= 1, d
    assert h.call_get_parameter("max_tick_time") == pytest.approx(0.2), "parameter service did not answer"
    n = len(h.messages("trajectory"))
    time.sleep(0.6)
    assert len(h.messages("trajectory")) == n and stopped(h), "a late plan was executed"
    h.state.velocity = np.zeros(3)  # at rest the model returns again: planning resumes
    assert h.wait_for(lambda: moving(h), 5), "planning did not resume once inference returned"


def test_3_model_hanging_at_the_probe_is_refused_at_configure_and_hot_swap(harness_factory, models, tmp_path):
    hang = om.loop_model(str(tmp_path / "hang_at_rest.onnx"), (0.3, 0.0, 0.0), 2**62, 0)
    h = harness_factory({"model_path": hang, "model_load_timeout": 1.0})
    assert h.planner.lifecycle_state == "unconfigured"
    d = h.wait_diag(lambda d: d.get("level") == 2)
    assert "model_load_timeout" in d["message"], d
    h2 = driving(harness_factory, models.go_to_goal, model_load_timeout=1.0, **ONNX)
    t0 = time.monotonic()
    [res] = h2.set_params(model_path=hang)
    assert time.monotonic() - t0 < 1.0, "the set request waited for the whole load"
    # Accepted for loading (it takes longer than a request waits), then refused and put back.
    assert h2.wait_for(lambda: h2.planner.get_parameter("model_path").value == models.go_to_goal, 5)
    d = h2.wait_diag(lambda d: "model_load_timeout" in d.get("load_error", ""), 5)
    assert d["model_path"] == models.go_to_goal and d["level"] >= 1
    h2.clear()
    assert h2.wait_count("trajectory", 5, 5), "the previous model stopped planning"


# 4 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, named", [({"dt": 1e-6}, "dt"), ({"steps": 1}, "steps"),
                                           ({"window_cells": 100000}, "window_cells"),
                                           ({"resolution": 1e-4}, "resolution")])
def test_4_metadata_cannot_shrink_the_check(harness_factory, models, tmp_path, fields, named):
    bad = om.hostile_metadata(str(tmp_path / "hostile.onnx"), **fields)
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    [res] = h.set_params(model_path=bad)
    assert not res.successful and named in res.reason and "sane range" in res.reason, res.reason
    assert h.planner.get_parameter("model_path").value == models.go_to_goal
    h.clear()
    assert h.wait_count("trajectory", 5, 5)


def test_4_fallback_geometry_parameters_have_sane_ranges(harness_factory, models):
    h = driving(harness_factory, models.no_metadata, **ONNX)
    for name, value in (("model_dt", 0.001), ("model_resolution", 0.001), ("model_goal_clip_distance", 50.0)):
        [res] = h.set_params(**{name: value})
        assert not res.successful and name in res.reason, (name, res.reason)
    # Within the ranges but outside the window: the reload of the model without metadata refuses it.
    [res] = h.set_params(model_goal_clip_distance=4.0)
    assert not res.successful and "goal_clip_distance" in res.reason
    assert h.planner.get_parameter("model_goal_clip_distance").value == 2.0


# 5 -------------------------------------------------------------------------------------------------------
def test_5_stopped_clock_stops_the_robot(harness_factory, models):
    h = harness_factory({"model_path": models.go_to_goal, "clock_timeout": 0.5, **ONNX}, sim_time=True)
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 10), "never drove on sim time"
    t0 = time.monotonic()
    h.sim.stop()  # /clock no longer published: a dead bridge
    assert h.wait_for(lambda: stopped(h), 3), "no stop when /clock stopped"
    assert h.messages("cmd_vel")[-1].t - t0 < 0.5 + 0.25 + 0.5
    d = h.wait_diag(lambda d: d.get("level") == 2 and "clock" in d.get("message", ""), 3)
    assert d["level"] == 2 and "clock" in d["message"], d  # diagnostics run on wall time
    assert any(s["state"] == "clock_stopped" for s in h.statuses())
    h.sim.start()
    assert h.wait_for(lambda: moving(h), 5), "planning did not resume with the clock"


# 6 -------------------------------------------------------------------------------------------------------
def test_6_activation_never_resumes_an_old_goal(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    p = h.planner
    assert p.trigger_deactivate() == SUCCESS and p.lifecycle_state == "inactive"
    assert h.wait_for(lambda: stopped(h), 3)
    h.send_goal(1.0, -0.5)  # received while inactive
    time.sleep(0.3)
    assert p.trigger_activate() == SUCCESS and p.lifecycle_state == "active"
    h.clear()
    time.sleep(1.5)
    assert not any(np.any(conv.twist_from_msg(r.msg)) for r in h.messages("cmd_vel")), "moved on an old goal"
    assert not h.messages("trajectory")
    d = h.wait_diag(lambda d: d.get("state") == "no_goal")
    assert d["goal"] == "none"
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 5)


def test_6_goal_timeout_expires_a_goal(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, goal_timeout=1.0, **ONNX)
    assert h.wait_for(lambda: stopped(h), 3), "the goal did not expire"
    d = h.wait_diag(lambda d: "goal expired" in d.get("stop_reason", ""))
    assert d["level"] == 1


# 7 -------------------------------------------------------------------------------------------------------
def test_7_fine_costmap_keeps_the_planning_rate(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, costmap_timeout=10.0, **ONNX)
    fine = np.zeros((3000, 3000), np.int8)  # 5 m × 5 m at 1.67 mm: 9 M cells, within max_grid_cells
    h.state.send_costmap = False
    h.set_costmap(fine, 5.0 / 3000, (-2.5, -2.5, 0.0))  # once: 9 MB per message
    time.sleep(1.0)
    h.clear()
    t0 = time.monotonic()
    time.sleep(2.0)
    n = len(h.messages("trajectory"))
    assert n >= 30, f"{n} plans in 2 s with a fine costmap"
    assert cmd_gaps(h, t0) < 0.3


# 8 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_8_signal_delivers_an_acknowledged_zero_command_and_exits_cleanly(models, sig):
    """A terminal Ctrl-C (SIGINT to the process group) or SIGTERM: zero command received, exit 0, no traceback."""
    cmd = [sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args", "-p",
           f"model_path:={models.go_to_goal}", "-p", "planner:=onnx"]
    ext = ExternalPlanner(cmd)
    h = ext.harness
    try:
        h.set_costmap(FREE, 0.05, ORIGIN)
        h.send_goal(1.5, 0.5)
        assert h.wait_for(lambda: moving(h), 20), "never drove"
        t_sig = time.monotonic()
        os.killpg(ext.proc.pid, sig)
        time.sleep(0.05)
        try:  # a second one, as a terminal and `ros2 launch` both send it
            os.killpg(ext.proc.pid, sig)
        except ProcessLookupError:
            pass
        ext.proc.wait(timeout=10)
        got_zero = h.wait_for(lambda: stopped(h) and h.messages("cmd_vel")[-1].t >= t_sig, 2)
    finally:
        log = ext.close()
    assert got_zero, "no zero command after the signal\n" + log[-2000:]
    assert ext.proc.returncode == 0, log[-2000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-2000:]


# 9 -------------------------------------------------------------------------------------------------------
def test_9_conflicting_ordinary_sets_are_refused_not_fatal(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    [res] = h.set_params(min_v_x=0.3)
    assert res.successful, res.reason
    [res] = h.set_params(max_v_x=0.2)
    assert not res.successful and "min_v_x=0.3 exceeds max_v_x=0.2" in res.reason
    [res] = h.call_set_parameters([("max_v_x", 0.2)])
    assert not res.successful
    assert h.planner.get_parameter("max_v_x").value == 0.5
    assert h.planner.lifecycle_state == "active"
    d = h.wait_diag(lambda d: d.get("planner") == "onnx")
    assert float(d["planning_frequency_hz"]) == 20.0
    [res] = h.set_params(min_v_x=0.0)
    assert res.successful
    h.clear()
    assert h.wait_count("trajectory", 5, 5), "the node stopped planning"


# 11 ------------------------------------------------------------------------------------------------------
def test_11_hot_swap_loads_off_the_executor_and_planning_threads(harness_factory, models, tmp_path):
    slow = om.loop_model(str(tmp_path / "slow_to_load.onnx"), (0.2, 0.0, 0.3), 200000, 0)  # ~1 s a probe run
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    h.state.velocity = np.array([0.3, 0.0, 0.0])  # moving: the new model is fast once it runs
    t0 = time.monotonic()
    [res] = h.set_params(model_path=slow)
    answered = time.monotonic() - t0
    assert res.successful, res.reason
    assert answered < 1.0, f"the request waited {answered:.2f} s"
    [res] = h.set_params(xy_goal_tolerance=0.2)  # an unrelated change while it loads
    assert res.successful, res.reason
    [res] = h.set_params(model_path=models.forward)  # another model while it loads: later, please
    assert not res.successful and "still loading" in res.reason
    assert h.wait_for(lambda: h.last_cmd() is not None and abs(h.last_cmd()[2] - 0.3) < 1e-3, 15), "never swapped"
    swapped = h.messages("cmd_vel")[-1].t
    assert swapped - t0 > 0.8, "the load was too quick to show anything"
    gap = cmd_gaps(h, t0)
    assert gap < 0.5, f"commands paused {gap:.2f} s during the {swapped - t0:.1f} s load"


def test_11_model_file_size_is_bounded(harness_factory, models, tmp_path):
    big = om.padded(str(tmp_path / "big.onnx"), 2_000_000)
    h = driving(harness_factory, models.go_to_goal, max_model_bytes=1_000_000, **ONNX)
    [res] = h.set_params(model_path=big)
    assert not res.successful and "max_model_bytes=1000000" in res.reason


# 12 ------------------------------------------------------------------------------------------------------
def test_12_refused_request_changes_nothing_now_or_later(harness_factory, models):
    from rclpy.parameter import Parameter

    h = driving(harness_factory, models.go_to_goal, **ONNX)
    res = h.planner.set_parameters_atomically([Parameter("model_path", value=models.forward),
                                               Parameter("min_v_x", value=1.0)])
    assert not res.successful and "min_v_x" in res.reason
    res = h.call_set_parameters([("model_path", models.forward), ("min_v_x", 1.0)], atomic=True)
    assert not res.successful
    [res] = h.set_params(xy_goal_tolerance=0.2)  # an unrelated change afterwards
    assert res.successful
    time.sleep(0.5)
    assert h.planner.get_parameter("model_path").value == models.go_to_goal
    d = h.wait_diag(lambda d: True)
    assert d["model_path"] == models.go_to_goal
    h.clear()
    # go_to_goal steers left toward (1.5, 0.5); the forward model never turns.
    assert h.wait_for(lambda: moving(h) and h.last_cmd()[2] > 0.05, 5), "another model is driving"


# 13 ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plan_on_odometry", [False, True])
def test_13_clock_jumping_back_recovers_within_a_period(harness_factory, models, plan_on_odometry):
    h = harness_factory({"model_path": models.go_to_goal, "plan_on_odometry": plan_on_odometry, **ONNX},
                        sim_time=True)
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 10)
    h.sim.jump_to(1.0)  # a simulation reset: 100 s back
    assert h.wait_for(lambda: stopped(h), 3), "old inputs kept planning after the reset"
    assert h.wait_for(lambda: any(s["state"] == "clock_jumped" for s in h.statuses()), 3), h.statuses()
    time.sleep(0.3)
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.clear()
    t0 = time.monotonic()
    h.send_goal(1.5, 0.5)
    assert h.wait_count("trajectory", 1, 5), "no planning after the clock jumped back"
    took = h.messages("trajectory")[0].t - t0
    assert took < 0.05 + 0.5, f"first plan {took:.2f} s after the new goal"
    d = h.wait_diag(lambda d: float(d.get("achieved_rate_hz", 0)) > 10)
    assert d["level"] == 0


# 14 ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, named", [({"min_v_x": 0.6}, "min_v_x"), ({"planning_frequency": 500.0},
                                           "planning_frequency"), ({"qos.odom.reliability": "bogus"},
                                           "qos.odom.reliability"), ({"model_kinematics": "bogus"},
                                           "model_kinematics"), ({"providers": ["NoSuchExecutionProvider"]},
                                           "providers")])
def test_14_invalid_start_up_values_fail_configure_naming_them(harness_factory, models, params, named):
    h = harness_factory({"model_path": models.go_to_goal, **params})
    assert h.planner.lifecycle_state == "unconfigured"
    d = h.wait_diag(lambda d: d.get("level") == 2)
    assert d["level"] == 2 and named in d["message"] and "configure failed" in d["message"], d
    # Once set right, configure works.
    fix = {"min_v_x": 0.0, "planning_frequency": 20.0, "qos.odom.reliability": "best_effort",
           "model_kinematics": "diff_drive", "providers": ["CPUExecutionProvider"]}[named]
    [res] = h.set_params(**{named: fix})
    assert res.successful, res.reason
    assert h.planner.trigger_configure() == SUCCESS and h.planner.lifecycle_state == "inactive"


def test_14_start_up_error_is_logged_with_the_parameter_name(models):
    cmd = [sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args", "-p",
           f"model_path:={models.go_to_goal}", "-p", "min_v_x:=0.6"]
    ext = ExternalPlanner(cmd)
    try:
        d = ext.harness.wait_diag(lambda d: d.get("level") == 2, 20)
    finally:
        log = ext.close()
    assert d.get("level") == 2 and "min_v_x" in d["message"], d
    assert "configure failed" in log and "min_v_x=0.6 exceeds max_v_x=0.5" in log, log


@pytest.mark.parametrize("order", [(("min_v_x", 0.6), ("max_v_x", 0.7)), (("max_v_x", 0.7), ("min_v_x", 0.6))])
def test_14_one_request_is_one_candidate_in_any_order(harness_factory, models, order):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    results = h.call_set_parameters(list(order))
    assert [r.successful for r in results] == [True, True], [r.reason for r in results]
    assert h.planner.get_parameter("min_v_x").value == 0.6 and h.planner.get_parameter("max_v_x").value == 0.7
    results = h.call_set_parameters([("min_v_x", 0.9), ("max_v_x", 0.8)])  # invalid as a whole: nothing changes
    assert [r.successful for r in results] == [False, False]
    assert "min_v_x=0.9 exceeds max_v_x=0.8" in results[0].reason
    assert h.planner.get_parameter("min_v_x").value == 0.6 and h.planner.get_parameter("max_v_x").value == 0.7


def test_14_enumerations_and_providers_are_checked_against_what_exists(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    for name, value in (("model_kinematics", "bogus"), ("planner", "bogus"), ("fallback_planner", "astar")):
        [res] = h.set_params(**{name: value})
        assert not res.successful and "is not one of" in res.reason, (name, res.reason)
    for name, value in (("qos.odom.reliability", "bogus"), ("providers", ["NoSuchExecutionProvider"])):
        [res] = h.set_params(**{name: value})
        assert not res.successful and "static" in res.reason
    h.planner.trigger_deactivate()
    h.planner.trigger_cleanup()
    [res] = h.set_params(providers=["NoSuchExecutionProvider"])
    assert not res.successful and "not available" in res.reason and "CPUExecutionProvider" in res.reason
    [res] = h.set_params(**{"qos.odom.reliability": "bogus"})
    assert not res.successful and "is not one of" in res.reason
    assert h.planner.trigger_configure() == SUCCESS and h.planner.lifecycle_state == "inactive"


def test_14_diagnostics_period_applies(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    [res] = h.set_params(diagnostics_period=0.2)
    assert res.successful
    time.sleep(0.5)
    h.clear()
    time.sleep(2.0)
    fast = len(h.messages("diag"))
    [res] = h.set_params(diagnostics_period=2.0)
    time.sleep(0.3)
    h.clear()
    time.sleep(2.5)
    slow = len(h.messages("diag"))
    assert 7 <= fast <= 13 and 1 <= slow <= 2, (fast, slow)


def test_14_robot_off_the_costmap_stops_unless_allowed(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    h.set_costmap(FREE, 0.05, (10.0, 10.0, 0.0))  # the robot at the origin is off this map
    assert h.wait_for(lambda: stopped(h), 3)
    d = h.wait_diag(lambda d: "off the costmap" in d.get("stop_reason", ""))
    assert d["level"] == 1
    [res] = h.set_params(allow_unknown=True)
    assert res.successful
    assert h.wait_for(lambda: moving(h), 5)


# logs and diagnostics bounds ----------------------------------------------------------------------------
def test_a_state_is_logged_once_and_goals_do_not_flood(harness_factory, models, capfd):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    capfd.readouterr()
    h.state.send_odom = False
    time.sleep(2.0)  # 40 ticks with stale odometry
    h.state.send_odom = True
    assert h.wait_for(lambda: moving(h), 5)
    for k in range(100):
        h.send_goal(1.5, 0.5 + 0.001 * k)
    time.sleep(1.0)
    err = capfd.readouterr().err
    assert err.count("odometry is stale") == 1, err
    assert err.count("goal") <= 1, err


def test_diagnostics_strings_are_bounded(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, **ONNX)
    h.set_costmap(FREE, 0.05, ORIGIN, frame="f" * 1_000_000)  # a 1 MB frame_id
    d = h.wait_diag(lambda d: "frames disagree" in d.get("stop_reason", ""))
    assert stopped(h)
    message = d.pop("message")
    assert all(len(v) <= 256 for v in d.values() if isinstance(v, str)), max(len(str(v)) for v in d.values())
    assert len(message) <= 512


# goals failed, fallback reported --------------------------------------------------------------------------
def test_goal_failure_is_reported_on_status_and_diagnostics(harness_factory, models):
    wall = FREE.copy()
    wall[:, 70] = 100
    h = harness_factory({"model_path": models.forward, "recovery_timeout": 0.5, **ONNX})
    h.set_costmap(wall, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    d = h.wait_diag(lambda d: d.get("state") == "goal_failed", 10)
    assert d["level"] == 2 and "goal failed" in d["message"]
    assert h.wait_for(lambda: any(s["state"] == "goal_failed" and s["level"] == "ERROR" for s in h.statuses()), 3)
    assert not any(np.any(conv.twist_from_msg(r.msg)) for r in h.messages("cmd_vel"))


def test_fallback_planner_in_use_and_its_share_are_reported(harness_factory, models):
    wall = FREE.copy()
    wall[20:, 70] = 100  # a wall ahead with a gap on the left side
    h = harness_factory({"model_path": models.forward, "planner": "hybrid", "max_tick_time": 2.0})
    h.set_costmap(wall, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    assert h.wait_for(lambda: any(s.get("planner") == "ga" for s in h.statuses()), 15), h.statuses()
    d = h.wait_diag(lambda d: float(d.get("fallback_share", 0)) > 0, 5)
    assert float(d["fallback_share"]) > 0 and d["planner"] == "hybrid"
    # the fallback plans without the GA's soft clearance margin (a doorway or gap where it would hold still)
    d = h.wait_diag(lambda d: d.get("ga_clearance_margin") == "off", 5)
    assert d["ga_clearance_margin"] == "off" and d["planner_in_use"] == "ga", d


def test_no_progress_is_a_warning_with_the_reason_and_the_fallback_drives(harness_factory, models):
    """A base that does not move (the driver never integrates the command: stuck wheels, a bumper):
    Nav2's progress checker rule, then WARN in diagnostics with the reason, and the GA takes over."""
    h = harness_factory({"model_path": models.forward, "planner": "hybrid", "required_movement_radius": 0.3,
                         "movement_time_allowance": 1.0, "max_tick_time": 2.0, "diagnostics_period": 0.2})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    assert h.wait_for(lambda: moving(h), 10), "never started driving"
    d = h.wait_diag(lambda d: "no progress" in d["message"], 10)
    assert d["level"] == 1 and "moved less than 0.3 m in 1 s" in d["message"], d
    assert int(d["stalls"]) >= 1
    assert h.wait_for(lambda: any(s.get("planner") == "ga" for s in h.statuses()), 10), h.statuses()[-3:]


def test_a_creeping_network_is_overtaken_by_the_ga_comparison_and_diagnostics_say_why(harness_factory, models,
                                                                                       tmp_path, spec):
    """fallback_compare_period: a network whose plans are accepted but creep at 2 cm/s is overtaken by the GA
    within a second or two, long before the progress checker's movement_time_allowance (10 s) runs out."""
    creep = om.constant(str(tmp_path / "creep.onnx"), (0.02, 0.0, 0.0), spec)
    h = harness_factory({"model_path": creep, "planner": "hybrid", "fallback_compare_period": 0.5,
                         "fallback_compare_margin": 0.5, "max_tick_time": 2.0, "diagnostics_period": 0.2})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    assert h.wait_for(lambda: any(s.get("planner") == "ga" for s in h.statuses()), 5), h.statuses()[-3:]
    d = h.wait_diag(lambda d: int(d.get("fallback_takeovers", 0)) >= 1, 5)
    assert "sooner than the network's" in d["last_takeover"] and int(d["stalls"]) == 0, d
