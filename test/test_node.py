"""The planner node over real DDS on loopback, fed like a Nav2 stack would feed it."""

import re
import time

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn

from plan_ga_ros.ros import conversions as conv
from plan_ga_ros.ros.diagnostics import Stats
from plan_ga_ros.session import Decision, StopReason

FREE = np.zeros((120, 120), np.int8)  # 6 m x 6 m at 0.05 m, like a Nav2 rolling window
ORIGIN = (-3.0, -3.0, 0.0)


def planning(factory, model, **params):
    """A node driving ``model`` toward (1.5, 0.5). These tests check what the node does with the network's
    plans, so hybrid's comparison with the GA is off (test_safety_node tests it over DDS)."""
    h = factory({"model_path": model, "fallback_compare_period": 0.0, **params})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_count("trajectory", 3, 10.0), "planner never published a trajectory"
    return h


def moving(h) -> bool:
    cmd = h.last_cmd()
    return cmd is not None and bool(np.any(cmd != 0))


def stopped(h) -> bool:
    cmd = h.last_cmd()
    return cmd is not None and not np.any(cmd != 0)


def test_publishes_trajectory_path_and_command_at_rate(harness_factory, models):
    h = planning(harness_factory, models.go_to_goal)
    h.clear()
    time.sleep(2.0)
    traj = h.messages("trajectory")
    assert 28 <= len(traj) <= 52, f"{len(traj)} trajectories in 2 s at 20 Hz"
    msg = traj[-1].msg
    assert [(d.label, d.size) for d in msg.layout.dim] == [("steps", 20), ("controls", 3)]
    controls = np.asarray(msg.data, dtype=np.float64).reshape(20, 3)
    assert np.isfinite(controls).all() and controls[:, 0].max() <= 0.5 + 1e-6
    # The path is the trajectory rolled out from the robot's pose as the base follows it (from rest here,
    # within the acceleration limits): it starts at the robot and ends at the commanded speed and turn rate.
    path = h.messages("local_plan")[-1].msg
    assert path.header.frame_id == "odom" and len(path.poses) == 21
    xyt = np.array([[p.pose.position.x, p.pose.position.y, conv.yaw_from_quaternion(p.pose.orientation)]
                    for p in path.poses])
    np.testing.assert_allclose(xyt[0], 0.0, atol=1e-9)
    step = np.hypot(*np.diff(xyt[:, :2], axis=0).T)
    assert step[0] < step[-1] and step[-1] == pytest.approx(controls[-1, 0] * 0.1, abs=2e-3)
    assert np.angle(np.exp(1j * (xyt[-1, 2] - xyt[-2, 2]))) == pytest.approx(controls[-1, 2] * 0.1, abs=2e-3)
    stamps = [conv.stamp_to_sec(p.header.stamp) for p in path.poses]
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=1e-6)
    # The command is the first step of the same trajectory (matched by the last pair received).
    cmds = h.messages("cmd_vel")
    assert any(np.allclose(conv.twist_from_msg(c.msg), controls[0], atol=1e-5) for c in cmds[-3:])
    # Steering toward a goal on the left: positive yaw rate.
    assert controls[0, 2] > 0 and controls[0, 0] > 0
    d = h.wait_diag(lambda d: float(d.get("achieved_rate_hz", 0)) > 15)
    assert float(d["achieved_rate_hz"]) == pytest.approx(20.0, rel=0.25)
    for key in ("inference_ms_p50", "inference_ms_p99", "tensors_ms_p99", "total_ms_p99", "odom_age_s",
                "costmap_age_s", "model_path", "provider", "ticks_over_period"):
        assert key in d, key
    assert d["provider"] == "CPUExecutionProvider", d
    # "N of M": M ticks in the window; N of them past the 50 ms period (a busy machine may have some)
    over, window = map(int, re.fullmatch(r"(\d+) of (\d+)", d["ticks_over_period"]).groups())
    assert 0 < window <= 400 and 0 <= over <= window, d["ticks_over_period"]
    busy = ("tick compute" in d["message"] or "ran past the planning period" in d["message"])
    assert d["level"] == 0 or busy, d["message"]  # a busy machine may WARN


def test_ticks_past_the_planning_period_are_counted_warned_and_logged(harness_factory, models, capfd):
    """The GA's ticks take tens of ms: at 100 Hz (a 10 ms period) they run past it. Each is counted
    in ``ticks_over_period``, the diagnostics WARN, and the node logs it (throttled) like Nav2."""
    capfd.readouterr()
    h = planning(harness_factory, models.go_to_goal, planner="ga", planning_frequency=100.0)
    d = h.wait_diag(lambda d: "ran past the planning period" in d["message"])
    over, window = map(int, re.fullmatch(r"(\d+) of (\d+)", d["ticks_over_period"]).groups())
    assert 0 < over <= window, d
    assert d["level"] == 1, d
    assert re.fullmatch(rf"{over} of the last {window} ticks ran past the planning period \(10\.0 ms\)",
                        d["message"]), d["message"]
    end, err = time.monotonic() + 5.0, ""
    while time.monotonic() < end and "missed its desired rate" not in err:
        time.sleep(0.2)
        err += capfd.readouterr().err
    line = next((ln for ln in err.splitlines() if "missed its desired rate" in ln), "")
    assert "past the planning period (10.0 ms at 100 Hz), planner ga" in line, err[-2000:]
    # Throttled: at most one line per diagnostics period (1 s), not one per tick (dozens a second here).
    capfd.readouterr()
    t0 = time.monotonic()
    time.sleep(2.0)
    lines = capfd.readouterr().err.count("missed its desired rate")
    assert lines <= (time.monotonic() - t0) / 1.0 + 1, lines


