"""The pieces of one planning step: the planning config, the model's inputs and the safety layer.
No ROS here; ``session.PlannerSession`` sequences them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import kinematics, parameters, safety, tensors
from .contract import Limits, ModelSpec


def _d(name: str) -> Any:
    return field(default=parameters.default(name))


@dataclass(frozen=True)
class PlannerConfig:
    """The planning parameters as plain values; defaults come from the node's parameter table."""

    limits: Limits = field(default_factory=Limits)
    speed_limit: float = float("inf")
    robot_radius: float = _d("robot_radius")
    collision_lookahead_time: float = _d("collision_lookahead_time")
    unknown_cost: float = _d("unknown_cost")
    allow_unknown: bool = _d("allow_unknown")
    inflation_decay: float = ModelSpec().inflation_decay
    goal_clip_distance: float = ModelSpec().goal_clip_distance
    xy_goal_tolerance: float = _d("xy_goal_tolerance")
    yaw_goal_tolerance: float = _d("yaw_goal_tolerance")
    stateful_goal_checker: bool = _d("stateful_goal_checker")
    costmap_timeout: float = _d("costmap_timeout")
    odom_timeout: float = _d("odom_timeout")
    goal_timeout: float = _d("goal_timeout")
    control_period: float = 1.0 / parameters.default("planning_frequency")
    acceleration_window: float = _d("acceleration_window")
    planner: str = _d("planner")
    fallback_planner: str = _d("fallback_planner")
    fallback_after_rejections: int = _d("fallback_after_rejections")
    fallback_hold_time: float = _d("fallback_hold_time")
    fallback_compare_period: float = _d("fallback_compare_period")
    fallback_compare_margin: float = _d("fallback_compare_margin")
    carrot_distance: float = _d("carrot_distance")
    required_movement_radius: float = _d("required_movement_radius")
    movement_time_allowance: float = _d("movement_time_allowance")
    recovery_timeout: float = _d("recovery_timeout")

    @classmethod
    def from_params(cls, values: Mapping[str, Any], spec: ModelSpec) -> PlannerConfig:
        """The config for parameter ``values`` (missing ones take their defaults) and a model's spec."""
        v = {**parameters.defaults(), **values}
        limits = Limits(**{k: float(v[k]) for k in LIMIT_NAMES})
        plain = {f.name for f in fields(cls)} - {"limits", "speed_limit", "inflation_decay", "goal_clip_distance",
                                                 "control_period"}
        return cls(limits=limits, speed_limit=v["speed_limit"] if v["speed_limit"] > 0 else float("inf"),
                   inflation_decay=v["inflation_decay"] if v["inflation_decay"] > 0 else spec.inflation_decay,
                   goal_clip_distance=spec.goal_clip_distance, control_period=1.0 / v["planning_frequency"],
                   **{k: v[k] for k in plain})


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True)
class RobotSnapshot:
    """Robot pose (odom frame) and body-frame velocity and acceleration."""

    pose: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray


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
    velocity: np.ndarray,
    spec: ModelSpec,
    config: PlannerConfig,
) -> tuple[np.ndarray, safety.PlanCheck]:
    """Clip the raw plan to the limits, rate-limit its first command, and validate the result as the base
    really follows it (from the measured ``velocity``, at the acceleration limits, then braking after the
    first command) over the collision horizon (never shorter than the stopping time plus a margin)."""
    raw = np.asarray(raw, dtype=np.float64).reshape(spec.steps, 3)
    velocity = np.asarray(velocity, dtype=np.float64).reshape(3)
    if not np.isfinite(raw).all():
        return raw, safety.PlanCheck(False, "model output contains NaN or inf", np.zeros((spec.steps + 1, 3)))
    if not np.isfinite(velocity).all():
        return raw, safety.PlanCheck(False, "velocity is not finite", np.zeros((spec.steps + 1, 3)))
    controls = kinematics.commanded(raw, previous_command, config.limits, config.speed_limit, config.control_period)
    horizon = safety.collision_horizon(config.collision_lookahead_time, velocity, config.limits)
    hold = safety.hold_steps(config.control_period, spec.dt, spec.steps)
    check = safety.validate_plan(controls, window, spec, config.robot_radius, horizon, velocity, config.limits, hold)
    return controls, check
