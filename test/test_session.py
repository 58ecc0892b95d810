"""PlannerSession without ROS: input gates and typed stop reasons, the goal latch, path carrot and
pruning, the odometry history, the fallback with hysteresis, recovery, GOAL_FAILED, and that nothing
(NaN, inf, wrong shapes, wrong types) ever makes it raise or move the robot on bad input.

The network is any feed → plan callable (the session's ``Policy``); here small numpy policies whose
plans the safety layer accepts or rejects on purpose. The GA is the real one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plan_ga_ros import parameters
from plan_ga_ros.contract import GOAL_INPUT, ModelSpec
from plan_ga_ros.ga import GAConfig
from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.session import Decision, Level, PlannerSession, StopReason
from plan_ga_ros.tensors import Grid

SPEC = ModelSpec()
SMALL_GA = GAConfig(population=24, generations=3)  # the real GA, kept quick


def grid(wall_x: float | None = None, frame: str = "odom", size: float = 6.0, res: float = 0.05) -> Grid:
    """A free costmap centred on the origin; optionally a lethal wall across x ≥ ``wall_x``."""
    n = int(round(size / res))
    data = np.zeros((n, n), np.int8)
    if wall_x is not None:
        data[:, int(np.floor((wall_x + size / 2) / res)):] = 100
    return Grid(data, res, (-size / 2, -size / 2, 0.0), frame)


def constant(twist) -> callable:
    """A network that always plans the same twist."""
    plan = np.tile(np.asarray(twist, np.float32), SPEC.steps)[None]
    return lambda feed: plan


class Switchable:
    """A network whose constant twist the test changes."""

    def __init__(self, twist) -> None:
        self.twist = twist

    def __call__(self, feed):
        return np.tile(np.asarray(self.twist, np.float32), SPEC.steps)[None]


def session(network=None, wall_x=None, goal=(1.5, 0.0, 0.0), t=0.0, velocity=(0.0, 0.0, 0.0),
            pose=(0.0, 0.0, 0.0), **params) -> PlannerSession:
    """A session with fresh costmap, odometry and goal at time ``t``."""
    cfg = PlannerConfig.from_params({"planner": "onnx" if network is not None else "ga", **params}, SPEC)
    s = PlannerSession(cfg, SPEC, network, SMALL_GA, seed=0)
    assert s.set_costmap(grid(wall_x), t) is None
    assert s.set_odometry(np.array(pose), np.array(velocity), t) is None
    if goal is not None:
        assert s.set_goal(np.array(goal), t, "odom") is None
    return s


def stopped(d: Decision) -> bool:
    return not d.executing and np.all(d.command == 0.0)


# ---------------------------------------------------------------- gates and typed stop reasons


def test_every_stop_reason_has_a_message_and_a_level():
    for reason in StopReason:
        assert isinstance(reason.message, str) and reason.message
        assert isinstance(reason.level, Level)
    assert StopReason.NONE.level is Level.OK and StopReason.GOAL_FAILED.level is Level.ERROR


def test_inputs_are_gated_in_order_with_typed_reasons():
    cfg = PlannerConfig.from_params({"planner": "onnx"}, SPEC)
    s = PlannerSession(cfg, SPEC, constant((0.2, 0.0, 0.0)))
    d = s.tick(0.0)
    assert d.reason is StopReason.NO_COSTMAP and stopped(d) and not d.send  # never moved: nothing to send
    s.set_costmap(grid(), 0.0)
    assert s.tick(0.0).reason is StopReason.NO_ODOMETRY
    s.set_odometry(np.zeros(3), np.zeros(3), 0.0)
    assert s.tick(0.0).reason is StopReason.NO_GOAL
    s.set_goal(np.array([1.5, 0.0, 0.0]), 0.0)
    d = s.tick(0.01)
    assert d.executing and d.planner == "onnx" and d.send and d.command[0] > 0
    assert d.message == "planning" and d.path.shape == (SPEC.steps + 1, 3)


@pytest.mark.parametrize("which, reason", [("costmap", StopReason.COSTMAP_STALE),
                                           ("odometry", StopReason.ODOMETRY_STALE)])
@pytest.mark.parametrize("offset", [+5.0, -5.0])  # old, or stamped in the future (a clock that jumped)
def test_stale_inputs_stop_the_robot_and_fresh_ones_resume(which, reason, offset):
    s = session(constant((0.2, 0.0, 0.0)), t=10.0)
    assert s.tick(10.0).executing
    if which == "costmap":
        s.set_costmap(grid(), 10.0 - offset)
    else:
        s.set_odometry(np.zeros(3), np.array([0.2, 0.0, 0.0]), 10.0 - offset if offset > 0 else 10.0 + 5.0)
    d = s.tick(10.0)
    assert d.reason is reason and d.reason.level is Level.WARN and "timeout" in d.detail
    assert stopped(d) and d.send  # it was moving: the zero is sent
    s.set_costmap(grid(), 10.1)
    s.set_odometry(np.zeros(3), np.zeros(3), 10.1)
    assert s.tick(10.1).executing


def test_refused_inputs_stop_with_the_refusal_until_accepted():
    s = session(constant((0.2, 0.0, 0.0)))
    s.reject("transform", "no transform map -> odom")
    d = s.tick(0.0)
    assert d.reason is StopReason.NO_TRANSFORM and "map -> odom" in d.message
    s.accept("transform")
    assert s.tick(0.0).executing
    assert s.set_odometry(np.array([np.nan, 0.0, 0.0]), np.zeros(3), 0.0) is not None
    d = s.tick(0.0)
    assert d.reason is StopReason.BAD_ODOMETRY and "not finite" in d.detail
    assert s.set_odometry(np.zeros(3), np.array([99.0, 0.0, 0.0]), 0.0) is not None  # beyond any robot
    assert s.tick(0.0).reason is StopReason.BAD_ODOMETRY
    s.set_odometry(np.zeros(3), np.zeros(3), 0.0)
    assert s.tick(0.0).executing


def test_frames_must_agree():
    s = session(constant((0.2, 0.0, 0.0)))
    s.set_costmap(grid(frame="map"), 0.0)
    d = s.tick(0.0)
    assert d.reason is StopReason.FRAME_MISMATCH and "'map'" in d.detail
    s.set_costmap(grid(), 0.0)
    s.set_goal(np.array([1.5, 0.0, 0.0]), 0.0, "map")
    assert s.tick(0.0).reason is StopReason.FRAME_MISMATCH


def test_off_the_costmap_stops_unless_unknown_space_is_allowed():
    s = session(constant((0.2, 0.0, 0.0)), pose=(10.0, 0.0, 0.0), goal=(11.0, 0.0, 0.0))
    assert s.tick(0.0).reason is StopReason.OFF_MAP
    s = session(constant((0.2, 0.0, 0.0)), pose=(10.0, 0.0, 0.0), goal=(11.0, 0.0, 0.0), allow_unknown=True)
    assert s.tick(0.0).executing


def test_no_model_and_inference_errors_stop_the_robot():
    s = session(constant((0.2, 0.0, 0.0)))
    s.set_model(None, SPEC)
    d = s.tick(0.0)
    assert d.reason is StopReason.NO_MODEL and d.reason.level is Level.ERROR

    def broken(feed):
        raise RuntimeError("inference exploded")

    s.set_model(broken, SPEC)
    d = s.tick(0.0)
    assert d.reason is StopReason.INFERENCE_ERROR and "exploded" in d.detail and stopped(d)


def test_goal_timeout_expires_the_goal_for_good():
    s = session(constant((0.2, 0.0, 0.0)), goal_timeout=2.0)
    s.set_costmap(grid(), 1.0)
    s.set_odometry(np.zeros(3), np.zeros(3), 1.0)
    assert s.tick(1.0).executing
    s.set_costmap(grid(), 3.0)
    s.set_odometry(np.zeros(3), np.zeros(3), 3.0)
    assert s.tick(3.0).reason is StopReason.GOAL_EXPIRED
    s.set_costmap(grid(), 3.1)
    assert s.tick(3.1).reason is StopReason.GOAL_EXPIRED and not s.has_goal
    s.set_goal(np.array([1.5, 0.0, 0.0]), 3.1)
    assert s.tick(3.1).executing


def test_a_colliding_network_plan_is_rejected_with_the_reason():
    s = session(constant((0.5, 0.0, 0.0)), wall_x=0.35)
    d = s.tick(0.0)
    assert d.reason is StopReason.PLAN_REJECTED and "collides" in d.detail and d.network_ok is False
    assert s.rejected == 1 and stopped(d)


# ---------------------------------------------------------------- the goal latch


def test_a_reached_goal_stays_reached_until_a_new_goal():
    s = session(constant((0.2, 0.0, 0.0)), goal=(0.05, 0.0, 0.0))
    d = s.tick(0.0)
    assert d.reason is StopReason.GOAL_REACHED and not s.has_goal
    s.set_odometry(np.array([1.0, 0.0, 0.0]), np.zeros(3), 0.1)  # pushed away: still done
    assert s.tick(0.1).reason is StopReason.GOAL_REACHED
    s.set_goal(np.array([1.5, 0.0, 0.0]), 0.1)
    assert s.has_goal and s.tick(0.1).executing


def test_stateful_goal_checker_latches_the_position_while_turning():
    s = session(constant((0.0, 0.0, 1.0)), goal=(0.1, 0.0, 1.0))  # in position, heading off by 1 rad
    assert s.tick(0.0).executing
    s.set_odometry(np.array([0.3, 0.0, 1.0]), np.zeros(3), 0.1)  # drifted 0.2 m while turning
    assert s.tick(0.1).reason is StopReason.GOAL_REACHED
    s = session(constant((0.0, 0.0, 1.0)), goal=(0.1, 0.0, 1.0), stateful_goal_checker=False)
    s.tick(0.0)
    s.set_odometry(np.array([0.3, 0.0, 1.0]), np.zeros(3), 0.1)
    assert s.tick(0.1).executing


# ---------------------------------------------------------------- path following


def straight_path(length: float = 4.0, step: float = 0.05) -> np.ndarray:
    x = np.arange(0.0, length + 1e-9, step)
    return np.stack([x, np.zeros_like(x), np.zeros_like(x)], -1)


def test_path_carrot_is_ahead_on_the_path_and_passed_poses_are_pruned():
    s = session(constant((0.2, 0.0, 0.0)), goal=None, carrot_distance=1.0)
    s.set_costmap(grid(size=10.0), 0.0)
    s.set_path(straight_path(), 0.0, "odom")
    n = len(s.remaining_path)
    d = s.tick(0.0)
    assert d.executing and d.carrot[1] == pytest.approx(0.0)
    # Short of the path's end the carrot is pushed out to the clip distance along its bearing.
    assert d.carrot[0] == pytest.approx(SPEC.goal_clip_distance * 1.01, abs=1e-6)
    s.set_odometry(np.array([1.5, 0.0, 0.0]), np.zeros(3), 0.1)
    d = s.tick(0.1)
    assert len(s.remaining_path) < n and s.remaining_path[0, 0] == pytest.approx(1.5)
    s.set_odometry(np.array([0.5, 0.0, 0.0]), np.zeros(3), 0.2)  # moved back: passed poses stay passed
    s.tick(0.2)
    assert s.remaining_path[0, 0] == pytest.approx(1.5)
    s.set_odometry(np.array([3.5, 0.0, 0.0]), np.zeros(3), 0.3)  # near the end: the carrot is the end
    d = s.tick(0.3)
    np.testing.assert_allclose(d.carrot, [4.0, 0.0, 0.0], atol=1e-9)
    assert s.goal_pose[0] == pytest.approx(4.0)


def test_a_bad_path_is_refused_and_a_goal_replaces_a_path():
    s = session(constant((0.2, 0.0, 0.0)), goal=None)
    assert s.set_path(np.zeros((0, 3)), 0.0) is not None
    assert s.tick(0.0).reason is StopReason.BAD_PATH
    assert s.set_path(straight_path(), 0.0) is None and s.tick(0.0).executing
    s.set_goal(np.array([1.0, 1.0, 0.0]), 0.0)
    assert s.remaining_path is None and s.tick(0.0).carrot[1] == pytest.approx(1.0)


# ---------------------------------------------------------------- odometry history


def test_acceleration_comes_from_the_odometry_history_which_resets_when_time_goes_back():
    s = session(constant((0.2, 0.0, 0.0)))
    for k in range(1, 21):
        t = 0.02 * k
        s.set_odometry(np.zeros(3), np.array([0.5 * t, 0.0, 0.0]), t)
    np.testing.assert_allclose(s.acceleration(), [0.5, 0.0, 0.0], atol=1e-9)
    s.set_odometry(np.zeros(3), np.array([0.2, 0.0, 0.0]), 0.1)  # a simulation reset: time went back
    np.testing.assert_allclose(s.acceleration(), 0.0)
    s.set_odometry(np.zeros(3), np.array([0.25, 0.0, 0.0]), 0.2)
    np.testing.assert_allclose(s.acceleration(), [0.5, 0.0, 0.0], atol=1e-9)  # from the new history only


def test_a_repeated_odometry_stamp_keeps_the_history():
    s = session(constant((0.2, 0.0, 0.0)))
    for k in range(1, 11):
        t = 0.02 * k
        s.set_odometry(np.zeros(3), np.array([0.5 * t, 0.0, 0.0]), t)
    s.set_odometry(np.zeros(3), np.array([0.1, 0.0, 0.0]), 0.2)  # the same message again
    np.testing.assert_allclose(s.acceleration(), [0.5, 0.0, 0.0], atol=1e-9)


# ---------------------------------------------------------------- fallback, recovery, failure


def test_fallback_after_n_rejections_and_back_after_the_hold_time():
    net = Switchable((0.5, 0.0, 0.0))
    # fallback_compare_period 0: here only the rejections hand over (the comparison has its own tests)
    s = session(net, wall_x=0.5, goal=(0.0, 1.5, 0.0), planner="hybrid", fallback_after_rejections=3,
                fallback_hold_time=0.5, fallback_compare_period=0.0)
    for k in range(2):
        d = s.tick(0.05 * k)
        assert d.reason is StopReason.PLAN_REJECTED and not s.using_fallback
    d = s.tick(0.1)  # the third rejection: the GA drives
    assert d.executing and d.planner == "ga" and s.using_fallback and d.network_ok is False
    assert d.ga_warm is False  # its first plan
    net.twist = (0.0, 0.0, 0.5)  # the network's plans are accepted again...
    t = 0.15
    while t < 0.1 + 0.5 - 1e-9:  # ...but the GA keeps driving for fallback_hold_time
        s.set_costmap(grid(0.5), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        d = s.tick(t)
        assert d.planner == "ga" and d.network_ok and d.ga_warm, t  # from its last plan
        t += 0.1
    s.set_costmap(grid(0.5), 0.8)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.8)
    d = s.tick(0.8)
    assert d.planner == "onnx" and not s.using_fallback


def test_no_progress_is_recorded_with_the_reason_and_hands_over_to_the_fallback():
    """Nav2's progress checker: accepted plans that leave the robot where it is (here: a network that
    creeps at 1 cm/s while the base never moves) count as a stall after movement_time_allowance."""
    net = constant((0.01, 0.0, 0.0))
    s = session(net, planner="hybrid", required_movement_radius=0.5, movement_time_allowance=2.0,
                fallback_compare_period=0.0)  # the progress checker alone (the comparison would act at once)
    t = 0.0
    while t < 2.0 + 1e-9:
        s.set_costmap(grid(), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        d = s.tick(t)
        assert d.planner == "onnx" and s.last_stall is None, t
        t = round(t + 0.1, 6)
    s.set_costmap(grid(), t)
    s.set_odometry(np.zeros(3), np.zeros(3), t)
    d = s.tick(t)  # the allowance ran out: the fallback plans
    assert d.planner == "ga" and s.using_fallback and s.stalls == 1
    assert s.last_stall[0] == t and "no progress: moved less than 0.5 m in 2 s" in s.last_stall[1]
    plain = session(net, planner="onnx", required_movement_radius=0.5, movement_time_allowance=2.0)
    for t in np.arange(0.0, 2.6, 0.1):
        plain.set_costmap(grid(), t)
        plain.set_odometry(np.zeros(3), np.zeros(3), t)
        d = plain.tick(t)
    assert d.planner == "onnx" and plain.stalls == 1 and "fallback" not in plain.last_stall[1]


def _drive(s: PlannerSession, t0: float, t1: float, dt: float = 0.05) -> list[Decision]:
    """Tick from t0 to t1 (exclusive) with fresh inputs at the origin."""
    out = []
    for t in np.arange(t0, t1 - 1e-9, dt):
        t = round(float(t), 6)
        s.set_costmap(grid(), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        out.append(s.tick(t))
    return out


def test_a_network_that_creeps_is_overtaken_by_the_ga_at_the_next_comparison_and_gets_back_once_as_good():
    """fallback_compare_period: the GA also plans beside a driving network; its estimate says a 2 cm/s creep
    toward a goal 1.5 m ahead arrives ~0.9 s later than its own plan, more than the 0.5 s margin, so the GA
    drives at once (no 10 s wait for the progress checker), keeps driving while the network's plans stay worse,
    and hands back once they are not."""
    net = Switchable((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.5,
                fallback_hold_time=0.3)
    first = _drive(s, 0.0, 0.05)[0]
    assert first.planner == "ga" and s.using_fallback and s.takeovers == 1 and first.network_ok
    assert "sooner than the network's" in s.last_takeover[1] and s.stalls == 0
    assert all(d.planner == "ga" for d in _drive(s, 0.05, 2.0))  # accepted, but still worse: no hand-back
    net.twist = (0.5, 0.0, 0.0)  # now as good as the GA's plan
    after = [d.planner for d in _drive(s, 2.0, 3.0)]
    assert after[0] == "ga" and after[-1] == "onnx" and s.takeovers == 1, after


def test_the_ga_drives_on_while_the_network_is_within_the_margin_but_not_half_of_it():
    """Hysteresis: taken over beyond fallback_compare_margin (0.8 s; a 2 cm/s creep is ~0.9 s behind here),
    handed back only within half of it (0.4 s): 10 cm/s (~0.6 s behind) is not enough, 20 cm/s (~0.26 s) is."""
    net = Switchable((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.8,
                fallback_hold_time=0.2)
    assert _drive(s, 0.0, 0.05)[0].planner == "ga"
    net.twist = (0.1, 0.0, 0.0)
    assert all(d.planner == "ga" for d in _drive(s, 0.05, 1.5))
    net.twist = (0.2, 0.0, 0.0)
    assert _drive(s, 1.5, 2.5)[-1].planner == "onnx" and s.takeovers == 1


def test_a_network_plan_no_later_than_the_gas_drives_again_without_waiting_for_the_hold_time():
    """The hold time keeps a network that is behind the GA, if by less than it took over for (15 cm/s: 0.2-0.7 s
    behind), off the wheels; one whose plan the fallback's comparison judges no later than its own (full speed
    to the goal) drives again once judged so for AS_GOOD_TIME, long before the hold time."""
    net = Switchable((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.8,
                fallback_hold_time=5.0)
    assert _drive(s, 0.0, 0.05)[0].planner == "ga"
    net.twist = (0.15, 0.0, 0.0)
    assert all(d.planner == "ga" for d in _drive(s, 0.05, 2.0)) and s._as_good_since is None
    net.twist = (0.5, 0.0, 0.0)
    after = [d.planner for d in _drive(s, 2.0, 2.6)]  # judged as good from 2.0 s on: back after AS_GOOD_TIME
    assert after == ["ga"] * 5 + ["onnx"] * 7 and s.takeovers == 1, after


def test_a_rejected_network_plan_undoes_the_judgement_that_it_was_as_good():
    net = Switchable((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.8,
                fallback_hold_time=5.0)
    assert _drive(s, 0.0, 0.05)[0].planner == "ga"
    net.twist = (0.5, 0.0, 0.0)
    assert all(d.planner == "ga" for d in _drive(s, 0.05, 0.25))  # judged as good for 0.15 s...
    s.set_costmap(grid(wall_x=0.5), 0.25)  # ...but its next plan collides: rejected, and the GA drives on
    s.set_odometry(np.zeros(3), np.zeros(3), 0.25)
    d = s.tick(0.25)
    assert d.planner == "ga" and d.network_ok is False
    # accepted and as good again: the run of verdicts starts afresh (back at 0.3 + AS_GOOD_TIME, not at once)
    assert [d.planner for d in _drive(s, 0.3, 0.65)] == ["ga"] * 5 + ["onnx"] * 2


def test_a_network_rejected_every_other_few_ticks_does_not_stop_and_go():
    """After a takeover for rejections, plans that are accepted and as good as the GA's on a few ticks between
    rejections (a speck of noise in the costmap) do not hand back: the GA drives on instead of the robot
    stopping at each new run of rejections."""
    net = Switchable((0.5, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.8)
    planners = []
    for k in range(120):
        t = round(0.05 * k, 6)
        s.set_costmap(grid(wall_x=0.6 if k % 6 < 3 else None), t)  # the wall on 3 ticks of 6
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        planners.append(s.tick(t).planner)
    assert planners[:2] == ["", ""] and set(planners[2:]) == {"ga"}, "".join(p[:1] or "S" for p in planners)


def test_a_comparison_takeover_gives_the_ga_its_own_progress_allowance():
    """The network crept for 8.5 s of a 10 s allowance; the GA that takes over is not charged a stall at 10 s."""
    net = constant((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=0.0, movement_time_allowance=10.0)
    assert all(d.planner == "onnx" for d in _drive(s, 0.0, 8.5, dt=0.1))
    s.set_config(PlannerConfig.from_params({"planner": "hybrid", "fallback_compare_period": 1.0,
                                            "fallback_compare_margin": 0.5}, SPEC))
    after = _drive(s, 8.5, 10.5, dt=0.1)  # the base never moves, as before
    assert after[0].planner == "ga" and s.takeovers == 1
    assert all(d.planner == "ga" for d in after) and s.stalls == 0 and s.last_stall is None


def test_planner_ga_plans_exactly_as_a_bare_ga_even_across_a_late_tick():
    """planner: ga's commands do not depend on hybrid's rules (cached GA evaluation episodes rely on it): its
    plans equal a bare GAPlanner's on the same feeds, warm start kept across a tick that came late."""
    from plan_ga_ros.contract import COSTMAP_INPUT, STATE_INPUT
    from plan_ga_ros.ga import GAPlanner
    from plan_ga_ros.safety import MIN_LOOKAHEAD_TIME

    s = session(None, goal=(1.5, 0.5, 0.0))
    c = s.config
    bare = GAPlanner(SPEC, c.limits, c.robot_radius, SMALL_GA, 0, max(c.collision_lookahead_time, MIN_LOOKAHEAD_TIME),
                     control_period=c.control_period, speed_limit=c.speed_limit)
    for t in (0.0, 0.05, 0.1, 0.3, 0.35):  # 0.3: a late tick
        s.set_costmap(grid(), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        d = s.tick(t)
        f = d.feed
        want = bare.plan(f[COSTMAP_INPUT][0, 0], f[STATE_INPUT][0, 3:6].astype(np.float64),
                         f[GOAL_INPUT][0].astype(np.float64), c.goal_clip_distance, xy_tolerance=c.xy_goal_tolerance,
                         yaw_tolerance=c.yaw_goal_tolerance)
        np.testing.assert_array_equal(d.ga_raw.reshape(-1), want.reshape(-1))


def test_inside_the_goal_tolerance_a_network_turning_to_the_heading_keeps_driving():
    """The position is accepted (0.13 m from the goal, inside xy_goal_tolerance 0.15 m, stateful checker): a
    network that turns in place toward the goal's heading is on time, so the comparison leaves it driving; the
    GA is judged, and plans, toward the heading alone instead of the last centimetres to the exact point."""
    s = session(constant((0.0, 0.0, 1.2)), planner="hybrid", goal=(-0.13, 0.0, 1.0), fallback_compare_period=0.5,
                fallback_compare_margin=1.0)
    ticks = _drive(s, 0.0, 1.0)  # (the odometry stands still here: later the pace check would see no turn)
    assert all(d.planner == "onnx" for d in ticks) and s.takeovers == 0, s.last_takeover
    ga = ticks[0].ga_raw.reshape(SPEC.steps, 3)  # the GA's plan beside it (a small GA): turn in place, to +1 rad
    assert np.abs(ga[:10, 0]).max() < 0.1 and ga[:10, 2].sum() > 0.0


def test_inside_the_goal_tolerance_a_network_spinning_the_long_way_round_is_overtaken():
    """The goal checker accepts a heading within yaw_goal_tolerance: a network turning away from it (the long
    way round, ~5.3 rad at 1.2 rad/s) is judged by where the checker would accept it, and the GA takes over."""
    s = session(constant((0.0, 0.0, -1.2)), planner="hybrid", goal=(-0.13, 0.0, 1.0), fallback_compare_period=0.5,
                fallback_compare_margin=0.5)
    first = _drive(s, 0.0, 0.05)[0]
    assert first.planner == "ga" and s.takeovers == 1 and "sooner than the network's" in s.last_takeover[1]


def test_a_network_whose_plans_look_fine_but_that_does_not_get_on_is_overtaken_by_its_pace():
    """The network plans full speed toward the goal, but the base does not get on (here: the odometry stands
    still, as behind a network that re-plans "slow now, fast later" every tick). Each plan alone is on time; the
    pace check sees the GA's estimate of the arrival not come down while time passes, and the GA takes over
    once the loss is beyond the margin (0.8 s: at the third comparison, 1.0 s after the first)."""
    s = session(constant((0.5, 0.0, 0.0)), planner="hybrid", fallback_compare_period=0.5, fallback_compare_margin=0.8)
    ticks = _drive(s, 0.0, 1.2)
    took = [d.stamp for d in ticks if d.planner == "ga"]
    assert took and took[0] == 1.0 and s.takeovers == 1, took
    assert "the network has lost 1.0 s against the GA's estimate in 1.0 s" in s.last_takeover[1]


def _drive_moving(s: PlannerSession, pose: np.ndarray, t0: float, t1: float, dt: float = 0.05,
                  stale=lambda t: False) -> np.ndarray:
    """Tick from t0 to t1 with a base that follows the commands exactly (fresh inputs unless ``stale(t)``,
    when nothing arrives and the base stands); the pose at the end."""
    vel = np.zeros(3)
    for t in np.arange(t0, t1 - 1e-9, dt):
        t = round(float(t), 6)
        if not stale(t):
            s.set_costmap(grid(size=30.0), t)
            s.set_odometry(pose.copy(), vel.copy(), t)
        d = s.tick(t)
        vel = np.zeros(3) if stale(t) or not d.executing else d.command.copy()
        c, sn = np.cos(pose[2]), np.sin(pose[2])
        pose = pose + dt * np.array([c * vel[0] - sn * vel[1], sn * vel[0] + c * vel[1], vel[2]])
    return pose


def toward_goal(feed):
    """A network that turns toward the model's goal and drives there at full speed."""
    dx, dy, _ = feed[GOAL_INPUT][0].astype(float)
    bearing = np.arctan2(dy, dx)
    v = 0.5 * min(1.0, float(np.hypot(dx, dy))) * max(np.cos(bearing), 0.0) ** 4
    return np.tile(np.array([v, 0.0, np.clip(2.0 * bearing, -1.5, 1.5)], np.float32), SPEC.steps)[None]


def test_the_pace_counts_only_the_ticks_the_network_drives_and_not_a_replanned_detour():
    """A network that drives as fast as the base may is never taken over for its pace: not after 3 s of
    stale inputs (the robot stopped, the network did not drive), not under a speed_limit below max_v_x, not
    when the global path is replanned to the same end 3 m longer."""
    s = session(constant((0.5, 0.0, 0.0)), planner="hybrid", goal=(12.0, 0.0, 0.0))
    _drive_moving(s, np.zeros(3), 0.0, 12.0, stale=lambda t: 4.0 <= t < 7.0)
    assert s.takeovers == 0, s.last_takeover
    slow = session(constant((0.5, 0.0, 0.0)), planner="hybrid", goal=(12.0, 0.0, 0.0), speed_limit=0.25)
    _drive_moving(slow, np.zeros(3), 0.0, 20.0)
    assert slow.takeovers == 0 and slow.fallback_ticks == 0, slow.last_takeover
    s = session(toward_goal, planner="hybrid", goal=None)
    s.set_path(np.array([[x, 0.0, 0.0] for x in np.arange(0.0, 12.01, 0.1)]), 0.0, "odom")
    pose = _drive_moving(s, np.zeros(3), 0.0, 4.1)
    corners = np.array([[0.0, 0.0], [6.0, 0.0], [9.0, 4.0], [12.0, 0.0]])
    detour = np.concatenate([np.linspace(p, q, int(np.ceil(np.hypot(*(q - p)) / 0.1)), endpoint=False)
                             for p, q in zip(corners[:-1], corners[1:])] + [corners[-1:]])
    assert s.set_path(np.c_[detour, np.zeros(len(detour))], 4.1, "odom") is None
    _drive_moving(s, pose, 4.1, 10.1)
    assert s.takeovers == 0, s.last_takeover


def test_the_judge_counts_no_distance_once_the_latching_checker_has_accepted_the_position():
    """Approaching at 0.5 m/s a goal 0.35 m ahead that wants +0.8 rad: plan A drives on, turning, and the stateful
    checker accepts it at 1.0 s, by then 0.18 m past (outside the tolerance, but latched); plan B stops and turns in
    place and is accepted at 1.3 s. A is the sooner; with the non-stateful checker A is never accepted."""
    from plan_ga_ros.ga import GAPlanner

    c = PlannerConfig.from_params({}, SPEC)
    ga = GAPlanner(SPEC, c.limits, c.robot_radius, SMALL_GA, 0, 1.0)
    window = np.zeros((SPEC.window_cells, SPEC.window_cells), np.float32)
    on = np.tile([0.5, 0.0, 0.7], (SPEC.steps, 1))
    stop = np.array([[0.5 if k < 4 else 0.0, 0.0, 0.0 if k < 5 else 1.0] for k in range(SPEC.steps)])
    args = (np.stack([on, stop]), window, np.array([0.5, 0.0, 0.0]), np.array([0.35, 0.0, 0.8]), True, 0.15)
    latching = ga.cost_terms(*args, yaw_tolerance=0.25, judge=True)["arrival"]
    assert latching[0] < latching[1] < 1.6 and latching[0] < 1.2
    plain = ga.cost_terms(*args, yaw_tolerance=0.25, judge=True, stateful=False)["arrival"]
    assert plain[0] > plain[1] + 0.5


def test_the_judge_times_a_plan_by_the_goal_checker_s_rule():
    """ga.cost_terms with yaw_tolerance: a plan arrives where the position has been within xy_tolerance and
    the heading is within yaw_tolerance; a plan that never gets there in the horizon is timed on from its end.
    Without it (the GA's own aim) both plans below count as arrived at their first step."""
    from plan_ga_ros.ga import GAPlanner

    c = PlannerConfig.from_params({}, SPEC)
    ga = GAPlanner(SPEC, c.limits, c.robot_radius, SMALL_GA, 0, 1.0)
    window = np.zeros((SPEC.window_cells, SPEC.window_cells), np.float32)
    plans = np.stack([np.tile([0.0, 0.0, w], (SPEC.steps, 1)) for w in (1.0, -1.0)])
    goal = np.array([0.0, 0.0, 1.0])
    judged = ga.cost_terms(plans, window, np.zeros(3), goal, True, 0.15, yaw_tolerance=0.25)["arrival"]
    assert judged[1] - judged[0] > 2.0  # turning away: not accepted within 2 s, then ~2.6 rad more to turn
    own = ga.cost_terms(plans, window, np.zeros(3), goal, True, 0.15)["arrival"]
    assert abs(own[1] - own[0]) < 0.5


def test_turning_the_comparison_off_lets_a_network_that_was_behind_drive_again():
    net = Switchable((0.02, 0.0, 0.0))
    s = session(net, planner="hybrid", fallback_compare_period=1.0, fallback_compare_margin=0.5,
                fallback_hold_time=0.2)
    assert _drive(s, 0.0, 0.05)[0].planner == "ga" and s.takeovers == 1
    s.set_config(PlannerConfig.from_params({"planner": "hybrid", "fallback_compare_period": 0.0,
                                            "fallback_hold_time": 0.2}, SPEC))
    net.twist = (0.5, 0.0, 0.0)
    assert _drive(s, 0.05, 1.0)[-1].planner == "onnx"


def test_a_network_as_good_as_the_ga_keeps_driving_and_the_ga_plans_once_per_period():
    s = session(constant((0.5, 0.0, 0.0)), planner="hybrid", fallback_compare_period=0.5,
                fallback_compare_margin=1.5)
    ticks = _drive(s, 0.0, 1.2)  # (the odometry stands still: from 1.5 s on the pace check would take over)
    assert all(d.planner == "onnx" for d in ticks) and s.takeovers == 0 and s.fallback_ticks == 0
    compared = [d.stamp for d in ticks if "fallback" in d.timings_ms]
    assert compared == [0.0, 0.5, 1.0] and all(d.ga_raw is not None for d in ticks if d.stamp in compared)
    # each comparison's GA starts afresh (the network drove since it last planned); no GA, no answer
    assert all(d.ga_warm is (False if d.stamp in compared else None) for d in ticks)
    off = session(constant((0.02, 0.0, 0.0)), planner="hybrid", fallback_compare_period=0.0)
    assert all(d.planner == "onnx" and "fallback" not in d.timings_ms for d in _drive(off, 0.0, 2.0))


def test_the_ga_alone_reports_no_progress_and_keeps_planning():
    s = session(None, required_movement_radius=0.3, movement_time_allowance=1.0)  # planner: ga
    ticks = _drive(s, 0.0, 2.6, dt=0.1)  # the base never moves
    assert all(d.planner == "ga" for d in ticks) and s.stalls == 2
    assert "no progress: moved less than 0.3 m in 1 s" in s.last_stall[1] and "takes over" not in s.last_stall[1]


def _margins(monkeypatch) -> list[bool]:
    """Whether each GA plan from now on priced its soft clearance margin."""
    from plan_ga_ros.ga import GAPlanner

    seen, plan = [], GAPlanner.plan

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("margin", True))
        return plan(self, *args, **kwargs)

    monkeypatch.setattr(GAPlanner, "plan", spy)
    return seen


