"""The planner's parameter table: every parameter declared once, ROS-free.

The node declares exactly these (``ros/params.py``), ``PlannerConfig`` takes its defaults from
here, and the training package plans with ``planner_config(defaults())``: the three cannot drift.
A parameter is *static* (read at configure; refused while configured) or *dynamic* (validated as
part of a whole candidate configuration, then swapped in).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLANNERS = ("onnx", "ga", "hybrid")
FALLBACK_PLANNERS = ("ga", "none")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
KINEMATICS = ("diff_drive", "omni")
RELIABILITY = ("reliable", "best_effort")
DURABILITY = ("volatile", "transient_local")


@dataclass(frozen=True)
class Param:
    """One parameter: default, description, inclusive range or choices, and whether it may change live."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    dynamic: bool = True

    def check(self, value: Any) -> str | None:
        """Why ``value`` is invalid for this parameter, or None."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or not value:
                return f"{self.name} must be a non-empty list of strings, got {value!r}"
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{self.name} must be a {kind.__name__}, got {value!r}"
        if kind is float and not math.isfinite(value):
            return f"{self.name} must be finite, got {value!r}"
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            return f"{self.name}={value!r} is outside [{self.low}, {self.high}]"
        if self.choices is not None and value not in self.choices:
            return f"{self.name}={value!r} is not one of {list(self.choices)}"
        return None


def _p(name: str, default: Any, description: str, low: float | None = None, high: float | None = None,
       choices: tuple[str, ...] | None = None, dynamic: bool = True) -> Param:
    return Param(name, default, description, low, high, choices, dynamic)


_TABLE: tuple[Param, ...] = (
    _p("autostart", True, "Configure and activate at start (no lifecycle manager needed).", dynamic=False),
    _p("model_path", "", "ONNX model; empty = the package's models/planner.onnx. Changing it at run time "
       "loads and validates the new model off the planning thread, then swaps it in."),
    _p("providers", ["CPUExecutionProvider"], "ONNX Runtime execution providers, in priority order.",
       dynamic=False),
    _p("intra_op_num_threads", 1, "ONNX Runtime intra-op threads.", 1, 64, dynamic=False),
    _p("graph_optimization", "all", "ONNX Runtime graph optimisation level.", choices=GRAPH_OPTIMIZATIONS,
       dynamic=False),
    _p("warmup_runs", 5, "Inference runs at load before planning.", 0, 1000, dynamic=False),
    _p("max_model_bytes", 200_000_000, "Larger model files are refused.", 1_000, 2_000_000_000),
    _p("model_load_timeout", 10.0, "Loading, warming up and probing a model longer than this (s) refuses it.",
       0.5, 120.0),
    _p("planning_frequency", 20.0, "Planning rate (Hz).", 1.0, 100.0),
    _p("plan_on_odometry", False, "Plan on the first odometry message after each period (phase-locked to "
       "planning_frequency): odometry-to-command latency is the compute time only. The timer then only "
       "covers missing odometry."),
    _p("planner", "hybrid", "onnx: the network only; ga: the GA expert only; hybrid: the network, with the "
       "fallback planner when its plans are rejected or progress stalls.", choices=PLANNERS),
    _p("fallback_planner", "ga", "Planner used by hybrid when the network fails: ga or none.",
       choices=FALLBACK_PLANNERS),
    _p("fallback_after_rejections", 3, "Consecutive rejected network plans before the fallback plans.", 1, 1000),
    _p("fallback_hold_time", 0.75, "Once the fallback drives, the network's plans must be accepted this "
       "long (s) before it drives again (hysteresis), unless the fallback's comparison judges the network's plan "
       "no later than the GA's own.", 0.0, 60.0),
    _p("fallback_compare_period", 2.0, "hybrid with the GA fallback: while the network drives, the GA also plans "
       "this often (s), and every tick once the goal is within one plan's reach, and takes over when the network "
       "is clearly behind (fallback_compare_margin); 0 = never.",
       0.0, 60.0),
    _p("fallback_compare_margin", 2.5, "hybrid's comparison: the GA takes over when the base following the "
       "network's plan would arrive this much later (s, the GA's estimate of time to the goal) than following the "
       "GA's, or collide beyond the checked horizon, or when the network has lost this much time against the "
       "estimate of the arrival over its comparisons (its pace); the network drives again once its plan is within "
       "half the margin.",
       0.0, 100.0),
    _p("max_tick_time", 0.25, "A tick running longer than this (s) gets a zero command and ERROR from the "
       "watchdog.", 0.01, 2.0),
    _p("clock_timeout", 1.0, "Under use_sim_time: /clock not advancing for this long (wall s) stops the "
       "robot.", 0.05, 30.0),
    _p("costmap_timeout", 1.0, "Costmap older than this (s) stops the robot.", 0.01, 60.0),
    _p("odom_timeout", 0.5, "Odometry older than this (s) stops the robot.", 0.01, 60.0),
    _p("goal_timeout", 0.0, "A goal or path older than this (s) expires; 0 = never.", 0.0, 86_400.0),
    _p("xy_goal_tolerance", 0.15, "Goal position tolerance (m).", 0.0, 10.0),
    _p("yaw_goal_tolerance", 0.25, "Goal heading tolerance (rad).", 0.0, math.pi),
    _p("stateful_goal_checker", True, "Like Nav2's stateful goal checker: once within xy_goal_tolerance, only "
       "the heading is checked."),
    _p("carrot_distance", 1.5, "Path following: the model's goal is this far (m) along the path, within the "
       "model's goal_clip_distance.", 0.1, 10.0),
    _p("transform_tolerance", 0.1, "Goals and paths in another frame: the transform may be this old (s).",
       0.0, 10.0),
    _p("required_movement_radius", 0.5, "Progress checker: move this far (m), and get this much closer to the goal "
       "(along the path) ...", 0.01, 10.0),
    _p("movement_time_allowance", 10.0, "... within this time (s), or progress has stalled (hybrid: the fallback "
       "takes over).", 0.5, 600.0),
    _p("recovery_timeout", 15.0, "No valid plan from any planner for this long (s) fails the goal.", 0.5, 600.0),
    _p("robot_radius", 0.2, "Circular footprint radius (m) for the collision check.", 0.01, 5.0),
    _p("collision_lookahead_time", 1.0, "Rollout time (s) checked for collisions before executing; never "
       "less than the stopping time at the current speed plus a margin.", 0.0, 10.0),
    _p("min_v_x", 0.0, "Lowest forward velocity (m/s); negative allows reversing (and backing up in "
       "recovery).", -5.0, 5.0),
    _p("max_v_x", 0.5, "Highest forward velocity (m/s).", 0.0, 5.0),
    _p("max_v_y", 0.0, "Highest lateral speed (m/s); 0 for differential drive.", 0.0, 5.0),
    _p("max_omega", 1.5, "Highest yaw rate (rad/s).", 0.0, 10.0),
    _p("max_a_x", 1.0, "Forward acceleration limit (m/s²).", 0.01, 20.0),
    _p("max_a_y", 0.0, "Lateral acceleration limit (m/s²).", 0.0, 20.0),
    _p("max_alpha", 3.0, "Yaw acceleration limit (rad/s²).", 0.01, 50.0),
    _p("speed_limit", 0.0, "Extra linear speed cap (m/s); 0 = none.", 0.0, 5.0),
    _p("unknown_cost", 0.0, "Cost in [0, 1] for unknown cells and cells outside the costmap.", 0.0, 1.0),
    _p("allow_unknown", False, "Plan with the robot off the costmap or on unknown space (else it stops)."),
    _p("inflation_decay", 0.0, "Costmap inflation cost_scaling_factor fed to the model; 0 = the model's "
       "training value.", 0.0, 100.0),
    _p("acceleration_window", 0.2, "Window (s) of the smoothed odometry acceleration estimate.", 0.02, 2.0),
    _p("max_grid_cells", 10_000_000, "Larger costmaps are rejected (robot stopped).", 1, 50_000_000),
    _p("use_twist_stamped", False, "Publish geometry_msgs/TwistStamped instead of Twist.", dynamic=False),
    _p("base_frame", "base_link", "Frame of the TwistStamped command."),
    _p("model_resolution", 0.1, "Window resolution (m) for a model without metadata.", 0.02, 0.5),
    _p("model_dt", 0.1, "Step duration (s) for a model without metadata.", 0.05, 0.5),
    _p("model_goal_clip_distance", 2.0, "Goal clip distance (m) for a model without metadata.", 0.1, 10.0),
    _p("model_kinematics", "diff_drive", "Kinematics of a model without metadata.", choices=KINEMATICS),
    _p("diagnostics_period", 1.0, "Diagnostics publishing period (s).", 0.05, 60.0),
    _p("compute_warn_fraction", 0.5, "WARN when tick p95 exceeds this fraction of the period.", 0.01, 10.0),
    _p("stats_window", 400, "Ticks kept for p50/p99 timings and rate.", 10, 100_000, dynamic=False),
)

QOS_DEFAULTS: dict[str, tuple[str, str, int]] = {
    "costmap": ("reliable", "transient_local", 1),
    "odom": ("best_effort", "volatile", 5),
    "goal": ("reliable", "volatile", 1),
    "path": ("reliable", "volatile", 1),
    "trajectory": ("reliable", "volatile", 1),
    "local_plan": ("reliable", "volatile", 1),
    "cmd_vel": ("reliable", "volatile", 1),
}


def _qos_params() -> tuple[Param, ...]:
    out = []
    for role, (rel, dur, depth) in QOS_DEFAULTS.items():
        out += [_p(f"qos.{role}.reliability", rel, f"{role} QoS reliability.", choices=RELIABILITY, dynamic=False),
                _p(f"qos.{role}.durability", dur, f"{role} QoS durability.", choices=DURABILITY, dynamic=False),
                _p(f"qos.{role}.depth", depth, f"{role} QoS history depth.", 1, 1000, dynamic=False)]
    return tuple(out)


PARAMETERS: dict[str, Param] = {p.name: p for p in _TABLE + _qos_params()}


def defaults() -> dict[str, Any]:
    """Every parameter's default value."""
    return {name: (list(p.default) if isinstance(p.default, list) else p.default) for name, p in PARAMETERS.items()}


def default(name: str) -> Any:
    return PARAMETERS[name].default


def validate(values: Mapping[str, Any]) -> list[str]:
    """Every problem with a whole candidate configuration (each value and the rules between them)."""
    problems = [msg for name, p in PARAMETERS.items() if name in values and (msg := p.check(values[name]))]
    unknown = sorted(set(values) - set(PARAMETERS))
    problems += [f"unknown parameter {name!r}" for name in unknown]
    if problems:
        return problems
    v = {**defaults(), **values}
    if v["min_v_x"] > v["max_v_x"]:
        problems.append(f"min_v_x={v['min_v_x']} exceeds max_v_x={v['max_v_x']}")
    if v["max_v_x"] <= 0 and v["min_v_x"] >= 0 and v["max_omega"] <= 0:
        problems.append("the limits leave the robot no motion at all (max_v_x, min_v_x and max_omega are 0)")
    if v["max_v_y"] > 0 and v["max_a_y"] <= 0:
        problems.append("max_v_y > 0 needs max_a_y > 0")
    return problems