def test_stats_count_the_ticks_past_the_period_in_the_window():
    """Each tick is judged by the period it ran at; the window keeps the last ``size``."""
    stats = Stats(4)
    assert stats.over_period() == 0  # empty window
    for i, total in enumerate([5.0, 12.0, 10.0, 30.0, 9.0, 11.0]):
        stats.add(Decision(float(i), StopReason.NONE, timings_ms={"total": total}), float(i), 10.0)
    # the window keeps the last four (10, 30, 9, 11); a tick of exactly the period is not past it
    assert stats.over_period() == 2
    for i in range(2):  # planning_frequency lowered to 20 Hz: these 30 ms ticks are within its 50 ms
        stats.add(Decision(6.0 + i, StopReason.NONE, timings_ms={"total": 30.0}), 6.0 + i, 50.0)
    assert stats.over_period() == 1  # (9, 11 at 10 ms; 30, 30 at 50 ms)


@pytest.mark.parametrize("which", ["odom", "costmap"])
def test_stops_on_stale_input_and_resumes(harness_factory, models, which):
    h = planning(harness_factory, models.go_to_goal)
    assert h.wait_for(lambda: moving(h), 5)
    t_cut = time.monotonic()
    setattr(h.state, f"send_{which}", False)
    assert h.wait_for(lambda: stopped(h), 5), "no stop after the input went stale"
    took = h.messages("cmd_vel")[-1].t - t_cut
    timeout = 0.5 if which == "odom" else 1.0
    assert took <= timeout + 0.5, f"stopped {took:.2f} s after the last {which}"  # one period + a busy machine
    name = "odometry" if which == "odom" else "costmap"
    d = h.wait_diag(lambda d: f"{name} is stale" in d.get("stop_reason", ""))
    assert f"{name} is stale" in d["stop_reason"] and d["level"] == 1
    setattr(h.state, f"send_{which}", True)
    assert h.wait_for(lambda: moving(h), 5), "planning did not resume"


def test_incompatible_qos_is_logged_with_topic_and_policy(harness_factory, models, capfd):
    from nav_msgs.msg import OccupancyGrid
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    h = planning(harness_factory, models.go_to_goal)
    capfd.readouterr()
    h.node.create_publisher(OccupancyGrid, "/local_costmap/costmap",
                            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    end = time.monotonic() + 5.0
    err = ""
    while time.monotonic() < end and "incompatible QoS" not in err:
        time.sleep(0.2)
        err += capfd.readouterr().err
    assert "incompatible QoS on subscription /local_costmap/costmap" in err and "RELIABILITY" in err, err


def test_colliding_plan_is_never_executed(harness_factory, models):
    wall = FREE.copy()
    wall[:, 70] = 100  # 0.5 m ahead of the robot at the origin
    h = harness_factory({"model_path": models.forward, "planner": "onnx"})  # no fallback: the network alone
    h.set_costmap(wall, 0.05, ORIGIN)
    h.send_goal(2.0, 0.0)
    d = h.wait_diag(lambda d: "collides" in d.get("stop_reason", ""))
    assert "plan rejected" in d["stop_reason"] and int(d["plans_rejected"]) > 0
    assert not h.messages("trajectory")
    assert all(not np.any(conv.twist_from_msg(c.msg)) for c in h.messages("cmd_vel"))
    # Without the wall the same model drives.
    h.set_costmap(FREE, 0.05, ORIGIN)
    assert h.wait_for(lambda: moving(h), 5)


def test_stops_at_the_goal_and_idles_until_a_new_one(harness_factory, models):
    h = planning(harness_factory, models.go_to_goal)
    assert h.wait_for(lambda: moving(h), 5)
    h.send_goal(0.05, 0.0, 0.1)  # within xy and yaw tolerance of the robot
    assert h.wait_for(lambda: stopped(h), 5)
    d = h.wait_diag(lambda d: d.get("stop_reason") == "goal reached")
    assert d["level"] == 0
    n = len(h.messages("trajectory"))
    time.sleep(0.5)
    assert len(h.messages("trajectory")) == n, "planned after reaching the goal"
    h.send_goal(1.5, -0.5)
    assert h.wait_for(lambda: moving(h), 5)


def test_hot_swap_good_model_and_refuse_bad_ones(harness_factory, models):
    h = planning(harness_factory, models.go_to_goal)
    [res] = h.set_params(model_path=models.forward)
    assert res.successful
    assert h.wait_for(lambda: moving(h) and abs(h.last_cmd()[2]) < 1e-9 and h.last_cmd()[0] > 0.35, 5)
    for bad in (models.wrong_output, models.wrong_names, models.wrong_window, models.nan, "/nonexistent/model.onnx"):
        [res] = h.set_params(model_path=bad)
        assert not res.successful and res.reason
        assert h.planner.get_parameter("model_path").value == models.forward
    d = h.wait_diag(lambda d: "refused model" in d.get("load_error", ""))
    assert "/nonexistent/model.onnx" in d["load_error"] and d["model_path"] == models.forward
    h.clear()
    assert h.wait_count("trajectory", 5, 5), "the previous model stopped planning"


def test_lifecycle_deactivate_cleanup_configure(harness_factory, models):
    h = planning(harness_factory, models.go_to_goal)
    assert h.wait_for(lambda: moving(h), 5)
    p = h.planner
    assert p.lifecycle_state == "active"
    assert p.trigger_deactivate() == TransitionCallbackReturn.SUCCESS and p.lifecycle_state == "inactive"
    assert h.wait_for(lambda: stopped(h), 3), "deactivate did not publish a zero command"
    n = len(h.messages("trajectory"))
    time.sleep(0.4)
    assert len(h.messages("trajectory")) == n, "planned while inactive"
    assert p.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and p.lifecycle_state == "unconfigured"
    assert h.wait_for(lambda: p.count_publishers("/cmd_vel") == 0, 3), "cleanup kept the /cmd_vel publisher"
    assert p.trigger_configure() == TransitionCallbackReturn.SUCCESS and p.lifecycle_state == "inactive"
    assert p.trigger_activate() == TransitionCallbackReturn.SUCCESS and p.lifecycle_state == "active"
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 5), "no planning after cleanup → configure → activate"