def test_the_ga_alone_drops_its_clearance_margin_after_a_stall_until_it_has_got_closer(monkeypatch):
    """``planner: ga`` that stalls (a doorway where every way on grazes its margin) plans without the soft margin,
    the safety layer's clearance the floor, until it is required_movement_radius closer to the goal."""
    margins = _margins(monkeypatch)
    s = session(None, required_movement_radius=0.3, movement_time_allowance=1.0)  # planner: ga, goal 1.5 m ahead
    _drive(s, 0.0, 0.95)  # the base never moves
    assert not s.tight and margins and all(margins)
    del margins[:]
    _drive(s, 1.0, 1.5)  # the stall, noticed after 1.0 s
    assert s.stalls == 1 and s.tight and margins[0] and margins[-5:] == [False] * 5
    s.set_odometry(np.array([0.25, 0.0, 0.0]), np.zeros(3), 1.5)  # closer, but not by the radius yet
    s.tick(1.5)
    assert s.tight and not margins[-1]
    s.set_odometry(np.array([0.35, 0.0, 0.0]), np.zeros(3), 1.55)  # 0.35 m closer than where it stalled
    s.tick(1.55)
    assert not s.tight and margins[-1]


def test_the_ga_alone_stuck_just_before_its_goal_plans_without_the_margin_until_the_goal(monkeypatch):
    """A goal inside a doorway, closer than required_movement_radius: the stall's relief lasts (being near the
    goal is no progress) until the goal is reached."""
    margins = _margins(monkeypatch)
    s = session(None, goal=(0.45, 0.0, 0.0), required_movement_radius=0.5, movement_time_allowance=1.0)
    _drive(s, 0.0, 3.0)  # the base never moves
    assert s.stalls >= 2 and s.tight and margins[-20:] == [False] * 20
    s.set_odometry(np.array([0.3, 0.0, 0.0]), np.zeros(3), 3.0)
    assert s.tick(3.0).planner == "ga" and s.tight and not margins[-1]
    s.set_odometry(np.array([0.45, 0.0, 0.0]), np.zeros(3), 3.05)
    assert s.tick(3.05).reason is StopReason.GOAL_REACHED


