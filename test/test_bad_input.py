"""Bad and stale input over DDS: the node stays up, stops the robot, names the cause, and resumes."""

import math

import numpy as np
import onnx_models as om
import pytest
from harness import grid_msg
from test_node import FREE, ORIGIN, moving, stopped

from plan_ga_ros.ros.goals import TF2_ERROR

HAS_TF2 = not TF2_ERROR  # goals in another frame are transformed (and wait for the transform)


def driving(factory, model, **params):
    h = factory({"model_path": model, **params})
    h.set_costmap(FREE, 0.05, ORIGIN)
    h.send_goal(1.5, 0.5)
    assert h.wait_for(lambda: moving(h), 10), "never started driving"
    return h


def expect_stop(h, cause: str, level: int = 1) -> dict:
    assert h.wait_for(lambda: stopped(h), 5), f"robot not stopped for: {cause}"
    d = h.wait_diag(lambda d: cause in d.get("stop_reason", ""), 5)
    assert cause in d.get("stop_reason", ""), d
    assert d["level"] == level, d
    n = len(h.messages("trajectory"))
    h.wait_for(lambda: False, 0.3)
    assert len(h.messages("trajectory")) == n, "kept publishing plans on bad input"
    return d


def resumes(h) -> None:
    h.clear()
    assert h.wait_for(lambda: moving(h), 5), "planning did not resume on good input"
    assert h.planner.lifecycle_state == "active"


def bad_grid(kind: str):
    if kind == "data length":
        msg = grid_msg(FREE, 0.05, ORIGIN)
        msg.info.width = 119
        return msg, "cells but width*height"
    if kind == "zero width":
        msg = grid_msg(np.zeros((0, 0), np.int8), 0.05, ORIGIN)
        return msg, "grid is empty"
    if kind in ("resolution 0", "resolution -1", "resolution nan"):
        return grid_msg(FREE, float(kind.split()[1]), ORIGIN), "resolution must be positive"
    if kind == "huge":
        return grid_msg(np.zeros((4000, 4000), np.int8), 0.05, (-100, -100, 0)), "exceeds max_grid_cells"
    if kind == "frame":
        return grid_msg(FREE, 0.05, ORIGIN, frame="map"), "costmap frame 'map' != odometry frame 'odom'"
    if kind == "zero quaternion":
        msg = grid_msg(FREE, 0.05, ORIGIN)
        msg.info.origin.orientation.w = 0.0
        return msg, "quaternion has zero length"
    raise KeyError(kind)


@pytest.mark.parametrize("kind", ["data length", "zero width", "resolution 0", "resolution -1", "resolution nan",
                                  "huge", "frame", "zero quaternion"])
def test_bad_costmap(harness_factory, models, kind):
    h = driving(harness_factory, models.go_to_goal)
    h.state.costmap, cause = bad_grid(kind)
    expect_stop(h, cause)
    h.set_costmap(FREE, 0.05, ORIGIN)
    resumes(h)


def test_rotated_and_offset_costmap_plans(harness_factory, models):
    """A costmap with non-zero origin yaw is valid input: planning goes on."""
    h = driving(harness_factory, models.go_to_goal)
    h.set_costmap(np.zeros((150, 90), np.int8), 0.04, (1.5, -2.5, 0.7))
    h.clear()
    assert h.wait_count("trajectory", 5, 5)


def test_huge_grid_accepted_when_allowed_still_plans(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal, max_grid_cells=20_000_000, costmap_timeout=5.0)
    grid = np.zeros((4000, 4000), np.int8)
    h.set_costmap(grid, 0.05, (-100.0, -100.0, 0.0))
    h.state.send_costmap = False  # one 16 MB message is enough
    h.clear()
    assert h.wait_count("trajectory", 10, 10)
    t0 = h.messages("trajectory")[-1].t
    assert h.wait_count("trajectory", 30, 5)
    rate = 20 / (h.messages("trajectory")[29].t - h.messages("trajectory")[9].t)
    assert rate >= 15.0 and h.messages("trajectory")[9].t >= t0, f"{rate:.1f} Hz with a 16 M-cell costmap"
    d = h.wait_diag(lambda d: "tensors_ms_p50" in d)
    # The window visits the cells under it only (~0.5 ms); reading the whole grid would take ~100 ms.
    assert float(d["tensors_ms_p50"]) < 10.0, d["tensors_ms_p50"]


def _odom_setter(field: str, value: float):
    def override(msg):
        obj, attr = msg, field.split(".")
        for a in attr[:-1]:
            obj = getattr(obj, a)
        setattr(obj, attr[-1], value)
    return override


