"""The planning session: everything stateful about planning, in one place, without ROS.

The node, the simulator, training (dataset, DAgger, evaluation) and the benchmarks all drive a
``PlannerSession``: they hand it stamped inputs and call ``tick(now)`` at the planning rate; it
returns a ``Decision``. Input gates, the goal latch and check, path following, the odometry
history behind the acceleration estimate, the previous command, the fallback planner, the
progress checker, recovery and the typed stop reasons exist only here.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import kinematics, path, safety, tensors
from .contract import COSTMAP_INPUT, GOAL_INPUT, STATE_INPUT, ModelSpec
from .ga import ARRIVAL_TERMS, GAConfig, GAPlanner
from .planner import PlannerConfig, RobotSnapshot, build_inputs, make_safe

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]  # feed dict (batch 1) → [1, steps*3]

# Odometry beyond these is a broken driver, not a robot: refused (m/s, rad/s).
MAX_ODOM_SPEED = 20.0
MAX_ODOM_YAW_RATE = 20.0
MAX_FRAME_CHARS = 256


class Level(enum.IntEnum):
    """Severity, numbered like diagnostic_msgs/DiagnosticStatus."""

    OK = 0
    WARN = 1
    ERROR = 2


# The escape a stuck fallback makes (floors of the recovery, not parameters).
ESCAPE_TIME = 4.0  # s: the longest one escape lasts before the planners try again
ESCAPE_SPEED = 0.15  # m/s: driving (or backing) clear of an obstacle
ESCAPE_HEADING = 0.35  # rad: turn in place until the way out is within this of straight ahead
ESCAPE_REACH = 0.5  # m beyond the required clearance: obstacles this close push the escape's direction
MAX_FALLBACK_STALLS = 3  # the fallback stalls this often in a row (no progress in between): the goal fails
# hybrid: the network's plans judged no later than the fallback GA's own on every tick this long (s) drive again
# before fallback_hold_time (a floor: one verdict is no evidence, and a flickering network would stop and go)
AS_GOOD_TIME = 0.25


class StopReason(enum.Enum):
    """Why the robot is not executing a plan this tick; ``NONE`` while it is."""

    NONE = ("planning", Level.OK)
    INACTIVE = ("not active", Level.OK)
    NO_MODEL = ("no model loaded", Level.ERROR)
    NO_COSTMAP = ("no costmap received", Level.OK)
    NO_ODOMETRY = ("no odometry received", Level.OK)
    NO_GOAL = ("no goal", Level.OK)
    GOAL_REACHED = ("goal reached", Level.OK)
    GOAL_EXPIRED = ("goal expired (goal_timeout)", Level.WARN)
    GOAL_FAILED = ("goal failed", Level.ERROR)
    COSTMAP_STALE = ("costmap is stale", Level.WARN)
    ODOMETRY_STALE = ("odometry is stale", Level.WARN)
    BAD_COSTMAP = ("costmap rejected", Level.WARN)
    BAD_ODOMETRY = ("odometry rejected", Level.WARN)
    BAD_GOAL = ("goal rejected", Level.WARN)
    BAD_PATH = ("path rejected", Level.WARN)
    NO_TRANSFORM = ("no transform", Level.WARN)
    FRAME_MISMATCH = ("frames disagree", Level.WARN)
    OFF_MAP = ("robot off the costmap or on unknown space", Level.WARN)
    BAD_INPUT = ("bad input", Level.WARN)
    INFERENCE_ERROR = ("inference error", Level.ERROR)
    PLAN_REJECTED = ("plan rejected", Level.WARN)
    DEADLINE = ("tick overran its deadline", Level.ERROR)
    CLOCK_STOPPED = ("clock stopped", Level.ERROR)
    CLOCK_JUMPED = ("clock jumped back: inputs and goal cleared", Level.WARN)
    INTERNAL_ERROR = ("internal error", Level.ERROR)
    SHUTDOWN = ("shutting down", Level.OK)

    @property
    def message(self) -> str:
        return self.value[0]

    @property
    def level(self) -> Level:
        return self.value[1]


INPUT_REASONS = {"costmap": StopReason.BAD_COSTMAP, "odometry": StopReason.BAD_ODOMETRY,
                 "goal": StopReason.BAD_GOAL, "path": StopReason.BAD_PATH, "transform": StopReason.NO_TRANSFORM}


@dataclass
class Decision:
    """The outcome of one tick: what to command and why."""

    stamp: float
    reason: StopReason
    detail: str = ""
    command: np.ndarray = field(default_factory=lambda: np.zeros(3))
    send: bool = False  # publish ``command`` this tick (always while executing; while a stop is needed)
    controls: np.ndarray | None = None  # the executed plan [steps, 3]
    path: np.ndarray | None = None  # its rollout [steps+1, 3] in the odometry frame
    planner: str = ""  # onnx | ga | recovery while executing
    feed: dict[str, np.ndarray] | None = None  # the model's inputs this tick (recording, replay)
    network_raw: np.ndarray | None = None  # the network's raw plan [steps*3], when it ran
    network_ok: bool | None = None  # whether the safety layer accepted the network's plan
    ga_raw: np.ndarray | None = None  # the GA's raw plan [steps*3], when it ran (labels, recording)
    ga_warm: bool | None = None  # whether the GA's plan of this tick started from its last plan (None: no GA)
    carrot: np.ndarray | None = None  # the model's goal pose this tick (odometry frame)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def executing(self) -> bool:
        return self.reason is StopReason.NONE

    @property
    def message(self) -> str:
        return f"{self.reason.message}: {self.detail}" if self.detail else self.reason.message


@dataclass
class _Goal:
    poses: np.ndarray  # [N, 3]: one pose for a single goal, the path otherwise
    stamp: float
    frame: str
    is_path: bool
    index: int = 0  # path poses before this one have been passed
    xy_latched: bool = False
    tail: np.ndarray | None = None  # arc length from each pose to the end (computed on first use)

    def to_go(self, xy: np.ndarray) -> float:
        """Distance (m) still to go: to the goal, or to the path's next pose and along the rest of it."""
        if self.tail is None:
            self.tail = path.tail_lengths(self.poses)
        return float(np.hypot(*(self.poses[self.index, :2] - xy[:2])) + self.tail[self.index])


