"""Rollout against closed-form arcs, limits, acceleration estimate, collision check, plan validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plan_ga_ros.contract import Limits, ModelSpec
from plan_ga_ros.kinematics import clip_controls, compose, estimate_acceleration, limit_change, rollout
from plan_ga_ros.planner import PlannerConfig, input_problem, make_safe
from plan_ga_ros.safety import collisions, goal_reached, validate_plan

SPEC = ModelSpec()


@settings(max_examples=200, deadline=None)
@given(v=st.floats(-1, 1), w=st.floats(-3, 3), x=st.floats(-10, 10), y=st.floats(-10, 10),
       th=st.floats(-np.pi, np.pi), steps=st.integers(1, 40), dt=st.floats(0.01, 0.2))
def test_constant_controls_follow_the_closed_form_arc(v, w, x, y, th, steps, dt):
    poses = rollout(np.array([x, y, th]), np.tile([v, 0.0, w], (steps, 1)), dt)
    t = np.arange(steps + 1) * dt
    if abs(w) > 1e-9:  # 1 - cos(a) = 2 sin²(a/2) keeps tiny yaw rates accurate
        rel_x, rel_y = v / w * np.sin(w * t), v / w * 2 * np.sin(w * t / 2) ** 2
    else:
        rel_x, rel_y = v * t, np.zeros_like(t)
    expected = compose(np.array([x, y, th]), np.stack([rel_x, rel_y, w * t], -1))
    np.testing.assert_allclose(poses, expected, atol=1e-7)


def test_omni_lateral_motion_and_batching():
    poses = rollout(np.zeros((4, 3)), np.tile([0.0, 0.5, 0.0], (4, 10, 1)), 0.1)
    assert poses.shape == (4, 11, 3)
    np.testing.assert_allclose(poses[:, -1], np.tile([0.0, 0.5, 0.0], (4, 1)), atol=1e-12)


def test_limits_and_rate_limit():
    lim = Limits(min_v_x=-0.1, max_v_x=0.5, max_v_y=0.0, max_omega=1.0)
    np.testing.assert_allclose(clip_controls([1.0, 0.3, -2.0], lim), [0.5, 0.0, -1.0])
    np.testing.assert_allclose(clip_controls([0.5, 0.0, 0.0], lim, speed_limit=0.2), [0.2, 0, 0])
    np.testing.assert_allclose(limit_change([0.5, 0, 1.0], [0, 0, 0], lim, 0.05), [0.05, 0, 0.15])


def test_acceleration_estimate_is_a_clamped_slope():
    lim = Limits()
    t = np.arange(0, 1, 0.02)
    v = np.stack([0.5 * t, np.zeros_like(t), 2.0 * t], -1)
    np.testing.assert_allclose(estimate_acceleration(t, v, 0.2, lim), [0.5, 0, 2.0], atol=1e-9)
    fast = np.stack([10 * t, 0 * t, -10 * t], -1)
    np.testing.assert_allclose(estimate_acceleration(t, fast, 0.2, lim), [1.0, 0, -3.0])
    assert np.all(estimate_acceleration(t[:1], v[:1], 0.2, lim) == 0)


def wall_window(x_m: float) -> np.ndarray:
    """A window with a lethal wall across the path at robot-frame x = x_m."""
    w = np.zeros((50, 50), np.float32)
    w[:, int(np.floor(x_m / SPEC.resolution + 25))] = 1.0
    return w


def test_forward_plan_into_a_wall_collides_and_turning_in_place_does_not():
    window = wall_window(0.5)
    forward = np.tile([0.5, 0.0, 0.0], (20, 1))
    check = validate_plan(forward, window, SPEC, 0.2, 1.0)
    assert not check.ok and "collides" in check.reason
    assert validate_plan(np.tile([0.0, 0.0, 1.0], (20, 1)), window, SPEC, 0.2, 1.0).ok
    # The same wall beyond the lookahead does not reject the plan.
    assert validate_plan(np.tile([0.1, 0.0, 0.0], (20, 1)), wall_window(1.5), SPEC, 0.2, 1.0).ok
    assert not validate_plan(np.full((20, 3), np.nan), window, SPEC, 0.2, 1.0).ok


def test_collisions_vectorised_over_a_population():
    window = wall_window(0.5)
    poses = np.zeros((7, 5, 3))
    poses[..., 0] = np.linspace(0, 0.6, 5)
    hit = collisions(window, poses, SPEC, 0.2)
    assert hit.shape == (7, 5) and hit[:, -1].all() and not hit[:, 0].any()


def test_make_safe_clips_and_rate_limits_the_first_command():
    cfg = PlannerConfig(control_period=0.05)
    raw = np.tile([5.0, 1.0, 9.0], 20)
    controls, check = make_safe(raw, np.zeros((50, 50), np.float32), np.zeros(3), SPEC, cfg)
    assert check.ok
    np.testing.assert_allclose(controls[0], [0.05, 0.0, 0.15])
    np.testing.assert_allclose(controls[1], [0.5, 0.0, 1.5])
    _, check = make_safe(np.full(60, np.inf), np.zeros((50, 50)), np.zeros(3), SPEC, cfg)
    assert not check.ok and "NaN or inf" in check.reason


def test_goal_check_and_input_gate():
    assert goal_reached(np.array([1.0, 1.0, 0.1]), np.array([1.1, 1.0, 0.0]), 0.15, 0.25)
    assert not goal_reached(np.array([1.0, 1.0, 0.5]), np.array([1.1, 1.0, 0.0]), 0.15, 0.25)
    cfg = PlannerConfig()
    assert input_problem(10.0, 9.5, 9.9, True, cfg) is None
    assert "costmap is stale" in input_problem(10.0, 8.5, 9.9, True, cfg)
    assert "odometry is stale" in input_problem(10.0, 9.5, 9.0, True, cfg)
    assert "odometry is stale" in input_problem(10.0, 9.5, 20.0, True, cfg)  # from the future
    assert input_problem(10.0, None, 9.9, True, cfg) == "no costmap received"
    assert input_problem(10.0, 9.9, 9.9, False, cfg) == "no goal"


def test_limits_validate():
    with pytest.raises(ValueError):
        Limits(min_v_x=1.0, max_v_x=0.5)
    with pytest.raises(ValueError):
        Limits(max_omega=-1.0)


def test_stateful_goal_checker_latches_position():
    from plan_ga_ros.safety import goal_check

    goal = np.array([1.0, 0.0, 0.0])
    reached, latched = goal_check(np.array([1.1, 0.0, 2.0]), goal, 0.15, 0.25, True, False)
    assert not reached and latched
    # Drifted to 0.3 m while turning: still accepted once the heading is right (Nav2's stateful checker).
    assert goal_check(np.array([1.3, 0.0, 0.1]), goal, 0.15, 0.25, True, latched)[0]
    assert not goal_check(np.array([1.3, 0.0, 0.1]), goal, 0.15, 0.25, False, latched)[0]


def test_a_robot_starting_in_collision_may_back_out_but_not_go_deeper():
    window = np.zeros((50, 50), np.float32)
    window[:, 27:] = 0.99  # inscribed band from x = 0.2 m
    window[:, 28:] = 1.0  # obstacle from x = 0.3 m: the footprint (r 0.2) already touches it... almost
    window[:, 26] = 0.99  # and the robot centre (x in [0.0, 0.1)) is inside the inscribed band
    window[:, 25] = 0.99
    away = np.tile([0.0, 0.0, 0.0], (20, 1))
    away[:, 2] = 1.5  # turn in place: never deeper
    assert validate_plan(away, window, SPEC, 0.2, 1.0).ok
    towards = np.tile([0.3, 0.0, 0.0], (20, 1))
    check = validate_plan(towards, window, SPEC, 0.2, 1.0)
    assert not check.ok and "collides" in check.reason
    # Turn around and drive away (out of the band): accepted.
    back = np.zeros((20, 3))
    back[:3, 2] = np.pi / 0.3  # about 180° in 0.3 s (validate_plan does not clip; make_safe would)
    back[3:, 0] = 0.3
    assert validate_plan(back, window, SPEC, 0.2, 1.0).ok


def test_ga_escapes_from_a_start_in_collision():
    from plan_ga_ros.ga import GAPlanner

    window = np.zeros((50, 50), np.float32)
    window[:, 25:] = 0.99
    window[:, 28:] = 1.0
    plan = GAPlanner(SPEC, SPEC.limits, 0.2, seed=0).plan(window, np.zeros(3), np.array([-1.5, 0.0, 0.0]), 2.0)
    assert validate_plan(plan, window, SPEC, 0.2, 1.0).ok
    end = rollout(np.zeros(3), plan, SPEC.dt)[-1]
    assert abs((end[2] + np.pi) % (2 * np.pi) - np.pi) > np.pi / 2  # it turned around, toward the goal


def test_world_clearance_is_exact_to_the_obstacle_square():
    from plan_ga_ros.sim.world import make_world

    occ = np.zeros((40, 40), bool)
    occ[20, 20] = True  # the square [1.0, 1.05] x [1.0, 1.05]
    world = make_world(occ, 0.05, 3.0)
    assert world.clearance(np.array([0.75, 1.025])) == pytest.approx(0.05)  # 0.25 to the face, radius 0.2
    corner = 1.0 - 0.3 / np.sqrt(2)
    assert world.clearance(np.array([corner, corner])) == pytest.approx(0.1)  # 0.3 to the corner
    assert world.clearance(np.array([1.025, 1.1])) < 0  # touching
