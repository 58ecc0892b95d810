"""plan_ga_planner: a lifecycle node running the learned local planner on a timer.

It only moves data between ROS messages and the ROS-free core (plan_ga_ros.planner).
"""

from __future__ import annotations

import collections
import functools
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32MultiArray

from .. import kinematics
from ..contract import Limits, ModelSpec
from ..planner import Plan, PlannerConfig, RobotSnapshot, input_problem, plan_step
from ..policy import OnnxPolicy, PolicyError, SessionConfig, probe_feed
from ..safety import goal_check
from . import conversions as conv

NODE_NAME = "plan_ga_planner"
STAGES = ("convert", "tensors", "inference", "safety", "publish", "total")


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """Run a callback so that an unexpected exception stops the robot instead of the node."""

    @functools.wraps(callback)
    def wrapper(self: PlannerNode, *args: Any) -> None:
        try:
            callback(self, *args)
        except Exception as exc:  # the node must outlive any bug in one callback
            self.get_logger().error(f"internal error in {callback.__name__}: {exc!r}\n{traceback.format_exc()}")
            try:
                self._stop(f"internal error in {callback.__name__}: {exc!r}")
            except Exception:
                pass

    return wrapper


def default_model_path() -> str:
    """models/planner.onnx in the installed share directory, else next to the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = os.path.join(get_package_share_directory("plan_ga_ros"), "models", "planner.onnx")
        if os.path.isfile(path):
            return path
    except Exception:  # not installed through ament (pip/editable install)
        pass
    return str(FsPath(__file__).resolve().parents[2] / "models" / "planner.onnx")


def _float(lo: float, hi: float) -> FloatingPointRange:
    return FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)


# name: (default, description, range or None). Defaults match config/planner.yaml.
PARAMETERS: dict[str, tuple[Any, str, Any]] = {
    "autostart": (True, "Configure and activate at start (no lifecycle manager needed).", None),
    "model_path": ("", "ONNX model; empty = the package's models/planner.onnx. Changing it at run "
                   "time hot-swaps the model after validation.", None),
    "providers": (["CPUExecutionProvider"], "ONNX Runtime execution providers, in priority order.", None),
    "intra_op_num_threads": (1, "ONNX Runtime intra-op threads.", IntegerRange(from_value=1, to_value=64, step=1)),
    "graph_optimization": ("all", "ONNX Runtime graph optimisation: disable, basic, extended or all.", None),
    "warmup_runs": (5, "Inference runs at load before planning.", IntegerRange(from_value=0, to_value=1000, step=1)),
    "planning_frequency": (20.0, "Planning timer rate (Hz).", _float(1.0, 500.0)),
    "plan_on_odometry": (False, "Plan on the first odometry message after each period (phase-locked to "
                         "planning_frequency): odometry-to-command latency is the compute time only. The timer "
                         "then only covers missing odometry.", None),
    "costmap_timeout": (1.0, "Costmap older than this (s) stops the robot.", _float(0.01, 60.0)),
    "odom_timeout": (0.5, "Odometry older than this (s) stops the robot.", _float(0.01, 60.0)),
    "xy_goal_tolerance": (0.15, "Goal position tolerance (m).", _float(0.0, 10.0)),
    "yaw_goal_tolerance": (0.25, "Goal heading tolerance (rad).", _float(0.0, math.pi)),
    "stateful_goal_checker": (True, "Like Nav2's stateful goal checker: once within xy_goal_tolerance, only the "
                              "heading is checked.", None),
    "robot_radius": (0.2, "Circular footprint radius (m) for the collision check.", _float(0.0, 5.0)),
    "collision_lookahead_time": (1.0, "Rollout time (s) checked for collisions before executing.", _float(0.0, 10.0)),
    "min_v_x": (0.0, "Lowest forward velocity (m/s); negative allows reversing.", _float(-5.0, 5.0)),
    "max_v_x": (0.5, "Highest forward velocity (m/s).", _float(0.0, 5.0)),
    "max_v_y": (0.0, "Highest lateral speed (m/s); 0 for differential drive.", _float(0.0, 5.0)),
    "max_omega": (1.5, "Highest yaw rate (rad/s).", _float(0.0, 10.0)),
    "max_a_x": (1.0, "Forward acceleration limit (m/s²).", _float(0.0, 20.0)),
    "max_a_y": (0.0, "Lateral acceleration limit (m/s²).", _float(0.0, 20.0)),
    "max_alpha": (3.0, "Yaw acceleration limit (rad/s²).", _float(0.0, 50.0)),
    "speed_limit": (0.0, "Extra linear speed cap (m/s); 0 = none.", _float(0.0, 5.0)),
    "unknown_cost": (0.0, "Cost in [0, 1] for unknown cells and cells outside the costmap.", _float(0.0, 1.0)),
    "inflation_decay": (0.0, "Costmap inflation cost_scaling_factor fed to the model; 0 = the model's "
                        "training value.", _float(0.0, 100.0)),
    "acceleration_window": (0.2, "Window (s) of the smoothed odometry acceleration estimate.", _float(0.02, 2.0)),
    "max_grid_cells": (10_000_000, "Larger costmaps are rejected (robot stopped).",
                       IntegerRange(from_value=1, to_value=100_000_000, step=1)),
    "use_twist_stamped": (False, "Publish geometry_msgs/TwistStamped instead of Twist.", None),
    "base_frame": ("base_link", "Frame of the TwistStamped command.", None),
    "model_resolution": (0.1, "Window resolution (m) for a model without metadata.", _float(0.001, 10.0)),
    "model_dt": (0.1, "Step duration (s) for a model without metadata.", _float(0.001, 10.0)),
    "model_goal_clip_distance": (2.0, "Goal clip distance (m) for a model without metadata.", _float(0.01, 100.0)),
    "model_kinematics": ("diff_drive", "diff_drive or omni, for a model without metadata.", None),
    "diagnostics_period": (1.0, "Diagnostics publishing period (s).", _float(0.05, 60.0)),
    "compute_warn_fraction": (0.5, "WARN when tick p95 exceeds this fraction of the period.", _float(0.01, 10.0)),
    "stats_window": (400, "Ticks kept for p50/p99 timings and rate.",
                     IntegerRange(from_value=10, to_value=100000, step=1)),
}

# QoS per topic role: (reliability, durability, depth)
QOS_DEFAULTS = {
    "costmap": ("reliable", "transient_local", 1),
    "odom": ("best_effort", "volatile", 5),
    "goal": ("reliable", "volatile", 1),
    "trajectory": ("reliable", "volatile", 1),
    "local_plan": ("reliable", "volatile", 1),
    "cmd_vel": ("reliable", "volatile", 1),
}


def make_qos(reliability: str, durability: str, depth: int) -> QoSProfile:
    rel = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    dur = {"volatile": DurabilityPolicy.VOLATILE, "transient_local": DurabilityPolicy.TRANSIENT_LOCAL}
    if reliability not in rel or durability not in dur or depth < 1:
        raise ValueError(f"bad QoS: reliability={reliability!r} durability={durability!r} depth={depth}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel[reliability],
                      durability=dur[durability])


@dataclass
class Stamped:
    value: Any
    stamp: float  # header stamp (s, node clock's time base)
    frame: str


class Stats:
    """Rolling per-stage timings and tick times for p50/p99 and achieved rate."""

    def __init__(self, size: int) -> None:
        self.timings = {s: collections.deque(maxlen=size) for s in STAGES}
        self.tick_times: collections.deque[float] = collections.deque(maxlen=size)

    def percentiles(self) -> dict[str, str]:
        out = {}
        for stage, values in self.timings.items():
            if values:
                p50, p99 = np.percentile(np.fromiter(values, float), [50, 99])
                out[f"{stage}_ms_p50"], out[f"{stage}_ms_p99"] = f"{p50:.3f}", f"{p99:.3f}"
        return out

    def rate(self) -> float:
        if len(self.tick_times) < 2:
            return 0.0
        span = self.tick_times[-1] - self.tick_times[0]
        return (len(self.tick_times) - 1) / span if span > 0 else 0.0

    def percentile(self, stage: str, q: float) -> float:
        v = self.timings[stage]
        return float(np.percentile(np.fromiter(v, float), q)) if v else 0.0

    def over_budget(self, budget_ms: float, min_ticks: int = 20) -> bool:
        """p95 of the tick time over budget; p95 (not the max) so one hiccup does not raise a WARN."""
        return len(self.timings["total"]) >= min_ticks and self.percentile("total", 95) > budget_ms


class PlannerNode(LifecycleNode):
    """Costmap + odometry + goal → ONNX policy → validated trajectory and cmd_vel."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description, rng) in PARAMETERS.items():
            self._declare(name, default, description, rng)
        for role, (rel, dur, depth) in QOS_DEFAULTS.items():
            self._declare(f"qos.{role}.reliability", rel, f"{role} QoS reliability: reliable or best_effort.", None)
            self._declare(f"qos.{role}.durability", dur, f"{role} QoS durability: volatile or transient_local.", None)
            self._declare(f"qos.{role}.depth", depth, f"{role} QoS history depth.",
                          IntegerRange(from_value=1, to_value=1000, step=1))

        self._policy: OnnxPolicy | None = None
        self._pending_policy: OnnxPolicy | None = None  # validated by the set callback, swapped after
        self._config = PlannerConfig()
        self._spec = ModelSpec()
        self._load_error = ""
        self._active = False
        self._timer = None
        self._subs: list = []
        self._pubs: dict[str, Any] = {}
        self._path_buffer = conv.PathBuffer()
        self._reset_inputs()
        self._stats = Stats(int(self._p("stats_window")))
        self._status = "unconfigured"
        self._stop_reason = ""
        self._last_logged_reason = ""
        self._last_log_time = 0.0
        self._rejected = 0
        self._ticks = 0

        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(float(self._p("diagnostics_period")), self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        if self._p("autostart"):
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ----------------------------------------------------------------- parameters
    def _declare(self, name: str, default: Any, description: str, rng: Any) -> None:
        desc = ParameterDescriptor(description=description)
        if isinstance(rng, FloatingPointRange):
            desc.floating_point_range = [rng]
        elif isinstance(rng, IntegerRange):
            desc.integer_range = [rng]
        self.declare_parameter(name, default, desc)

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _model_path(self, value: str | None = None) -> str:
        path = self._p("model_path") if value is None else value
        return path if path else default_model_path()

    def _read_config(self, spec: ModelSpec) -> PlannerConfig:
        limits = Limits(min_v_x=self._p("min_v_x"), max_v_x=self._p("max_v_x"), max_v_y=self._p("max_v_y"),
                        max_omega=self._p("max_omega"), max_a_x=self._p("max_a_x"), max_a_y=self._p("max_a_y"),
                        max_alpha=self._p("max_alpha"))
        speed = self._p("speed_limit")
        decay = self._p("inflation_decay")
        return PlannerConfig(
            limits=limits,
            speed_limit=speed if speed > 0 else float("inf"),
            robot_radius=self._p("robot_radius"),
            collision_lookahead_time=self._p("collision_lookahead_time"),
            unknown_cost=self._p("unknown_cost"),
            inflation_decay=decay if decay > 0 else spec.inflation_decay,
            goal_clip_distance=spec.goal_clip_distance,
            xy_goal_tolerance=self._p("xy_goal_tolerance"),
            yaw_goal_tolerance=self._p("yaw_goal_tolerance"),
            stateful_goal_checker=self._p("stateful_goal_checker"),
            costmap_timeout=self._p("costmap_timeout"),
            odom_timeout=self._p("odom_timeout"),
            control_period=1.0 / self._p("planning_frequency"),
        )

    def _fallback_spec(self) -> ModelSpec:
        return ModelSpec(resolution=self._p("model_resolution"), dt=self._p("model_dt"),
                         goal_clip_distance=self._p("model_goal_clip_distance"),
                         kinematics=self._p("model_kinematics"))

    def _load_policy(self, path: str) -> OnnxPolicy:
        cfg = SessionConfig(providers=tuple(self._p("providers")),
                            intra_op_num_threads=int(self._p("intra_op_num_threads")),
                            graph_optimization=self._p("graph_optimization"),
                            warmup_runs=int(self._p("warmup_runs")))
        policy = OnnxPolicy(path, cfg, fallback_spec=self._fallback_spec())
        # Probe once with a valid input so a model that loads but cannot run is refused here.
        raw = policy.run(probe_feed(policy.spec))
        if not np.isfinite(raw).all():
            raise PolicyError(f"model {path} returns NaN/inf on a valid input")
        if not policy.has_metadata:
            self.get_logger().warning(
                f"model {path} has no plan_ga_ros metadata: using parameters model_resolution, model_dt, "
                "model_goal_clip_distance and model_kinematics for its geometry")
        return policy

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        for p in params:
            if p.name == "model_path" and self._policy is not None:
                path = self._model_path(p.value)
                try:
                    policy = self._load_policy(path)
                except (PolicyError, ValueError) as exc:
                    self._load_error = f"refused model {path}: {exc}"
                    self.get_logger().error(self._load_error + " (keeping the previous model)")
                    return SetParametersResult(successful=False, reason=str(exc))
                self._pending_policy = policy
            elif p.name in ("graph_optimization",) and p.value not in ("disable", "basic", "extended", "all"):
                return SetParametersResult(successful=False, reason="graph_optimization must be one of "
                                           "disable, basic, extended, all")
            elif p.name == "min_v_x" and p.value > self._p("max_v_x"):
                return SetParametersResult(successful=False, reason="min_v_x must be <= max_v_x")
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list) -> None:
        names = {p.name for p in params}
        pending, self._pending_policy = self._pending_policy, None
        if pending is not None:
            self._policy, self._spec, self._load_error = pending, pending.spec, ""
            self.get_logger().info(f"hot-swapped model to {pending.path} ({pending.providers[0]})")
        if self._policy is not None:
            self._config = self._read_config(self._spec)
        if "planning_frequency" in names and self._active:
            self._start_timer()

    # ----------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        path = self._model_path()
        try:
            policy = self._load_policy(path)
            qos = {role: make_qos(self._p(f"qos.{role}.reliability"), self._p(f"qos.{role}.durability"),
                                  int(self._p(f"qos.{role}.depth"))) for role in QOS_DEFAULTS}
        except (PolicyError, ValueError) as exc:
            self._load_error = str(exc)
            self._status = "configure failed"
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._policy, self._spec, self._load_error = policy, policy.spec, ""
        self._config = self._read_config(policy.spec)
        self._stats = Stats(int(self._p("stats_window")))
        self._reset_inputs()
        self._subs = [
            self.create_subscription(OccupancyGrid, "/local_costmap/costmap", self._on_costmap, qos["costmap"],
                                     event_callbacks=self._sub_events("/local_costmap/costmap")),
            self.create_subscription(Odometry, "/odom", self._on_odom, qos["odom"],
                                     event_callbacks=self._sub_events("/odom")),
            self.create_subscription(PoseStamped, "/goal_pose", self._on_goal, qos["goal"],
                                     event_callbacks=self._sub_events("/goal_pose")),
        ]
        cmd_type = TwistStamped if self._p("use_twist_stamped") else Twist
        self._pubs = {
            "trajectory": self.create_publisher(Float32MultiArray, "~/trajectory", qos["trajectory"],
                                                event_callbacks=self._pub_events("~/trajectory")),
            "local_plan": self.create_publisher(Path, "~/local_plan", qos["local_plan"],
                                                event_callbacks=self._pub_events("~/local_plan")),
            "cmd_vel": self.create_publisher(cmd_type, "/cmd_vel", qos["cmd_vel"],
                                             event_callbacks=self._pub_events("/cmd_vel")),
        }
        self._status = "inactive"
        self.get_logger().info(
            f"configured: model {policy.path} on {policy.providers[0]}, warm-up {policy.warmup_ms:.2f} ms/run, "
            f"{policy.spec.window_cells}x{policy.spec.window_cells} window at {policy.spec.resolution} m")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        self._status = "active"
        self._start_timer()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timer()
        self._active = False
        self._publish_command(np.zeros(3))
        self._status = "inactive"
        self._stop_reason = "deactivated"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._status = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._stop_timer()
            self._publish_command(np.zeros(3))
            self._active = False
        self._release()
        self._status = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timer()
        self._active = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._subs, self._pubs, self._policy = [], {}, None
        self._reset_inputs()

    def _start_timer(self) -> None:
        self._stop_timer()
        self._timer = self.create_timer(1.0 / self._p("planning_frequency"), self._on_timer)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    @property
    def lifecycle_state(self) -> str:
        """Label of the current lifecycle state (unconfigured, inactive, active, finalized)."""
        return self._state_machine.current_state[1]

    def safe_shutdown(self) -> None:
        """Stop the robot before the process exits."""
        if self._active and "cmd_vel" in self._pubs:
            self._publish_command(np.zeros(3))

    # ----------------------------------------------------------------- QoS events
    def _sub_events(self, topic: str) -> SubscriptionEventCallbacks:
        def incompatible(event: Any) -> None:
            self.get_logger().error(
                f"incompatible QoS on subscription {topic}: a publisher offers an incompatible "
                f"{_policy_name(event.last_policy_kind)} policy (total {event.total_count}); "
                f"set qos.* parameters to match the publisher")
        return SubscriptionEventCallbacks(incompatible_qos=incompatible)

    def _pub_events(self, topic: str) -> PublisherEventCallbacks:
        def incompatible(event: Any) -> None:
            self.get_logger().error(
                f"incompatible QoS on publisher {topic}: a subscriber requests an incompatible "
                f"{_policy_name(event.last_policy_kind)} policy (total {event.total_count})")
        return PublisherEventCallbacks(incompatible_qos=incompatible)

    # ----------------------------------------------------------------- inputs
    def _reset_inputs(self) -> None:
        self._grid: Stamped | None = None
        self._odom: Stamped | None = None  # value: (pose, velocity)
        self._goal: Stamped | None = None
        self._input_errors: dict[str, str] = {}
        self._odom_history: collections.deque = collections.deque(maxlen=200)
        self._last_command = np.zeros(3)
        self._goal_reached = self._xy_latched = False
        self._next_due = 0.0

    @guarded
    def _on_costmap(self, msg: OccupancyGrid) -> None:
        t0 = time.perf_counter()
        try:
            grid = conv.grid_from_msg(msg, int(self._p("max_grid_cells")))
        except ValueError as exc:
            self._grid = None
            self._input_errors["costmap"] = f"costmap rejected: {exc}"
            return
        self._input_errors.pop("costmap", None)
        self._grid = Stamped(grid, conv.stamp_to_sec(msg.header.stamp), msg.header.frame_id)
        self._stats.timings["convert"].append((time.perf_counter() - t0) * 1e3)

    @guarded
    def _on_odom(self, msg: Odometry) -> None:
        try:
            pose, vel = conv.odometry_from_msg(msg)
        except ValueError as exc:
            self._odom = None
            self._input_errors["odom"] = f"odometry rejected: {exc}"
            return
        stamp = conv.stamp_to_sec(msg.header.stamp)
        if self._odom_history and stamp <= self._odom_history[-1][0]:
            self._odom_history.clear()  # time went backwards (bag loop, sim reset)
        self._odom_history.append((stamp, vel))
        self._odom = Stamped((pose, vel), stamp, msg.header.frame_id)
        self._input_errors.pop("odom", None)
        if self._active and self._p("plan_on_odometry"):
            now = self.get_clock().now().nanoseconds * 1e-9
            if now >= self._next_due:
                period = 1.0 / self._p("planning_frequency")
                # Phase-locked: the average rate is exactly planning_frequency; resync after a gap.
                self._next_due = self._next_due + period if now - self._next_due < period else now + period
                self._tick()

    @guarded
    def _on_goal(self, msg: PoseStamped) -> None:
        try:
            goal = conv.goal_from_msg(msg)
        except ValueError as exc:
            self._goal = None
            self._input_errors["goal"] = f"goal rejected: {exc}"
            self.get_logger().error(self._input_errors["goal"])
            return
        self._input_errors.pop("goal", None)
        self._goal = Stamped(goal, conv.stamp_to_sec(msg.header.stamp), msg.header.frame_id)
        self._goal_reached = self._xy_latched = False
        self.get_logger().info(f"new goal ({goal[0]:.2f}, {goal[1]:.2f}, {goal[2]:.2f}) in "
                               f"'{msg.header.frame_id or '<odom frame>'}'")

    def _acceleration(self) -> np.ndarray:
        hist = self._odom_history
        if len(hist) < 2:
            return np.zeros(3)
        times = np.fromiter((h[0] for h in hist), float, len(hist))
        vels = np.stack([h[1] for h in hist])
        return kinematics.estimate_acceleration(times, vels, self._p("acceleration_window"), self._config.limits)

    # ----------------------------------------------------------------- the tick
    def _problem(self, now: float) -> str | None:
        if self._input_errors:
            return "; ".join(self._input_errors.values())
        grid, odom, goal = self._grid, self._odom, self._goal
        problem = input_problem(now, grid and grid.stamp, odom and odom.stamp,
                                goal is not None and not self._goal_reached, self._config)
        if problem:
            return "goal reached" if self._goal_reached and problem == "no goal" else problem
        if grid.frame != odom.frame:
            return f"costmap frame '{grid.frame}' != odometry frame '{odom.frame}' (no TF available)"
        if goal.frame and goal.frame != odom.frame:
            return f"goal frame '{goal.frame}' != odometry frame '{odom.frame}' (no TF available)"
        return None

    @guarded
    def _on_timer(self) -> None:
        if self._p("plan_on_odometry"):
            now = self.get_clock().now().nanoseconds * 1e-9
            if self._stats.tick_times and now - self._stats.tick_times[-1] < 1.5 / self._p("planning_frequency"):
                return  # odometry is driving the ticks
        self._tick()

    def _tick(self) -> None:
        t0 = time.perf_counter()
        now = self.get_clock().now().nanoseconds * 1e-9
        self._stats.tick_times.append(now)
        self._ticks += 1
        policy = self._policy
        if policy is None:
            return self._stop("no model loaded")
        problem = self._problem(now)
        if problem:
            return self._stop(problem)
        grid, (pose, vel), goal = self._grid.value, self._odom.value, self._goal.value
        cfg = self._config
        reached, self._xy_latched = goal_check(pose, goal, cfg.xy_goal_tolerance, cfg.yaw_goal_tolerance,
                                               cfg.stateful_goal_checker, self._xy_latched)
        if reached:
            self._goal_reached = True
            self.get_logger().info(f"goal reached at ({pose[0]:.2f}, {pose[1]:.2f}, {pose[2]:.2f})")
            return self._stop("goal reached")
        robot = RobotSnapshot(pose, vel, self._acceleration())
        try:
            plan = plan_step(policy.run, policy.spec, self._config, grid, robot, goal, self._last_command)
        except PolicyError as exc:
            return self._stop(f"inference error: {exc}")
        for stage, ms in plan.timings_ms.items():
            self._stats.timings[stage].append(ms)
        if not plan.ok:
            self._rejected += 1
            return self._stop(f"plan rejected: {plan.reason}")
        t_pub = time.perf_counter()
        self._publish_plan(plan, now, policy.spec.dt)
        t_end = time.perf_counter()
        self._stats.timings["publish"].append((t_end - t_pub) * 1e3)
        self._stats.timings["total"].append((t_end - t0) * 1e3)
        self._status, self._stop_reason = "planning", ""
        self._last_logged_reason = ""

    def _publish_plan(self, plan: Plan, now: float, dt: float) -> None:
        self._publish_command(plan.command)  # first: the base acts on it; the rest is for consumers and RViz
        self._pubs["trajectory"].publish(conv.trajectory_msg(plan.controls.astype(np.float32)))
        self._pubs["local_plan"].publish(self._path_buffer.fill(plan.path, self._odom.frame, now, dt))

    def _publish_command(self, command: np.ndarray) -> None:
        pub = self._pubs.get("cmd_vel")
        if pub is None:
            return
        if self._p("use_twist_stamped"):
            now = self.get_clock().now().nanoseconds * 1e-9
            pub.publish(conv.twist_stamped_msg(command, self._p("base_frame"), now))
        else:
            pub.publish(conv.twist_msg(command))
        self._last_command = np.asarray(command, dtype=float)

    def _stop(self, reason: str) -> None:
        """Do not plan this tick: stop the robot if it was moving and say why (throttled)."""
        moving = bool(np.any(self._last_command != 0.0))
        if self._odom is not None and not moving:
            moving = bool(np.any(np.abs(self._odom.value[1]) > 1e-3)) and reason != "goal reached"
        if moving:
            self._publish_command(np.zeros(3))
        self._status, self._stop_reason = ("goal reached" if reason == "goal reached" else "stopped"), reason
        wall = time.monotonic()
        if reason != self._last_logged_reason or wall - self._last_log_time > 5.0:  # throttled per reason
            self._last_logged_reason, self._last_log_time = reason, wall
            if reason in ("goal reached", "no goal", "no costmap received", "no odometry received"):
                self.get_logger().info(f"not planning: {reason}")
            else:  # rclpy pins one severity per call site: keep the two calls apart
                self.get_logger().warning(f"not planning: {reason}")

    # ----------------------------------------------------------------- diagnostics
    @guarded
    def _publish_diagnostics(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        policy, period = self._policy, 1.0 / self._p("planning_frequency")
        values: dict[str, Any] = {
            "lifecycle_state": self._status if self._status != "planning" or self._active else "inactive",
            "model_path": policy.path if policy else self._model_path(),
            "provider": policy.providers[0] if policy else "",
            "model_has_metadata": policy.has_metadata if policy else "",
            "load_error": self._load_error,
            "planning_frequency_hz": f"{self._p('planning_frequency'):.1f}",
            "achieved_rate_hz": f"{self._stats.rate():.2f}",
            "ticks": self._ticks,
            "plans_rejected": self._rejected,
            "costmap_age_s": f"{now - self._grid.stamp:.3f}" if self._grid else "none",
            "odom_age_s": f"{now - self._odom.stamp:.3f}" if self._odom else "none",
            "goal": "none" if self._goal is None else "({:.2f}, {:.2f}, {:.2f})".format(*self._goal.value),
            "stop_reason": self._stop_reason,
        }
        values.update(self._stats.percentiles())
        level, message = DiagnosticStatus.OK, self._status
        if self._load_error and policy is None:
            level, message = DiagnosticStatus.ERROR, f"no model: {self._load_error}"
        elif self._load_error:
            level, message = DiagnosticStatus.WARN, self._load_error
        elif self._active and self._stop_reason and self._stop_reason not in ("goal reached", "no goal"):
            level, message = DiagnosticStatus.WARN, f"stopped: {self._stop_reason}"
        elif self._active and self._stats.over_budget(self._p("compute_warn_fraction") * period * 1e3):
            level, message = DiagnosticStatus.WARN, (f"tick compute p95 {self._stats.percentile('total', 95):.1f} ms "
                                                     f"exceeds {self._p('compute_warn_fraction'):.0%} of the period")
        elif self._stop_reason:
            message = f"{self._status}: {self._stop_reason}"
        status = conv.diagnostic_status(f"{self.get_name()}: planner", self.get_fully_qualified_name(),
                                        level, message, values)
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self._diag_pub.publish(arr)


def _policy_name(kind: Any) -> str:
    return getattr(kind, "name", str(kind))


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = PlannerNode()
    # rclpy's MultiThreadedExecutor costs ~10x in tick jitter (measured); one thread is plenty.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        try:
            node.safe_shutdown()
        except Exception:  # the context may already be gone at interpreter shutdown
            pass
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
