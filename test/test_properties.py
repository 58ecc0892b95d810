"""For any input, the tensor builders and the safety check return finite values in range or raise a
documented ValueError — never another exception, never NaN. Each test states when an input is valid:
a valid input must not raise and an invalid one must (so a builder that always raised would fail)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import estimate_acceleration
from plan_ga_ros.planner import PlannerConfig, make_safe
from plan_ga_ros.safety import validate_plan
from plan_ga_ros.tensors import (
    MAX_COORDINATE,
    MAX_YAW,
    Grid,
    costmap_metadata,
    costmap_window,
    goal_relative,
    robot_state,
)

SPEC = ModelSpec()
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
reasonable = st.floats(-1e3, 1e3)


def valid_pose(pose) -> bool:
    """What ``tensors.check_pose`` accepts."""
    x, y, yaw = pose
    return (all(math.isfinite(v) for v in pose) and abs(x) <= MAX_COORDINATE and abs(y) <= MAX_COORDINATE
            and abs(yaw) <= MAX_YAW)


def outcome(build):
    """(result, None) or (None, the ValueError); any other exception propagates and fails the test."""
    try:
        return build(), None
    except ValueError as exc:
        return None, exc


@settings(max_examples=300, deadline=None)
@given(w=st.integers(-5, 60), h=st.integers(-5, 60), n=st.integers(0, 3700), res=anything,
       origin=st.tuples(anything, anything, anything), pose=st.tuples(anything, anything, anything),
       unknown=st.floats(-1, 2), seed=st.integers(0, 1000))
def test_costmap_window_total(w, h, n, res, origin, pose, unknown, seed):
    data = np.random.default_rng(seed).integers(-128, 128, size=n).astype(np.int8)
    grid, error = outcome(lambda: Grid.from_flat(data, w, h, res, origin))
    grid_ok = (w > 0 and h > 0 and math.isfinite(res) and res >= 1e-6 and res * max(w, h) <= MAX_COORDINATE
               and valid_pose(origin) and n == w * h)
    assert (error is None) == grid_ok, f"grid valid={grid_ok} but raised {error!r}"
    if error is not None:
        return
    window, error = outcome(lambda: costmap_window(grid, np.array(pose), SPEC, unknown))
    assert (error is None) == (valid_pose(pose) and 0.0 <= unknown <= 1.0), f"raised {error!r}"
    if error is None:
        assert window.shape == (50, 50) and window.dtype == np.float32
        assert np.isfinite(window).all() and window.min() >= 0.0 and window.max() <= 1.0


@settings(max_examples=300, deadline=None)
@given(robot=st.tuples(anything, anything, anything), goal=st.tuples(anything, anything, anything), clip=anything)
def test_goal_relative_total(robot, goal, clip):
    g, error = outcome(lambda: goal_relative(np.array(robot), np.array(goal), clip))
    valid = valid_pose(robot) and valid_pose(goal) and 0 < clip <= MAX_COORDINATE
    assert (error is None) == valid, f"valid={valid} but raised {error!r}"
    if error is None:
        assert np.isfinite(g).all() and np.hypot(g[0], g[1]) <= clip * (1 + 1e-5) + 1e-6
        assert -np.pi - 1e-6 <= g[2] <= np.pi + 1e-6


@settings(max_examples=300, deadline=None)
@given(values=st.lists(anything, min_size=9, max_size=9), decay=anything, res=anything)
def test_state_and_metadata_total(values, decay, res):
    s, error = outcome(lambda: robot_state(values[:3], values[3:6], values[6:]))
    rates = values[3:]
    valid = valid_pose(values[:3]) and all(math.isfinite(v) and abs(v) <= 1e3 for v in rates)
    assert (error is None) == valid, f"valid={valid} but raised {error!r}"
    if error is None:  # every field fits float32, the heading is wrapped
        assert np.isfinite(s).all() and -np.pi <= s[2] <= np.pi
    m, error = outcome(lambda: costmap_metadata(decay, res))
    assert (error is None) == (0 <= decay <= 1e3 and 1e-6 <= res <= 1e3), f"raised {error!r}"
    if error is None:
        assert np.isfinite(m).all() and m[1] > 0


@pytest.mark.parametrize("yaw", [3.4e38, 1.7976931348623157e308, -3.4028236e38, 1e6 + 1])
def test_a_finite_but_absurd_yaw_is_refused_not_turned_into_inf(yaw):
    """Found by a random run: a yaw of 3.4e38 became inf in the float32 state tensor."""
    with pytest.raises(ValueError, match="yaw"):
        robot_state([0.0, 0.0, yaw], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="yaw"):
        goal_relative(np.array([0.0, 0.0, yaw]), np.zeros(3), 2.0)
    state = robot_state([0.0, 0.0, 1e6 - 1], [0, 0, 0], [0, 0, 0])  # many turns, but an angle: wrapped
    assert -np.pi <= state[2] <= np.pi


@settings(max_examples=300, deadline=None)
@given(controls=st.lists(anything, min_size=60, max_size=60), prev=st.tuples(reasonable, reasonable, reasonable),
       velocity=st.tuples(reasonable, reasonable, reasonable), wall=st.integers(0, 49), radius=st.floats(0, 1),
       lookahead=st.floats(0, 5))
def test_safety_never_raises_and_only_passes_finite_plans_in_limits(controls, prev, velocity, wall, radius,
                                                                   lookahead):
    window = np.zeros((50, 50), np.float32)
    window[:, wall] = 1.0
    cfg = PlannerConfig(robot_radius=radius, collision_lookahead_time=lookahead)
    plan, check = make_safe(np.array(controls), window, np.array(prev), np.array(velocity), SPEC, cfg)
    raw = np.array(controls).reshape(20, 3)
    if not np.isfinite(raw).all():
        assert not check.ok and "NaN or inf" in check.reason
    if check.ok:
        assert np.isfinite(plan).all()
        lo, hi = np.array(cfg.limits.velocity_low), np.array(cfg.limits.velocity_high)
        assert (plan[1:] >= lo - 1e-9).all() and (plan[1:] <= hi + 1e-9).all()
        assert np.all(np.abs(plan[0] - np.array(prev)) <= np.array(cfg.limits.acceleration) * cfg.control_period
                      + 1e-9)
        assert check.relative_poses.shape == (21, 3) and np.isfinite(check.relative_poses).all()
    direct = validate_plan(raw, window, SPEC, radius, lookahead)
    if not np.isfinite(raw).all():
        assert not direct.ok and "non-finite" in direct.reason
    elif direct.ok:  # validate_plan does not clip: what it accepts is within the limits and rolls out finite
        lo, hi = np.array(SPEC.limits.velocity_low), np.array(SPEC.limits.velocity_high)
        assert (raw >= lo - 1e-9).all() and (raw <= hi + 1e-9).all() and np.isfinite(direct.relative_poses).all()


@settings(max_examples=300, deadline=None)
@given(t=st.lists(anything, min_size=0, max_size=12), v=st.lists(anything, min_size=36, max_size=36))
def test_acceleration_estimate_total(t, v):
    n = len(t)
    vel = np.array(v[: 3 * n]).reshape(n, 3)
    a, error = outcome(lambda: estimate_acceleration(np.array(t), vel, 0.2, SPEC.limits))
    finite = np.isfinite(t).all() and np.isfinite(vel).all()
    if error is not None:  # non-finite input, or finite values so large that the slope overflows
        assert not finite or max(np.abs(t).max(initial=0.0), np.abs(vel).max(initial=0.0)) > 1e100, repr(error)
        return
    assert finite
    assert np.isfinite(a).all() and (np.abs(a) <= np.array(SPEC.limits.acceleration) + 1e-12).all()