def _frame(frame: str) -> str:
    return frame if len(frame) <= MAX_FRAME_CHARS else frame[:MAX_FRAME_CHARS] + "…"


class PlannerSession:
    """One robot's planning state. Setters validate and store; ``tick`` decides. Nothing raises."""

    def __init__(self, config: PlannerConfig, spec: ModelSpec, network: Policy | None = None,
                 ga_config: GAConfig = GAConfig(), seed: int = 0) -> None:
        self.config, self.spec, self.network = config, spec, network
        self._ga_config, self._seed = ga_config, seed
        self._ga: GAPlanner | None = None
        self._grid: tuple[tensors.Grid, float] | None = None
        self._odom: tuple[np.ndarray, np.ndarray, float, str] | None = None
        self._history: collections.deque[tuple[float, np.ndarray]] = collections.deque(maxlen=400)
        self._goal: _Goal | None = None
        self._goal_outcome: StopReason | None = None
        self._errors: dict[str, str] = {}
        self._make_checkers()
        self.last_command = np.zeros(3)
        self.reset_counters()
        self._reset_planning()

    # ------------------------------------------------------------------ configuration
    def reset_counters(self) -> None:
        self.ticks = self.rejected = self.fallback_ticks = self.recovery_ticks = self.stalls = self.takeovers = 0
        # The last time the GA took over from a network that drove (fallback_compare_margin), and why.
        self.last_takeover: tuple[float, str] | None = None
        # The last time the progress checker found no progress, and what it said (diagnostics WARN).
        self.last_stall: tuple[float, str] | None = None

    def _make_checkers(self) -> None:
        """Nav2's progress checker and the approach check, from the config's radius and allowance."""
        c = self.config
        self._progress = path.ProgressChecker(c.required_movement_radius, c.movement_time_allowance)
        self._approach = path.ApproachChecker(c.required_movement_radius, c.movement_time_allowance)

    def _reset_planning(self) -> None:
        self._rejections = 0
        self._escape_until: float | None = None
        # After a stall the network drives again only once the distance to go is below this (m).
        self._handback_below: float | None = None
        self._fallback_stalls = 0  # stalls of the fallback since it last made progress
        self._fallback_active = False
        self._network_ok_since: float | None = None
        self._no_plan_since: float | None = None
        self._next_compare: float | None = None  # when the GA next plans beside a driving network
        self._network_behind = False  # the fallback's last comparison: the network's plan not yet as good
        # since when every fallback tick has judged the network's (accepted) plan no later than the GA's own;
        # None whenever the fallback is not driving (cleared at the hand-back)
        self._as_good_since: float | None = None
        self._pace: tuple[float, float] | None = None  # (since, the estimate of the arrival then): the network's pace
        self._network_drove = False  # hybrid: the network drove since the GA last planned (its warm start is old)
        self._restart_progress()
        if self._ga is not None:
            self._ga.reset()

    def set_config(self, config: PlannerConfig) -> None:
        """Swap in a validated configuration (inputs and the goal are kept)."""
        old, self.config = self.config, config
        self._make_checkers()
        if old.fallback_compare_period != config.fallback_compare_period:
            self._next_compare = None
        self._pace = None  # the limits (and so the estimates) may have changed
        self._ga = None  # rebuilt with the new limits on first use
        if (old.planner, old.fallback_planner) != (config.planner, config.fallback_planner):
            self._reset_planning()  # no fallback, escape or hand-back of another mode carries over

    def set_model(self, network: Policy | None, spec: ModelSpec) -> None:
        """Swap the network (and the geometry it plans with)."""
        self.network, self.spec = network, spec
        self._ga = None
        self._next_compare = self._pace = self._as_good_since = None

    def reset(self) -> None:
        """Forget the goal and every input (deactivate, cleanup, a clock that jumped back)."""
        self._grid = self._odom = self._goal = None
        self._goal_outcome = None
        self._history.clear()
        self._errors.clear()
        self.last_command = np.zeros(3)
        self._reset_planning()

    def clear_goal(self) -> None:
        self._goal, self._goal_outcome = None, None
        self._errors.pop("goal", None)
        self._errors.pop("path", None)
        self._reset_planning()

    # ------------------------------------------------------------------ inputs
    def reject(self, kind: str, message: str) -> None:
        """An input of ``kind`` (costmap, odometry, goal, path, transform) was refused upstream."""
        prefix = INPUT_REASONS[kind].message + ": "  # the Decision's message starts with it already
        self._errors[kind] = (message[len(prefix):] if message.startswith(prefix) else message)[:500]
        if kind == "costmap":
            self._grid = None
        elif kind == "odometry":
            self._odom = None
        elif kind in ("goal", "path"):
            self._goal = None

    def accept(self, kind: str) -> None:
        """Clear an upstream refusal of ``kind`` (e.g. a transform that became available)."""
        self._errors.pop(kind, None)

    def set_costmap(self, grid: tensors.Grid, stamp: float) -> str | None:
        """Store a costmap (fine grids are max-pooled once here, so each tick's work is bounded)."""
        try:
            stamp = float(stamp)
            if not np.isfinite(stamp):
                raise ValueError(f"stamp {stamp} is not finite")
            grid = tensors.pool_grid(grid, self.spec.resolution)
        except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:  # garbage is refused, not raised
            self.reject("costmap", f"costmap rejected: {exc}")
            return str(exc)
        self._grid = (grid, float(stamp))
        self._errors.pop("costmap", None)
        return None

    def set_odometry(self, pose: np.ndarray, velocity: np.ndarray, stamp: float, frame: str = "odom") -> str | None:
        """Store odometry (pose in its frame, body-frame twist) and extend the acceleration history."""
        try:
            stamp = float(stamp)
            pose = tensors.check_pose(np.asarray(pose, dtype=np.float64).copy(), "odometry pose")
            if pose.shape != (3,):
                raise ValueError(f"odometry pose must be one pose (x, y, yaw), got shape {pose.shape}")
            pose[2] = float(tensors.wrap_angle(pose[2]))
            vel = np.asarray(velocity, dtype=np.float64).reshape(3)
            if not (np.isfinite(vel).all() and np.isfinite(stamp)):
                raise ValueError(f"twist {vel.tolist()} or stamp {stamp} is not finite")
            if max(abs(vel[0]), abs(vel[1])) > MAX_ODOM_SPEED or abs(vel[2]) > MAX_ODOM_YAW_RATE:
                raise ValueError(f"twist {vel.tolist()} is beyond any robot ({MAX_ODOM_SPEED} m/s, "
                                 f"{MAX_ODOM_YAW_RATE} rad/s)")
        except (ValueError, TypeError) as exc:
            self.reject("odometry", f"odometry rejected: {exc}")
            return str(exc)
        if self._history and stamp < self._history[-1][0]:
            self._history.clear()  # time went backwards (bag loop, simulation reset)
        elif self._history and stamp == self._history[-1][0]:
            self._history.pop()  # the same stamp again: the newer sample replaces it
        self._history.append((float(stamp), vel))
        self._odom = (pose, vel, float(stamp), _frame(frame))
        self._errors.pop("odometry", None)
        return None

    def set_goal(self, pose: np.ndarray, stamp: float, frame: str = "") -> str | None:
        """A single goal (odometry frame, or ``frame`` when it is the odometry's); replaces any path."""
        try:
            stamp = float(stamp)
            goal = tensors.check_pose(np.asarray(pose, dtype=np.float64), "goal pose")
            if goal.shape != (3,):
                raise ValueError(f"goal must be one pose (x, y, yaw), got shape {goal.shape}")
            if not np.isfinite(stamp):
                raise ValueError(f"stamp {stamp} is not finite")
        except (ValueError, TypeError) as exc:
            self.reject("goal", f"goal rejected: {exc}")
            self._goal_outcome = None
            return str(exc)
        self._set_goal(_Goal(goal[None].copy(), float(stamp), _frame(frame), False))
        return None

    def set_path(self, poses: np.ndarray, stamp: float, frame: str = "") -> str | None:
        """A global path to follow by a carrot (odometry frame); replaces the goal or path."""
        try:
            stamp = float(stamp)
            poses = path.check_path(poses)
            if not np.isfinite(stamp):
                raise ValueError(f"stamp {stamp} is not finite")
        except (ValueError, TypeError) as exc:
            self.reject("path", f"path rejected: {exc}")
            self._goal_outcome = None
            return str(exc)
        self._set_goal(_Goal(poses.copy(), float(stamp), _frame(frame), True))
        return None

    def update_goal_poses(self, poses: np.ndarray) -> str | None:
        """Re-express the current goal or path (same poses, e.g. re-transformed from ``map`` as ``map →
        odom`` moves) without resetting the latch, the pruning index or the fallback state."""
        if self._goal is None:
            return "no goal"
        try:
            poses = path.check_path(np.asarray(poses, dtype=np.float64).reshape(-1, 3))
        except (ValueError, TypeError) as exc:
            return str(exc)
        if poses.shape != self._goal.poses.shape:
            return f"expected {len(self._goal.poses)} poses, got {len(poses)}"
        self._goal.poses = poses.copy()  # a rigid re-expression: the arc lengths (tail) stay
        return None

    def _set_goal(self, goal: _Goal) -> None:
        """A new goal restarts planning (fallback, progress, recovery). A path to the same end as the path
        being followed is the global planner replanning (Nav2's planner_server, about once a second): it
        replaces the poses and keeps the rest, as Nav2's controller server keeps its progress checker."""
        old, c = self._goal, self.config
        replanned = (old is not None and old.is_path and goal.is_path and self._goal_outcome is None
                     and old.frame == goal.frame
                     and float(np.hypot(*(old.poses[-1, :2] - goal.poses[-1, :2]))) <= c.xy_goal_tolerance
                     and abs(float(tensors.wrap_angle(old.poses[-1, 2] - goal.poses[-1, 2]))) <= c.yaw_goal_tolerance)
        self._goal, self._goal_outcome = goal, None
        self._errors.pop("goal", None)
        self._errors.pop("path", None)
        if replanned:
            goal.xy_latched = old.xy_latched
            if self._odom is not None:  # distances to go are now measured along the new path: shift the marks
                pose = self._odom[0]
                delta = goal.to_go(pose) - old.to_go(pose)
                self._approach.shift(delta)
                if self._pace is not None:  # a longer way to the same end is not time the network lost
                    self._pace = (self._pace[0], self._pace[1] + delta / kinematics.top_speed(c.limits, c.speed_limit))
                if self._handback_below is not None:
                    self._handback_below += delta
        else:
            self._reset_planning()

    # ------------------------------------------------------------------ views
    @property
    def has_goal(self) -> bool:
        return self._goal is not None and self._goal_outcome is None

    @property
    def goal_pose(self) -> np.ndarray | None:
        """The final goal (the path's last pose), if any."""
        return None if self._goal is None else self._goal.poses[-1].copy()

    @property
    def plan_reach(self) -> float:
        """How far (m) one plan can take the base: top speed over the model's horizon. Within it of the goal
        (or the path's end), hybrid's comparison runs on every tick: the final approach."""
        c = self.config
        return kinematics.top_speed(c.limits, c.speed_limit) * self.spec.steps * self.spec.dt

    def distance_to_go(self) -> float:
        """The distance (m) still to go from the latest odometry: to the goal, or along the path to its end;
        0 without a goal or odometry."""
        if self._goal is None or self._odom is None:
            return 0.0
        return self._goal.to_go(self._odom[0])

    @property
    def remaining_path(self) -> np.ndarray | None:
        """The path's poses not yet passed (path mode only)."""
        return None if self._goal is None or not self._goal.is_path else self._goal.poses[self._goal.index:]

    @property
    def odometry_frame(self) -> str:
        return self._odom[3] if self._odom else ""

    def input_ages(self, now: float) -> dict[str, float | None]:
        return {"costmap": now - self._grid[1] if self._grid else None,
                "odometry": now - self._odom[2] if self._odom else None}

    @property
    def using_fallback(self) -> bool:
        return self._fallback_active

    def progress_stalled_for(self, now: float) -> float:
        return self._progress.stalled_for(now)

    def acceleration(self) -> np.ndarray:
        """The smoothed acceleration estimate from the odometry history (zeros if too short)."""
        if len(self._history) < 2:
            return np.zeros(3)
        # the history is in increasing stamp order: walk back from the newest to the window's start
        cutoff = self._history[-1][0] - 2.0 * self.config.acceleration_window - 1e-9
        recent = []
        for sample in reversed(self._history):
            if sample[0] < cutoff:
                break
            recent.append(sample)
        recent.reverse()
        times = np.fromiter((h[0] for h in recent), float, len(recent))
        vels = np.stack([h[1] for h in recent])
        return kinematics.estimate_acceleration(times, vels, self.config.acceleration_window, self.config.limits)

    # ------------------------------------------------------------------ the tick
    def tick(self, now: float) -> Decision:
        """Decide this tick's command. Never raises: an unexpected error stops the robot with a reason."""
        t0 = time.perf_counter()
        self.ticks += 1
        try:
            now = float(now)
            if not np.isfinite(now):  # a NaN clock would pass every age check
                decision = Decision(now, StopReason.BAD_INPUT, f"clock reads {now}")
            else:
                decision = self._tick(now)
        except Exception as exc:  # a bug must stop the robot, not the caller
            decision = Decision(now, StopReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        if not (decision.executing and decision.planner == "onnx"):
            self._pace = None  # the network's pace is measured over the ticks it drives, from its next comparison
        if not decision.executing:
            decision = self._stop(decision)
        decision.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        self.last_command = decision.command.copy() if decision.send else self.last_command
        return decision

    def stop_decision(self, now: float, reason: StopReason, detail: str = "") -> Decision:
        """A stop from outside the tick (deactivation, watchdog, shutdown): always sends a zero."""
        self.last_command = np.zeros(3)
        return Decision(now, reason, detail, np.zeros(3), True)

    def _stop(self, d: Decision) -> Decision:
        moving = bool(np.any(self.last_command != 0.0))
        if not moving and self._odom is not None and d.reason is not StopReason.GOAL_REACHED:
            moving = bool(np.any(np.abs(self._odom[1]) > 1e-3))
        d.command, d.send = np.zeros(3), moving
        return d

    def _gate(self, now: float) -> Decision | None:
        c = self.config
        for kind in ("costmap", "odometry", "transform", "goal", "path"):
            if kind in self._errors:
                return Decision(now, INPUT_REASONS[kind], self._errors[kind])
        if self._grid is None:
            return Decision(now, StopReason.NO_COSTMAP)
        if self._odom is None:
            return Decision(now, StopReason.NO_ODOMETRY)
        if self._goal_outcome is not None:
            return Decision(now, self._goal_outcome)
        if self._goal is None:
            return Decision(now, StopReason.NO_GOAL)
        c_age, o_age = now - self._grid[1], now - self._odom[2]
        if abs(c_age) > c.costmap_timeout:  # a stamp far in the future is stale too: clocks jump
            return Decision(now, StopReason.COSTMAP_STALE,
                            f"age {c_age:.2f} s > costmap_timeout {c.costmap_timeout:.2f} s")
        if abs(o_age) > c.odom_timeout:
            return Decision(now, StopReason.ODOMETRY_STALE, f"age {o_age:.2f} s > odom_timeout {c.odom_timeout:.2f} s")
        if c.goal_timeout > 0 and now - self._goal.stamp > c.goal_timeout:
            self._goal_outcome = StopReason.GOAL_EXPIRED
            return Decision(now, StopReason.GOAL_EXPIRED, f"received {now - self._goal.stamp:.1f} s ago")
        odom_frame, grid_frame = self._odom[3], self._grid[0].frame_id
        if grid_frame != odom_frame:
            return Decision(now, StopReason.FRAME_MISMATCH,
                            f"costmap frame '{_frame(grid_frame)}' != odometry frame '{odom_frame}'")
        if self._goal.frame and self._goal.frame != odom_frame:
            return Decision(now, StopReason.FRAME_MISMATCH,
                            f"goal frame '{self._goal.frame}' != odometry frame '{odom_frame}'")
        return None

    def _tick(self, now: float) -> Decision:
        gate = self._gate(now)
        if gate is not None:
            return gate
        c, goal = self.config, self._goal
        grid = self._grid[0]
        pose, vel = self._odom[0], self._odom[1]
        final = goal.poses[-1]
        reached, goal.xy_latched = safety.goal_check(pose, final, c.xy_goal_tolerance, c.yaw_goal_tolerance,
                                                     c.stateful_goal_checker, goal.xy_latched)
        if reached:
            self._goal_outcome = StopReason.GOAL_REACHED
            return Decision(now, StopReason.GOAL_REACHED, f"at ({pose[0]:.2f}, {pose[1]:.2f}, {pose[2]:.2f})")
        if not c.allow_unknown and tensors.grid_value_at(grid, pose[:2]) < 0:
            return Decision(now, StopReason.OFF_MAP, f"at ({pose[0]:.2f}, {pose[1]:.2f}); set allow_unknown to "
                            "plan there")
        target = self._model_goal(pose, now)
        robot = RobotSnapshot(pose, vel, self.acceleration())
        t0 = time.perf_counter()
        try:
            feed = build_inputs(grid, robot, target, self.spec, c)
        except ValueError as exc:
            return Decision(now, StopReason.BAD_INPUT, str(exc), carrot=target)
        timings = {"tensors": (time.perf_counter() - t0) * 1e3}
        window = feed[COSTMAP_INPUT][0, 0]
        d = Decision(now, StopReason.NONE, feed=feed, carrot=target, timings_ms=timings)
        plan = self._plan(d, window, robot, now)
        if plan is None:
            return d
        controls, rel, planner = plan
        d.controls, d.path, d.planner = controls, kinematics.compose(pose, rel), planner
        d.command, d.send = controls[0].copy(), True
        return d

    def _model_goal(self, pose: np.ndarray, now: float) -> np.ndarray:
        """The goal the model sees: the goal itself, or the carrot on the path. A carrot short of the
        path's end is pushed out to the clip distance along its bearing, so the model plans through
        it instead of stopping there (the model reads "final goal" from a goal inside the clip)."""
        goal, c = self._goal, self.config
        if not goal.is_path:
            return goal.poses[0]
        goal.index = path.prune(goal.poses, goal.index, pose[:2], c.carrot_distance + 1.0)
        point, is_end = path.carrot(goal.poses, goal.index, min(c.carrot_distance, c.goal_clip_distance))
        if is_end:
            return point
        d = point[:2] - pose[:2]
        dist = float(np.hypot(*d))
        if dist > 1e-6:
            point[:2] = pose[:2] + d * (c.goal_clip_distance * 1.01 / dist if dist < c.goal_clip_distance else 1.0)
        return point

    # ------------------------------------------------------------------ planners
    def _run(self, policy: Policy, feed: dict[str, np.ndarray], window: np.ndarray, robot: RobotSnapshot,
             d: Decision, stage: str) -> tuple[np.ndarray, safety.PlanCheck, np.ndarray]:
        t0 = time.perf_counter()
        raw = np.asarray(policy(feed), dtype=np.float64).reshape(-1)
        t1 = time.perf_counter()
        controls, check = make_safe(raw, window, self.last_command, robot.velocity, self.spec, self.config)
        if policy == self._ga_policy and self._ga is not None:
            d.ga_warm = self._ga.warm_started
        d.timings_ms[stage] = d.timings_ms.get(stage, 0.0) + (t1 - t0) * 1e3
        d.timings_ms["safety"] = d.timings_ms.get("safety", 0.0) + (time.perf_counter() - t1) * 1e3
        return raw, check, controls

    def _ga_policy(self, feed: dict[str, np.ndarray], goal: np.ndarray | None = None) -> np.ndarray:
        c = self.config
        if self._ga is None:
            self._ga = GAPlanner(self.spec, c.limits, c.robot_radius, self._ga_config, self._seed,
                                 max(c.collision_lookahead_time, safety.MIN_LOOKAHEAD_TIME),
                                 control_period=c.control_period, speed_limit=c.speed_limit)
        goal = self.ga_goal(feed) if goal is None else goal
        velocity = feed[STATE_INPUT][0, 3:6].astype(np.float64)
        return self._ga.plan(feed[COSTMAP_INPUT][0, 0], velocity, goal, c.goal_clip_distance,
                             xy_tolerance=c.xy_goal_tolerance, yaw_tolerance=c.yaw_goal_tolerance,
                             stateful=c.stateful_goal_checker, margin=not self.tight).reshape(1, -1)

    @property
    def tight(self) -> bool:
        """Whether the GA plans without its soft clearance margin (``ga.GAConfig.w_margin``; the safety layer's
        required clearance stays the floor): while it is hybrid's fallback, and for ``planner: ga`` from a stall
        until it is ``required_movement_radius`` closer to the goal than where it stalled. The fallback drives
        where the network failed or fell behind, often a doorway or a gap narrower than the robot plus that
        margin, where every way on grazes it and a GA that prices it holds still or dithers in front (measured
        in the door family); in the open the margin seldom binds. The comparison (``_judge``) never prices it
        (it is the GA's taste, not time), so a takeover and its hand-back are judged alike."""
        return self._fallback_active or self._fallback_stalls > 0

    @property
    def position_accepted(self) -> bool:
        """Whether the stateful goal checker has accepted the goal's position (only the heading is left)."""
        return self._goal is not None and self._goal.xy_latched

    def ga_goal(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The robot-frame goal the GA plans (and judges the network's plan) toward: the feed's, or once the
        stateful goal checker has accepted the position, the robot's own position with the goal's heading.
        Only the heading is left then (Nav2's checker accepts any position from there on); aiming at the exact
        point would have the GA turn back to drive the last few centimetres inside the tolerance. The one rule
        for the fallback, ``planner: ga`` and DAgger's labels (an episode hands its session's to the labeller)."""
        goal = feed[GOAL_INPUT][0].astype(np.float64)
        if not self.position_accepted or self._odom is None:
            return goal
        heading = float(tensors.wrap_angle(self._goal.poses[-1][2] - self._odom[0][2]))
        return np.array([0.0, 0.0, heading])

    def ga_plan(self, feed: dict[str, np.ndarray], warm_start: bool = True, goal: np.ndarray | None = None
                ) -> np.ndarray:
        """The GA's raw plan [steps*3] for a feed, called as the fallback calls it (warm-started from its
        previous plan unless ``warm_start`` is False; without the soft clearance margin while ``tight``, which a
        session without a goal, the labeller's, never is). Labels for DAgger, benchmarks. ``goal``: the robot-frame
        goal to plan toward (default ``ga_goal(feed)``; a labeller's session has no goal of its own: the
        episode's session hands it its ``ga_goal``)."""
        if not warm_start and self._ga is not None:
            self._ga.reset()
        return self._ga_policy(feed, goal).reshape(-1)

    def _plan(self, d: Decision, window: np.ndarray, robot: RobotSnapshot, now: float
              ) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(controls, robot-frame rollout, planner) to execute, or None with ``d`` saying why not."""
        c = self.config
        mode = c.planner
        fallback = mode == "ga" or (mode == "hybrid" and c.fallback_planner == "ga")
        to_go = self.distance_to_go()  # (robot.pose is the latest odometry's)
        if mode != "ga":
            if self.network is None:
                d.reason = StopReason.NO_MODEL
                return None
            try:
                raw, check, controls = self._run(self.network, d.feed, window, robot, d, "inference")
            except Exception as exc:  # onnxruntime raises several private exception types
                d.reason, d.detail = StopReason.INFERENCE_ERROR, str(exc)[:500]
                return None
            d.network_raw, d.network_ok = raw, check.ok
            if check.ok:
                self._rejections = 0
                self._network_ok_since = now if self._network_ok_since is None else self._network_ok_since
            else:
                self.rejected += 1
                self._rejections += 1
                self._network_ok_since = None
                d.detail = check.reason
            moving = self._progress.check(robot.pose[:2], now)
            closer = self._approach.check(to_go, now)
            progressing = moving and closer
            progress_made = self._made_progress(to_go)
            if progress_made:  # the stall (if any) is behind: the fallback's stalls count from zero again
                self._handback_below = None
                self._fallback_stalls = 0
            if not progressing:
                self._stalled(now, fallback, moving)
            if fallback:
                if self._rejections >= c.fallback_after_rejections or not progressing:
                    if not progressing:
                        if self._fallback_active:  # the fallback is stuck too
                            self._network_behind = False  # the comparison no longer speaks for the GA
                            self._as_good_since = None
                            self._fallback_stalls += 1
                            if self._fallback_stalls > MAX_FALLBACK_STALLS:
                                return self._fail_goal(
                                    d, f"no progress: the fallback stalled {self._fallback_stalls} times in a row")
                            if not moving and self._escape_until is None:  # it holds still: get clear first
                                self._escape_until = now + ESCAPE_TIME
                        self._restart_progress()  # a fresh allowance for the fallback (or for it after the escape)
                        # the network led here: the fallback drives until it has made the progress it did not
                        self._handback_below = to_go - c.required_movement_radius
                    if not self._fallback_active:
                        self._network_ok_since = None  # the hold time counts from the takeover
                    self._fallback_active = True
                elif self._fallback_active and check.ok and progress_made \
                        and (now - self._network_ok_since >= c.fallback_hold_time or self._as_good_for(now)) \
                        and not (self._network_behind and c.fallback_compare_period > 0):
                    self._fallback_active, self._as_good_since = False, None
                    self._next_compare = now + c.fallback_compare_period
            if check.ok and not self._fallback_active:
                taken = self._compare(d, window, robot, now, to_go) if fallback else None
                if taken is not None:
                    return taken
                self._no_plan_since = self._escape_until = None
                self._network_drove = True
                return controls, check.relative_poses, "onnx"
            if not fallback:
                return self._nothing_valid(d, now, check.reason, recover=False)
            if not self._fallback_active:
                d.reason = StopReason.PLAN_REJECTED
                return None
        if mode == "ga":
            self._watch_progress(robot, now, to_go)
        if self._escape_until is not None:
            escaped = self._escape(d, window, now)
            if escaped is not None:
                return escaped
        self.fallback_ticks += 1
        self._ga_warm_start()
        d.ga_raw, check, controls = self._run(self._ga_policy, d.feed, window, robot, d, "fallback")
        as_good = False
        if check.ok:
            if d.network_ok and c.fallback_compare_period > 0:
                # hysteresis: taken over beyond the margin, handed back within half of it after the hold time,
                # or once the network's plans have got there no later than the GA's own for AS_GOOD_TIME
                behind = self._judge(d, window, to_go)[0]
                self._network_behind = behind > 0.5 * c.fallback_compare_margin
                as_good = behind <= 0.0
                if self._network_behind:
                    self._network_ok_since = None  # the hold time counts from a plan as good as the GA's
        if not as_good:  # (a rejected plan, a GA without a plan, a plan behind: the run starts again)
            self._as_good_since = None
        elif self._as_good_since is None:
            self._as_good_since = now
        if check.ok:
            self._no_plan_since = None
            return controls, check.relative_poses, "ga"
        return self._nothing_valid(d, now, f"fallback: {check.reason}", recover=True)

    def _as_good_for(self, now: float) -> bool:
        """Whether the fallback's comparisons have judged the network's (accepted) plans no later than the GA's
        own on every tick for ``AS_GOOD_TIME``: the network drives again without waiting for the hold time. A
        single verdict would hand back to a network whose plans are rejected or fall behind every other tick."""
        return self._as_good_since is not None and now - self._as_good_since >= AS_GOOD_TIME - 1e-9

    def _compare(self, d: Decision, window: np.ndarray, robot: RobotSnapshot, now: float, to_go: float
                 ) -> tuple[np.ndarray, np.ndarray, str] | None:
        """While the network drives, the GA plans on the same feed every ``fallback_compare_period`` and, once
        the goal is within one plan's reach, every tick; the fallback takes over with its plan (itself accepted
        by ``make_safe``) when the network is more than ``fallback_compare_margin`` behind it, by either measure:

        - its plan: following the network's (accepted) plan gets the robot there that much later than following
          the GA's (``_judge``), on any comparison;
        - its pace, on the periodic comparisons: since the first comparison of its stint (or the last one where
          it was ahead of the estimate), it has lost that much time against the estimate of the arrival (time
          elapsed + the estimate now − the estimate then; a replanned path's extra length is not counted). A
          plan judged over a horizon of a few seconds cannot show more lateness than the horizon, while a
          network that creeps with plans that look fine (slow now, faster later, re-planned every tick) falls
          further behind at every comparison.

        A network that creeps or heads the long way round is noticed within a few periods instead of the
        progress checker's ``movement_time_allowance``; ``to_go``: the distance still to go (m). None: the
        network keeps driving."""
        c = self.config
        if c.fallback_compare_period <= 0:
            return None
        went_back = self._next_compare is not None and self._next_compare - now > c.fallback_compare_period
        if went_back:
            self._pace = None
        periodic = self._next_compare is None or now >= self._next_compare or went_back
        # The path's end within one plan's reach: every tick, so a plan that will pass it by is noticed in time.
        if not (periodic or to_go <= self.plan_reach):
            return None
        if periodic:
            self._next_compare = now + c.fallback_compare_period
        self._ga_warm_start()
        d.ga_raw, check, controls = self._run(self._ga_policy, d.feed, window, robot, d, "fallback")
        if not check.ok:
            return None
        behind, collides, eta = self._judge(d, window, to_go)
        if behind > c.fallback_compare_margin:
            why = ("the network's plan collides beyond the checked horizon" if collides else
                   f"the GA's plan arrives {behind:.1f} s sooner than the network's")
        else:
            why = self._pace_lost(now, eta) if periodic else None  # the pace is measured over whole periods
            if why is None:
                return None
        self._fallback_active, self._network_behind, self._network_ok_since = True, True, None
        self._restart_progress()  # the GA's own allowance, not what is left of the network's
        self.takeovers += 1
        self.fallback_ticks += 1
        self.last_takeover = (now, f"{why} (fallback_compare_margin {c.fallback_compare_margin:g} s): the GA drives")
        self._no_plan_since = self._escape_until = None
        return controls, check.relative_poses, "ga"

    def _pace_lost(self, now: float, eta: float) -> str | None:
        """Why the network's pace falls behind: it lost more than ``fallback_compare_margin`` against the
        estimate of the arrival ``eta`` since its stint's first comparison (or the last one it was ahead);
        None while it does not."""
        if self._pace is None:
            self._pace = (now, eta)
            return None
        since, then = self._pace
        lost = (now - since) + eta - then
        if lost < 0.0:  # ahead of the estimate: no credit is banked for a later creep
            self._pace = (now, eta)
        if lost <= self.config.fallback_compare_margin:
            return None
        return f"the network has lost {lost:.1f} s against the GA's estimate in {now - since:.1f} s"

    def _ga_warm_start(self) -> None:
        """The GA's warm start (its last plan, shifted by one step) is dropped when the network drove since the
        GA last planned (hybrid); ``planner: ga`` never drops it."""
        if self._network_drove and self._ga is not None:
            self._ga.reset()
        self._network_drove = False

    def _judge(self, d: Decision, window: np.ndarray, to_go: float) -> tuple[float, bool, float]:
        """(how much later the network's raw plan of this tick gets the robot there than the GA's (s), whether
        it collides beyond the safety layer's horizon, the estimate of the time to the end of the goal or path
        (s), by the sooner of the two plans). Both plans are judged by the GA's arrival terms
        (``ga.ARRIVAL_TERMS``: time and collision, not the GA's soft clearance margin), the base following each
        at its limits, arriving where the goal checker accepts it; the estimate adds the path beyond the model's goal (a
        carrot, a clipped goal; ``to_go`` m to go in all) at full speed."""
        c = self.config
        goal = self.ga_goal(d.feed)
        velocity = d.feed[STATE_INPUT][0, 3:6].astype(np.float64)
        final = bool(np.hypot(goal[0], goal[1]) < c.goal_clip_distance - 1e-3)  # as GAPlanner.plan
        plans = np.stack([d.network_raw, d.ga_raw]).reshape(2, self.spec.steps, 3)
        terms = self._ga.cost_terms(plans, window, velocity, goal, final, c.xy_goal_tolerance,
                                    yaw_tolerance=c.yaw_goal_tolerance, judge=True, stateful=c.stateful_goal_checker)
        cost = sum(terms[k] for k in ARRIVAL_TERMS)
        beyond = max(0.0, to_go - float(np.hypot(goal[0], goal[1])))
        soonest = float(terms["arrival"].min()) / max(self._ga.cfg.w_time, 1e-9)  # the better plan's
        eta = soonest + beyond / kinematics.top_speed(c.limits, c.speed_limit)
        return float(cost[0] - cost[1]), bool(terms["collision"][0] > terms["collision"][1]), eta

    def _watch_progress(self, robot: RobotSnapshot, now: float, to_go: float) -> None:
        """``planner: ga``: Nav2's progress checker for the record (diagnostics WARN, ``stalls``); the GA is the
        only planner, so it keeps planning, ``tight`` from a stall until it has made the progress it did not.
        ``to_go``: the distance still to go (m)."""
        c = self.config
        if self._handback_below is not None and to_go < self._handback_below:  # (near the goal too: a door there)
            self._handback_below, self._fallback_stalls = None, 0
        moving = self._progress.check(robot.pose[:2], now)
        if not (self._approach.check(to_go, now) and moving):
            self._stalled(now, False, moving)
            self._restart_progress()
            self._fallback_stalls += 1
            self._handback_below = to_go - c.required_movement_radius

    def _restart_progress(self) -> None:
        self._progress.reset()
        self._approach.reset()

    def _stalled(self, now: float, fallback: bool, moving: bool) -> None:
        """Record a stall (Nav2's progress checker failing, or no closer to the goal): counted once per
        allowance run out."""
        c = self.config
        if self.last_stall is None or self.last_stall[0] < now - c.movement_time_allowance:
            self.stalls += 1
        what = "moved" if not moving else "got closer to the goal by"
        self.last_stall = (now, f"no progress: {what} less than {c.required_movement_radius:g} m in "
                                f"{c.movement_time_allowance:g} s" + (" (the fallback planner takes over)" if fallback
                                                                    else ""))

    def _made_progress(self, to_go: float) -> bool:
        """After a stall, whether the fallback has since got ``required_movement_radius`` closer to the goal
        (along the path) than where the stall was noticed, or is that close to it; always true without a
        stall."""
        near = to_go <= self.config.required_movement_radius
        return self._handback_below is None or to_go < self._handback_below or near

    def _escape(self, d: Decision, window: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, str] | None:
        """A recovery for a fallback that makes no progress (it holds still at an obstacle where every way
        forward looks too close): turn away from the nearby obstacles and drive clear of them, slowly and
        under the safety layer, until the robot has its clearance back (then the planners try again) or
        ``ESCAPE_TIME`` passes. None (the escape is over) when it has nothing valid to do."""
        c, res = self.config, self.spec.resolution
        need = safety.required_clearance(c.robot_radius, res, 0.25 * res) + 2.0 * safety.MARGIN
        reach = need + ESCAPE_REACH
        clear = float(safety.clearance_at(window, np.zeros(2), res, reach))
        bearing = safety.escape_bearing(window, res, reach)
        if now > self._escape_until or clear >= need or bearing is None:
            self._escape_until = None
            self._restart_progress()
            return None
        turn = 0.5 * c.limits.max_omega * (1.0 if bearing >= 0 else -1.0)
        candidates = []
        if c.limits.min_v_x < 0 and abs(bearing) > 0.75 * np.pi:  # the way out is behind: back out
            candidates.append((max(c.limits.min_v_x, -ESCAPE_SPEED), 0.0, 0.0))
        if abs(bearing) > ESCAPE_HEADING:
            candidates += [(0.0, 0.0, turn), (0.0, 0.0, -turn)]
        else:
            w = float(np.clip(1.5 * bearing, -c.limits.max_omega, c.limits.max_omega))
            candidates += [(min(ESCAPE_SPEED, c.limits.max_v_x), 0.0, w), (0.0, 0.0, turn)]
        chosen = self._recovery(d, window, candidates)
        if chosen is None:
            self._escape_until = None
        else:
            self._no_plan_since = None
        return chosen

    def _recovery(self, d: Decision, window: np.ndarray, twists: list[tuple[float, float, float]]
                  ) -> tuple[np.ndarray, np.ndarray, str] | None:
        """The first of the constant ``twists`` the safety layer accepts, as a recovery plan; None if none is."""
        for twist in twists:
            raw = np.tile(np.asarray(twist), self.spec.steps)
            controls, check = make_safe(raw, window, self.last_command, d.feed[STATE_INPUT][0, 3:6], self.spec,
                                        self.config)
            if check.ok:
                self.recovery_ticks += 1
                return controls, check.relative_poses, "recovery"
        return None

    def _fail_goal(self, d: Decision, detail: str) -> None:
        """Give the goal up (Nav2's controller server aborts): latched until a new goal."""
        self._goal_outcome = StopReason.GOAL_FAILED
        d.reason, d.detail = StopReason.GOAL_FAILED, detail

    def _nothing_valid(self, d: Decision, now: float, why: str, recover: bool
                       ) -> tuple[np.ndarray, np.ndarray, str] | None:
        """No planner has a valid plan: recover (rotate in place, back up) or stop; fail the goal
        after recovery_timeout."""
        c = self.config
        self._no_plan_since = now if self._no_plan_since is None else self._no_plan_since
        if now - self._no_plan_since > c.recovery_timeout:
            return self._fail_goal(d, f"no valid plan for {c.recovery_timeout:.1f} s ({why})")
        d.reason, d.detail = StopReason.PLAN_REJECTED, why
        if not recover:
            return None
        window = d.feed[COSTMAP_INPUT][0, 0]
        bearing = float(np.arctan2(d.feed[GOAL_INPUT][0, 1], d.feed[GOAL_INPUT][0, 0]))
        w = 0.5 * c.limits.max_omega * (1.0 if bearing >= 0 else -1.0)
        candidates = [(0.0, 0.0, w), (0.0, 0.0, -w)]
        if c.limits.min_v_x < 0:
            candidates.append((max(c.limits.min_v_x, -ESCAPE_SPEED), 0.0, 0.0))
        chosen = self._recovery(d, window, candidates)
        if chosen is not None:
            d.reason, d.detail = StopReason.NONE, ""
        return chosen