def test_missing_model_stays_unconfigured_with_error(harness_factory, tmp_path):
    h = harness_factory({"model_path": str(tmp_path / "missing.onnx")})
    assert h.planner.lifecycle_state == "unconfigured"
    d = h.wait_diag(lambda d: d.get("level") == 2)
    assert "not found" in d["message"]


def test_twist_stamped_and_qos_override(harness_factory, models):
    h = harness_factory({"model_path": models.go_to_goal, "use_twist_stamped": True,
                         "qos.odom.reliability": "reliable", "qos.odom.depth": 10})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 10)
    msg = h.messages("cmd_vel")[-1].msg
    assert msg.header.frame_id == "base_link" and msg.twist.linear.x > 0


def test_model_without_metadata_loads_with_parameters(harness_factory, models):
    h = planning(harness_factory, models.no_metadata, model_goal_clip_distance=1.0)
    d = h.wait_diag(lambda d: "model_has_metadata" in d)
    assert d["model_has_metadata"] == "False"


def test_plan_on_odometry_keeps_the_rate_and_still_stops_on_stale_odometry(harness_factory, models):
    h = planning(harness_factory, models.go_to_goal, plan_on_odometry=True)
    h.clear()
    time.sleep(2.0)
    n = len(h.messages("trajectory"))
    assert 28 <= n <= 52, f"{n} trajectories in 2 s at 20 Hz"
    # Each plan follows an odometry message: the path starts at the pose of the latest odometry.
    assert h.messages("local_plan")[-1].msg.poses[0].pose.position.x == pytest.approx(0.0)
    h.state.send_odom = False
    assert h.wait_for(lambda: stopped(h), 5), "no stop when odometry stopped"
    d = h.wait_diag(lambda d: "odometry is stale" in d.get("stop_reason", ""))
    assert "odometry is stale" in d["stop_reason"]


def test_path_buffer_refills_in_place_with_new_poses_and_stamps():
    buf = conv.PathBuffer()
    first = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.5], [0.2, 0.1, -3.0]])
    buf.fill(first, "odom", 10.0, 0.1)
    second = first[::-1] + 1.0
    msg = buf.fill(second, "map", 20.0, 0.1)
    assert msg.header.frame_id == "map" and conv.stamp_to_sec(msg.header.stamp) == 20.0
    got = np.array([[p.pose.position.x, p.pose.position.y, conv.yaw_from_quaternion(p.pose.orientation)]
                    for p in msg.poses])
    np.testing.assert_allclose(got[:, :2], second[:, :2])
    np.testing.assert_allclose(np.cos(got[:, 2] - second[:, 2]), 1.0, atol=1e-12)
    assert [p.header.frame_id for p in msg.poses] == ["map"] * 3
    np.testing.assert_allclose([conv.stamp_to_sec(p.header.stamp) for p in msg.poses], [20.0, 20.1, 20.2])
    assert len(buf.fill(np.zeros((5, 3)), "odom", 0.0, 0.1).poses) == 5