@pytest.mark.parametrize("field, value, cause", [
    ("pose.pose.position.x", math.nan, "odometry rejected: position is not finite"),
    ("pose.pose.position.y", math.inf, "odometry rejected: position is not finite"),
    ("pose.pose.orientation.z", math.nan, "odometry rejected: quaternion is not finite"),
    ("twist.twist.linear.x", math.nan, "odometry rejected: odometry twist is not finite"),
    ("twist.twist.angular.z", -math.inf, "odometry rejected: odometry twist is not finite"),
    ("twist.twist.angular.x", math.nan, "odometry rejected: odometry twist is not finite"),
    ("pose.pose.orientation.w", 0.0, "odometry rejected: quaternion has zero length"),
    ("twist.twist.linear.x", 999.0, "odometry rejected: twist [999.0, 0.0, 0.0] is beyond any robot"),
    ("twist.twist.angular.z", -999.0, "odometry rejected: twist [0.0, 0.0, -999.0] is beyond any robot"),
])
def test_bad_odometry(harness_factory, models, field, value, cause):
    h = driving(harness_factory, models.go_to_goal)
    if field.endswith("orientation.w"):
        h.state.odom_override = lambda m: (_odom_setter("pose.pose.orientation.w", 0.0)(m),
                                           _odom_setter("pose.pose.orientation.z", 0.0)(m))
    else:
        h.state.odom_override = _odom_setter(field, value)
    expect_stop(h, cause)
    h.state.odom_override = None
    resumes(h)


@pytest.mark.parametrize("offset, cause", [(+30.0, "odometry is stale"), (-3600.0, "odometry is stale")])
def test_odometry_stamped_in_the_future_or_far_past(harness_factory, models, offset, cause):
    from plan_ga_ros.ros import conversions as conv

    h = driving(harness_factory, models.go_to_goal)
    h.state.odom_override = lambda m: setattr(m.header, "stamp",
                                              conv.sec_to_stamp(conv.stamp_to_sec(m.header.stamp) + offset))
    expect_stop(h, cause)
    h.state.odom_override = None
    resumes(h)


def test_odometry_in_another_frame(harness_factory, models):
    h = driving(harness_factory, models.go_to_goal)
    h.state.odom_frame = "odom_other"
    # With tf2 the goal (in odom) waits for a transform to odom_other; without, the frames disagree.
    expect_stop(h, "no transform: 'odom' → 'odom_other'" if HAS_TF2 else "!= odometry frame 'odom_other'")
    h.state.odom_frame = "odom"
    resumes(h)


@pytest.mark.parametrize("goal, frame, cause", [
    ((math.nan, 0.0, 0.0), "odom", "goal rejected: position is not finite"),
    ((1.0, math.inf, 0.0), "odom", "goal rejected: position is not finite"),
    ((1.0, 1.0, 0.0), "map",
     "no transform: 'map' → 'odom'" if HAS_TF2 else "goal frame 'map' != odometry frame 'odom'"),
])
def test_bad_goal(harness_factory, models, goal, frame, cause):
    h = driving(harness_factory, models.go_to_goal)
    h.send_goal(*goal, frame=frame)
    expect_stop(h, cause)
    h.send_goal(1.5, 0.5)
    resumes(h)


def test_goal_with_zero_quaternion(harness_factory, models):
    from geometry_msgs.msg import PoseStamped

    h = driving(harness_factory, models.go_to_goal)
    msg = PoseStamped()
    msg.header.frame_id = "odom"
    msg.pose.position.x = 1.0
    msg.pose.orientation.w = 0.0
    h.goal_pub.publish(msg)
    expect_stop(h, "goal rejected: quaternion has zero length")
    h.send_goal(1.5, 0.5)
    resumes(h)


@pytest.mark.parametrize("mode, cause, level", [("nan", "model output contains NaN or inf", 1),
                                                ("raise", "inference error: inference failed", 2)])
def test_model_fails_at_run_time(harness_factory, tmp_path, mode, cause, level):
    model = om.fails_when_fast(str(tmp_path / f"fails_{mode}.onnx"), mode=mode, threshold=1.0)
    h = driving(harness_factory, model, planner="onnx")  # the network alone: no GA fallback takes over
    h.state.velocity = np.array([1.5, 0.0, 0.0])  # the model fails for v_x >= 1
    expect_stop(h, cause, level)
    h.state.velocity = np.zeros(3)
    resumes(h)


def test_hot_swap_to_truncated_model_keeps_planning(harness_factory, models, tmp_path):
    h = driving(harness_factory, models.go_to_goal)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(models.go_to_goal, "rb").read()[:500])
    [res] = h.set_params(model_path=str(truncated))
    assert not res.successful and "cannot load" in res.reason
    h.clear()
    assert h.wait_count("trajectory", 5, 5)
