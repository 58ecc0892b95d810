"""For any input, the tensor builders and the safety check return finite values in range or raise a
documented ValueError — never another exception, never NaN."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import estimate_acceleration
from plan_ga_ros.planner import PlannerConfig, make_safe
from plan_ga_ros.safety import validate_plan
from plan_ga_ros.tensors import Grid, costmap_metadata, costmap_window, goal_relative, robot_state

SPEC = ModelSpec()
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
reasonable = st.floats(-1e3, 1e3)


@settings(max_examples=300, deadline=None)
@given(w=st.integers(-5, 60), h=st.integers(-5, 60), n=st.integers(0, 3700), res=anything,
       origin=st.tuples(anything, anything, anything), pose=st.tuples(anything, anything, anything),
       unknown=st.floats(-1, 2), seed=st.integers(0, 1000))
def test_costmap_window_total(w, h, n, res, origin, pose, unknown, seed):
    data = np.random.default_rng(seed).integers(-128, 128, size=n).astype(np.int8)
    try:
        grid = Grid.from_flat(data, w, h, res, origin)
        window = costmap_window(grid, np.array(pose), SPEC, unknown)
    except ValueError:
        return
    assert window.shape == (50, 50) and window.dtype == np.float32
    assert np.isfinite(window).all() and window.min() >= 0.0 and window.max() <= 1.0


@settings(max_examples=300, deadline=None)
@given(robot=st.tuples(anything, anything, anything), goal=st.tuples(anything, anything, anything), clip=anything)
def test_goal_relative_total(robot, goal, clip):
    try:
        g = goal_relative(np.array(robot), np.array(goal), clip)
    except ValueError:
        return
    assert np.isfinite(g).all() and np.hypot(g[0], g[1]) <= clip * (1 + 1e-5) + 1e-6
    assert -np.pi - 1e-6 <= g[2] <= np.pi + 1e-6


@settings(max_examples=200, deadline=None)
@given(values=st.lists(anything, min_size=9, max_size=9), decay=anything, res=anything)
def test_state_and_metadata_total(values, decay, res):
    try:
        s = robot_state(values[:3], values[3:6], values[6:])
        assert np.isfinite(s).all()
    except ValueError:
        pass
    try:
        m = costmap_metadata(decay, res)
        assert np.isfinite(m).all() and m[1] > 0
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(controls=st.lists(anything, min_size=60, max_size=60), prev=st.tuples(reasonable, reasonable, reasonable),
       wall=st.integers(0, 49), radius=st.floats(0, 1), lookahead=st.floats(0, 5))
def test_safety_never_raises_and_only_passes_finite_plans_in_limits(controls, prev, wall, radius, lookahead):
    window = np.zeros((50, 50), np.float32)
    window[:, wall] = 1.0
    cfg = PlannerConfig(robot_radius=radius, collision_lookahead_time=lookahead)
    plan, check = make_safe(np.array(controls), window, np.array(prev), SPEC, cfg)
    if check.ok:
        assert np.isfinite(plan).all()
        lo, hi = np.array(cfg.limits.velocity_low), np.array(cfg.limits.velocity_high)
        assert (plan[1:] >= lo - 1e-9).all() and (plan[1:] <= hi + 1e-9).all()
        assert np.all(np.abs(plan[0] - np.array(prev)) <= np.array(cfg.limits.acceleration) * cfg.control_period
                      + 1e-9)
    raw = np.array(controls).reshape(20, 3)
    direct = validate_plan(raw, window, SPEC, radius, lookahead)
    assert direct.ok == (np.isfinite(raw).all() and direct.ok)


@settings(max_examples=200, deadline=None)
@given(t=st.lists(anything, min_size=0, max_size=12), v=st.lists(anything, min_size=36, max_size=36))
def test_acceleration_estimate_total(t, v):
    n = len(t)
    try:
        a = estimate_acceleration(np.array(t), np.array(v[: 3 * n]).reshape(n, 3), 0.2, SPEC.limits)
    except ValueError:
        return
    assert np.isfinite(a).all() and (np.abs(a) <= np.array(SPEC.limits.acceleration) + 1e-12).all()