def test_the_fallback_plans_without_the_clearance_margin_and_the_comparison_with_it(monkeypatch):
    """Hybrid's fallback drives where the network failed or fell behind (often doorways and gaps): without the soft
    margin. The GA planning beside a driving network (the comparison) prices it in its own search."""
    margins = _margins(monkeypatch)
    net = Switchable((0.5, 0.0, 0.0))  # into the wall: rejected
    s = session(net, wall_x=0.5, goal=(0.0, 1.5, 0.0), planner="hybrid", fallback_after_rejections=1,
                fallback_hold_time=0.0, fallback_compare_period=0.1)
    d = s.tick(0.0)
    assert d.planner == "ga" and s.tight and margins == [False]
    net.twist = (0.0, 0.0, 0.5)  # the network's plans are accepted again (turning toward the goal)
    s.set_costmap(grid(0.5), 0.1)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.1)
    assert s.tick(0.1).planner == "onnx" and not s.tight  # handed back at once (no hold time, no stall)
    s.set_costmap(grid(0.5), 0.2)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.2)
    d = s.tick(0.2)  # the next comparison: its GA prices the margin
    assert d.planner == "onnx" and len(margins) == 2 and margins[-1] is True


@pytest.mark.parametrize("priced", [False, True])
def test_the_comparison_judges_arrival_not_the_gas_soft_clearance_margin(monkeypatch, priced):
    """A network plan that arrives as soon as the GA's but grazes the GA's soft clearance margin (clear of the
    required clearance: the safety layer accepts it) is not behind. Priced as the GA prices its own plans (up to
    3 s: the code before, run with ``priced``), the margin alone would hand the robot to the GA."""
    from plan_ga_ros import ga as ga_module

    if priced:
        monkeypatch.setattr("plan_ga_ros.session.ARRIVAL_TERMS", (*ga_module.ARRIVAL_TERMS, "margin"))
    terms = {"collision": np.zeros(2), "margin": np.array([2.9, 0.0]), "arrival": np.array([3.0, 3.0]),
             "after_goal": np.zeros(2), "clearance": np.array([0.5, 0.1]), "accel": np.zeros(2)}
    own = ga_module.GAPlanner.cost_terms  # the GA's own search as it is; its judge sees these terms
    monkeypatch.setattr(ga_module.GAPlanner, "cost_terms",
                        lambda self, *a, **k: terms if k.get("judge") else own(self, *a, **k))
    s = session(constant((0.5, 0.0, 0.0)), planner="hybrid", fallback_compare_period=0.1,
                fallback_compare_margin=2.5)
    d = s.tick(0.0)
    assert d.planner == ("ga" if priced else "onnx") and (s.takeovers > 0) is priced, s.last_takeover
    behind, collides, _ = s._judge(d, d.feed["costmap_input"][0, 0], 1.5)
    assert behind == pytest.approx(2.9 if priced else 0.0) and not collides


