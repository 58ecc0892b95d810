"""One planning step: inputs → tensors → policy → safety → Plan. No ROS here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import kinematics, safety, tensors
from .contract import COSTMAP_INPUT, Limits, ModelSpec

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]  # feed dict → [B, steps*3]


@dataclass(frozen=True)
class PlannerConfig:
    """The node's planning parameters (defaults follow SPEC section 3)."""

    limits: Limits = field(default_factory=Limits)
    speed_limit: float = float("inf")
    robot_radius: float = 0.2
    collision_lookahead_time: float = 1.0
    unknown_cost: float = 0.0
    inflation_decay: float = 3.0
    goal_clip_distance: float = 2.0
    xy_goal_tolerance: float = 0.15
    yaw_goal_tolerance: float = 0.25
    stateful_goal_checker: bool = True
    costmap_timeout: float = 1.0
    odom_timeout: float = 0.5
    control_period: float = 0.05


@dataclass(frozen=True)
class RobotSnapshot:
    """Robot pose (odom frame) and body-frame velocity and acceleration."""

    pose: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray


@dataclass
class Plan:
    """The outcome of one planning step."""

    ok: bool
    reason: str
    command: np.ndarray  # [3] the twist to execute now (zeros when not ok)
    controls: np.ndarray  # [steps, 3] the validated plan (raw model output if rejected)
    path: np.ndarray  # [steps+1, 3] odom-frame poses of the rollout
    timings_ms: dict[str, float] = field(default_factory=dict)
    window: np.ndarray | None = None


def input_problem(
    now: float,
    costmap_stamp: float | None,
    odom_stamp: float | None,
    have_goal: bool,
    config: PlannerConfig,
) -> str | None:
    """Why the model must not run now (missing/stale inputs), or None when inputs are fresh.

    Stamps far in the future count as stale too: a clock that jumps must not freeze the gate.
    """
    if costmap_stamp is None:
        return "no costmap received"
    if odom_stamp is None:
        return "no odometry received"
    if not have_goal:
        return "no goal"
    c_age, o_age = now - costmap_stamp, now - odom_stamp
    if c_age > config.costmap_timeout or c_age < -config.costmap_timeout:
        return f"costmap is stale (age {c_age:.2f} s > costmap_timeout {config.costmap_timeout:.2f} s)"
    if o_age > config.odom_timeout or o_age < -config.odom_timeout:
        return f"odometry is stale (age {o_age:.2f} s > odom_timeout {config.odom_timeout:.2f} s)"
    return None


def build_inputs(
    grid: tensors.Grid, robot: RobotSnapshot, goal: np.ndarray, spec: ModelSpec, config: PlannerConfig
) -> dict[str, np.ndarray]:
    """The four model inputs (batch of one) for this robot, costmap and goal."""
    window = tensors.costmap_window(grid, robot.pose, spec, config.unknown_cost)
    state = tensors.robot_state(robot.pose, robot.velocity, robot.acceleration)
    goal_rel = tensors.goal_relative(robot.pose, goal, config.goal_clip_distance)
    meta = tensors.costmap_metadata(config.inflation_decay, spec.resolution)
    return tensors.batch(window, state, goal_rel, meta)


def make_safe(
    raw: np.ndarray,
    window: np.ndarray,
    previous_command: np.ndarray,
    spec: ModelSpec,
    config: PlannerConfig,
) -> tuple[np.ndarray, safety.PlanCheck]:
    """Clip the raw plan to the limits, rate-limit its first command, and validate the result."""
    raw = np.asarray(raw, dtype=np.float64).reshape(spec.steps, 3)
    if not np.isfinite(raw).all():
        return raw, safety.PlanCheck(False, "model output contains NaN or inf", np.zeros((spec.steps + 1, 3)))
    controls = kinematics.clip_controls(raw, config.limits, config.speed_limit)
    controls[0] = kinematics.limit_change(controls[0], previous_command, config.limits, config.control_period)
    check = safety.validate_plan(controls, window, spec, config.robot_radius, config.collision_lookahead_time)
    return controls, check


def plan_step(
    policy: Policy,
    spec: ModelSpec,
    config: PlannerConfig,
    grid: tensors.Grid,
    robot: RobotSnapshot,
    goal: np.ndarray,
    previous_command: np.ndarray,
) -> Plan:
    """Run one tick; never raises on bad numbers: a rejected plan comes back with ok=False."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    zero = np.zeros(3)
    empty = np.zeros((spec.steps, 3))
    try:
        feed = build_inputs(grid, robot, goal, spec, config)
    except ValueError as exc:
        return Plan(False, f"bad input: {exc}", zero, empty, np.repeat(robot.pose[None], spec.steps + 1, 0))
    t1 = time.perf_counter()
    raw = policy(feed)
    t2 = time.perf_counter()
    window = feed[COSTMAP_INPUT][0, 0]
    controls, check = make_safe(raw[0], window, previous_command, spec, config)
    path = kinematics.compose(robot.pose, check.relative_poses)
    t3 = time.perf_counter()
    timings.update(tensors=(t1 - t0) * 1e3, inference=(t2 - t1) * 1e3, safety=(t3 - t2) * 1e3)
    if not check.ok:
        return Plan(False, check.reason, zero, controls, path, timings, window)
    return Plan(True, "", controls[0].copy(), controls, path, timings, window)