def test_circling_without_getting_closer_is_no_progress_and_the_fallback_takes_over():
    """The robot keeps moving (a displacement check passes) but gets no closer to the goal."""
    s = session(constant((0.3, 0.0, 0.5)), planner="hybrid", goal=(3.0, 0.0, 0.0), required_movement_radius=0.3,
                movement_time_allowance=2.0, fallback_compare_period=0.0)  # the progress checker alone
    t, d = 0.0, None
    while t < 3.0:
        pose = np.array([0.6 * np.cos(2.0 * t) - 0.6, 0.6 * np.sin(2.0 * t), 0.0])  # a circle by the start
        s.set_costmap(grid(), t)
        s.set_odometry(pose, np.zeros(3), t)
        d = s.tick(t)
        if d.planner == "ga":
            break
        t = round(t + 0.1, 6)
    assert d.planner == "ga" and 2.0 < t <= 2.6, t
    assert "no progress: got closer to the goal by less than 0.3 m in 2 s" in s.last_stall[1]
    for k in range(1, 16):  # the network's plans are accepted, but it led nowhere: the GA drives until closer
        s.set_costmap(grid(), t + 0.1 * k)
        s.set_odometry(pose, np.zeros(3), t + 0.1 * k)
        assert s.tick(t + 0.1 * k).planner == "ga"
    s.set_costmap(grid(), t + 1.7)
    s.set_odometry(pose + np.array([0.4, 0.0, 0.0]), np.zeros(3), t + 1.7)  # 0.4 m closer to the goal
    assert s.tick(t + 1.7).planner == "onnx"


def test_a_replanned_path_to_the_same_end_keeps_the_fallback_and_a_new_end_restarts():
    net = Switchable((0.5, 0.0, 0.0))
    s = session(net, wall_x=0.5, goal=None, planner="hybrid", fallback_after_rejections=1)
    path_a = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    assert s.set_path(path_a, 0.0, "odom") is None
    assert s.tick(0.0).planner == "ga" and s.using_fallback
    replanned = np.array([[0.0, 0.05, 0.0], [0.1, 1.0, 0.0], [0.0, 2.0, 0.0]])  # planner_server, a second later
    assert s.set_path(replanned, 0.1, "odom") is None and s.using_fallback
    assert s.set_path(np.array([[0.0, 0.0, 0.0], [0.0, -2.0, 0.0]]), 0.2, "odom") is None and not s.using_fallback


class FailingFallback(PlannerSession):
    """A session whose fallback planner only offers a plan into the wall (so recovery has to act)."""

    def _ga_policy(self, feed):
        return np.tile([0.5, 0.0, 0.0], self.spec.steps)[None]


def test_recovery_rotates_in_place_when_free_then_the_goal_fails_after_the_recovery_timeout():
    cfg = PlannerConfig.from_params({"planner": "ga", "recovery_timeout": 1.0}, SPEC)
    s = FailingFallback(cfg, SPEC, None)
    s.set_costmap(grid(0.45), 0.0)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.0)
    s.set_goal(np.array([1.5, 0.3, 0.0]), 0.0)
    d = s.tick(0.0)
    assert d.executing and d.planner == "recovery" and s.recovery_ticks == 1
    assert d.command[0] == 0.0 and d.command[2] > 0.0  # turning in place, toward the goal's side
    for t in (0.5, 1.0):
        s.set_costmap(grid(0.45), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        assert s.tick(t).planner == "recovery"
    s.set_costmap(grid(0.45), 1.05)
    s.set_odometry(np.zeros(3), np.zeros(3), 1.05)
    d = s.tick(1.05)
    assert d.reason is StopReason.GOAL_FAILED and "recovery_timeout" not in d.detail and "1.0 s" in d.detail
    assert stopped(d) and d.send  # it was turning: a zero is sent
    s.set_costmap(grid(0.45), 1.1)
    assert s.tick(1.1).reason is StopReason.GOAL_FAILED and not s.has_goal  # latched until a new goal


class StillFallback(PlannerSession):
    """A session whose fallback planner finds only standing still valid (the GA at a wall it is too close to)."""

    def _ga_policy(self, feed):
        return np.zeros((1, self.spec.steps * 3))


def test_a_fallback_stuck_at_an_obstacle_escapes_and_drives_until_it_has_made_progress():
    cfg = PlannerConfig.from_params({"planner": "hybrid", "movement_time_allowance": 1.0,
                                     "required_movement_radius": 0.3, "fallback_after_rejections": 3,
                                     "fallback_hold_time": 0.2, "fallback_compare_period": 0.0}, SPEC)
    net = Switchable((0.5, 0.0, 0.0))  # straight into the wall 0.3 m ahead: rejected
    s = StillFallback(cfg, SPEC, net, SMALL_GA)
    s.set_goal(np.array([1.5, 0.0, 0.0]), 0.0, "odom")
    pose = np.zeros(3)

    wall = [0.3]

    def tick(t):
        s.set_costmap(grid(wall[0]), t)
        s.set_odometry(pose, np.zeros(3), t)
        return s.tick(t)

    planners = [tick(round(0.1 * k, 6)).planner for k in range(11)]  # 0 … 1.0 s
    assert planners[:2] == ["", ""] and set(planners[2:]) == {"ga"}  # the fallback holds still
    d = tick(1.1)  # still no progress, now under the fallback: the escape turns away from the wall (behind)
    assert d.planner == "recovery" and d.command[0] == 0.0 and d.command[2] != 0.0 and s.stalls == 1
    assert tick(1.2).planner == "recovery" and s.recovery_ticks == 2
    pose = np.array([-0.2, 0.0, np.pi])  # turned and drove away: clear of the wall
    net.twist = (0.0, 0.0, 0.3)  # and the network's plans are accepted again...
    assert [tick(round(1.3 + 0.1 * k, 6)).planner for k in range(5)] == ["ga"] * 5  # ...but the fallback drives on
    pose = np.array([-0.45, 0.0, np.pi])  # farther from the wall, but no closer to the goal: still the fallback
    assert tick(1.8).planner == "ga"
    wall[0] = None  # the obstacle is gone (a person stepped aside) and the fallback drives on toward the goal
    pose = np.array([0.35, 0.0, 0.0])  # required_movement_radius closer to the goal than where it stalled
    assert tick(1.9).planner == "onnx"


def test_a_fallback_that_keeps_stalling_fails_the_goal_instead_of_escaping_forever():
    cfg = PlannerConfig.from_params({"planner": "hybrid", "movement_time_allowance": 1.0,
                                     "required_movement_radius": 0.3, "fallback_after_rejections": 3}, SPEC)
    s = StillFallback(cfg, SPEC, constant((0.5, 0.0, 0.0)), SMALL_GA)
    s.set_goal(np.array([1.5, 0.0, 0.0]), 0.0, "odom")
    outcomes = []
    for k in range(300):  # the base never moves: every escape and every fallback plan leads nowhere
        t = round(0.1 * k, 6)
        s.set_costmap(grid(0.3), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        d = s.tick(t)
        outcomes.append(d.planner or d.reason.name)
        if d.reason is StopReason.GOAL_FAILED:
            break
    assert d.reason is StopReason.GOAL_FAILED and "the fallback stalled 4 times in a row" in d.detail, outcomes[-5:]
    assert "recovery" in outcomes and t < 10.0 and not s.has_goal


def test_near_the_goal_the_fallback_hands_back_without_getting_closer_still():
    net = Switchable((0.01, 0.0, 0.0))  # creeps: accepted, but no progress
    s = session(net, planner="hybrid", goal=(0.4, 0.0, 0.0), required_movement_radius=0.5,
                movement_time_allowance=1.0, fallback_hold_time=0.2, fallback_compare_period=0.0)
    planners = []
    for k in range(30):
        t = round(0.1 * k, 6)
        s.set_costmap(grid(), t)
        s.set_odometry(np.zeros(3), np.zeros(3), t)
        planners.append(s.tick(t).planner)
    assert "ga" in planners and planners[-1] == "onnx"  # the stall handed over, and the network drives again


def test_a_longer_replanned_path_is_no_stall():
    s = session(constant((0.5, 0.0, 0.0)), goal=None, planner="hybrid", required_movement_radius=0.3,
                movement_time_allowance=1.0, fallback_compare_period=0.0)  # the progress checker alone
    straight = np.array([[x, 0.0, 0.0] for x in np.linspace(0.0, 2.0, 21)])
    assert s.set_path(straight, 0.0, "odom") is None
    s.tick(0.0)
    detour = np.array([[0.0, -y, 0.0] for y in np.linspace(0, 1, 11)]
                      + [[x, -1.0, 0.0] for x in np.linspace(0.1, 2, 20)]
                      + [[2.0, -y, 0.0] for y in np.linspace(0.9, 0, 10)])  # 4 m to the same end
    assert s.set_path(detour, 0.05, "odom") is None and s.using_fallback is False
    for k in range(1, 15):  # following the new path at 0.5 m/s: always getting closer along it
        t = round(0.1 * k, 6)
        s.set_costmap(grid(), t)
        s.set_odometry(np.array([0.0, -0.05 * k, -np.pi / 2]), np.zeros(3), t)
        s.tick(t)
    assert s.stalls == 0 and not s.using_fallback


def test_switching_the_planner_clears_the_fallback():
    s = session(Switchable((0.5, 0.0, 0.0)), wall_x=0.5, planner="hybrid", fallback_after_rejections=1)
    assert s.tick(0.0).planner == "ga" and s.using_fallback
    s.set_config(PlannerConfig.from_params({"planner": "onnx"}, SPEC))
    assert not s.using_fallback
    s.network = constant((0.0, 0.0, 0.3))  # plans the safety layer accepts
    s.set_costmap(grid(0.5), 0.1)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.1)
    assert s.tick(0.1).planner == "onnx"


def test_without_fallback_a_rejected_network_fails_the_goal_after_the_recovery_timeout():
    s = session(constant((0.5, 0.0, 0.0)), wall_x=0.35, planner="onnx", recovery_timeout=0.5)
    assert s.tick(0.0).reason is StopReason.PLAN_REJECTED
    s.set_costmap(grid(0.35), 0.6)
    s.set_odometry(np.zeros(3), np.zeros(3), 0.6)
    assert s.tick(0.6).reason is StopReason.GOAL_FAILED


def test_the_ga_drives_and_its_plans_pass_the_validator():
    s = session(None, wall_x=1.0, goal=(1.5, 1.2, 0.0))
    d = s.tick(0.0)
    assert d.executing and d.planner == "ga" and s.fallback_ticks == 1
    assert d.timings_ms["safety"] >= 0.0 and d.ga_raw is not None


# ---------------------------------------------------------------- nothing raises, garbage never moves the robot


def test_a_non_finite_now_stops_the_robot():
    s = session(constant((0.2, 0.0, 0.0)))
    assert s.tick(0.0).executing
    for now in (float("nan"), float("inf"), float("-inf")):
        d = s.tick(now)
        assert not d.executing and np.all(d.command == 0.0), (now, d.reason)


def test_a_goal_and_an_odometry_pose_must_be_one_pose():
    """Found here: [2, 3] goals and [1, 3] odometry poses were stored and broke the tick."""
    s = session(constant((0.2, 0.0, 0.0)))
    assert s.set_goal(np.zeros((2, 3)), 0.0) is not None
    assert s.tick(0.0).reason is StopReason.BAD_GOAL
    assert s.set_odometry(np.zeros((1, 3)), np.zeros(3), 0.0) is not None
    assert s.tick(0.0).reason is StopReason.BAD_ODOMETRY


def test_stamps_of_the_wrong_type_are_refused_not_raised():
    s = session(constant((0.2, 0.0, 0.0)))
    for stamp in (None, "now", [1.0], object()):
        assert s.set_costmap(grid(), stamp) is not None
        assert s.set_odometry(np.zeros(3), np.zeros(3), stamp) is not None
        assert s.set_goal(np.array([1.0, 0.0, 0.0]), stamp) is not None
        assert s.set_path(straight_path(), stamp) is not None
    assert s.set_costmap(Grid(np.zeros((4, 4), np.int8), 0.0), 0.0) is not None  # a resolution of 0


garbage_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 0.0]))
garbage_array = st.one_of(
    st.lists(garbage_float, min_size=0, max_size=7).map(np.array),
    st.lists(st.lists(garbage_float, min_size=3, max_size=3), min_size=0, max_size=3).map(np.array),
    st.sampled_from([None, "x", object(), [1.0, "a", 2.0]]),
)
garbage_stamp = st.one_of(garbage_float, st.sampled_from([None, "now", [1.0]]))
actions = st.lists(st.tuples(st.sampled_from(["costmap", "bad_costmap", "odometry", "goal", "path", "tick",
                                              "reject", "reset", "config"]),
                             garbage_array, garbage_array, garbage_stamp), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(steps=actions)
def test_nothing_raises_and_garbage_never_moves_the_robot(steps):
    s = session(constant((0.2, 0.0, 0.1)))
    for kind, a, b, stamp in steps:
        if kind == "costmap":
            s.set_costmap(grid(), stamp)
        elif kind == "bad_costmap":
            s.set_costmap(Grid(np.zeros((3,), np.int8), 0.0, (0.0, 0.0, 0.0)), 0.0)
        elif kind == "odometry":
            s.set_odometry(a, b, stamp)
        elif kind == "goal":
            s.set_goal(a, stamp)
        elif kind == "path":
            s.set_path(a, stamp)
        elif kind == "reject":
            s.reject("goal", str(a))
        elif kind == "reset":
            s.reset()
        elif kind == "config":
            s.set_config(PlannerConfig.from_params({"planner": "onnx", "robot_radius": 0.3}, SPEC))
        else:
            d = s.tick(stamp if isinstance(stamp, float) else 0.0)
            assert isinstance(d, Decision) and d.command.shape == (3,) and np.isfinite(d.command).all()
            if not d.executing:
                assert np.all(d.command == 0.0)
            else:  # only on valid inputs: a finite clock, and the twist within the limits
                assert np.isfinite(d.stamp) and np.all(np.abs(d.command) <= [0.5, 0.0, 1.5])


def test_defaults_come_from_the_parameter_table():
    cfg = PlannerSession(PlannerConfig(), SPEC).config
    assert cfg.control_period == pytest.approx(1.0 / parameters.default("planning_frequency"))
    assert cfg.fallback_after_rejections == parameters.default("fallback_after_rejections")
    assert GOAL_INPUT  # the contract's names are what the session feeds
