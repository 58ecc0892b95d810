"""Closed-loop episodes in simulated worlds, through the same planner core the node runs.

Every controller sees a Nav2-like rolling costmap, odometry velocities with the node's smoothed
acceleration estimate, and the goal; its plan passes the node's safety layer (make_safe) before
the first command is executed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from plan_ga_ros import kinematics
from plan_ga_ros.contract import COSTMAP_INPUT, GOAL_INPUT, ModelSpec
from plan_ga_ros.planner import PlannerConfig, RobotSnapshot, build_inputs, make_safe
from plan_ga_ros.safety import goal_check
from plan_ga_ros.tensors import Grid
from plan_ga_ros.sim.world import RobotSim, World, local_costmap, make_episode  # noqa: F401 (re-exported)

from plan_ga_ros.ga import GAConfig, GAPlanner


@dataclass(frozen=True)
class EpisodeConfig:
    control_period: float = 0.1
    substeps: int = 5  # odometry at control_period / substeps (50 Hz by default)
    max_time: float = 40.0
    costmap_size: float = 6.0
    costmap_resolution: float = 0.05
    noise: float = 0.0


@dataclass
class EpisodeResult:
    success: bool
    collision: bool
    timeout: bool
    time: float
    path_length: float
    min_clearance: float
    poses: np.ndarray
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    plan_ms: list[float] = field(default_factory=list)


class Controller(Protocol):
    def reset(self) -> None: ...

    def __call__(self, feed: dict[str, np.ndarray], robot: RobotSnapshot) -> np.ndarray:
        """The raw [steps*3] plan for one feed dict (batch of one)."""


class GAController:
    """The GA expert on the network's own inputs."""

    def __init__(self, spec: ModelSpec, planner_cfg: PlannerConfig, ga_cfg: GAConfig = GAConfig(),
                 seed: int = 0) -> None:
        self.spec, self.cfg = spec, planner_cfg
        self.ga = GAPlanner(spec, planner_cfg.limits, planner_cfg.robot_radius, ga_cfg, seed,
                            planner_cfg.collision_lookahead_time)

    def reset(self) -> None:
        self.ga.reset()

    def __call__(self, feed: dict[str, np.ndarray], robot: RobotSnapshot) -> np.ndarray:
        window = feed[COSTMAP_INPUT][0, 0]
        goal = feed[GOAL_INPUT][0].astype(np.float64)
        return self.ga.plan(window, robot.velocity, goal, self.cfg.goal_clip_distance,
                            xy_tolerance=self.cfg.xy_goal_tolerance).ravel()


@functools.lru_cache(maxsize=2)
def load_onnx_policy(path: str):
    """One loaded, warmed-up session per model per worker process (episodes reuse it)."""
    from plan_ga_ros.policy import OnnxPolicy

    return OnnxPolicy(path)


class PolicyController:
    """A model behind a feed → [B, steps*3] callable (ONNX Runtime or PyTorch)."""

    def __init__(self, run) -> None:
        self.run = run

    def reset(self) -> None:
        pass

    def __call__(self, feed: dict[str, np.ndarray], robot: RobotSnapshot) -> np.ndarray:
        return np.asarray(self.run(feed))[0]


class NaiveController:
    """Go-to-goal: turn toward the goal, drive when roughly facing it; no obstacle awareness."""

    def __init__(self, spec: ModelSpec, limits) -> None:
        self.spec, self.limits = spec, limits

    def reset(self) -> None:
        pass

    def __call__(self, feed: dict[str, np.ndarray], robot: RobotSnapshot) -> np.ndarray:
        dx, dy, dth = feed[GOAL_INPUT][0].astype(np.float64)
        dist, bearing = np.hypot(dx, dy), np.arctan2(dy, dx)
        turn = dth if dist < 0.1 else bearing
        v = self.limits.max_v_x * np.clip(dist, 0, 1) * max(np.cos(bearing), 0.0) ** 4 if dist >= 0.1 else 0.0
        w = np.clip(2.0 * turn, -self.limits.max_omega, self.limits.max_omega)
        return np.tile([v, 0.0, w], self.spec.steps)


def run_episode(
    world: World,
    start: np.ndarray,
    goal: np.ndarray,
    controller: Controller,
    spec: ModelSpec,
    planner_cfg: PlannerConfig,
    cfg: EpisodeConfig = EpisodeConfig(),
    labeler: Controller | None = None,
    record: bool = False,
    seed: int = 0,
) -> EpisodeResult:
    """Drive from start to goal with ``controller``; optionally record inputs and ``labeler``'s plans."""
    import time

    sim = RobotSim(start.copy(), planner_cfg.limits, noise=cfg.noise, rng=np.random.default_rng(seed))
    controller.reset()
    if labeler is not None:
        labeler.reset()
    sub_dt = cfg.control_period / cfg.substeps
    times, vels = [0.0], [np.zeros(3)]
    poses, previous = [sim.pose.copy()], np.zeros(3)
    samples: dict[str, list] = {"costmap": [], "state": [], "goal": [], "meta": [], "label": []}
    plan_ms: list[float] = []
    min_clear = float(world.clearance(sim.pose[:2]))
    t = 0.0
    success = collision = latched = False
    while t < cfg.max_time:  # simulated time is sequential
        success, latched = goal_check(sim.pose, goal, planner_cfg.xy_goal_tolerance, planner_cfg.yaw_goal_tolerance,
                                      planner_cfg.stateful_goal_checker, latched)
        if success:
            break
        grid: Grid = local_costmap(world, sim.pose, cfg.costmap_size, cfg.costmap_resolution)
        acc = kinematics.estimate_acceleration(np.array(times[-30:]), np.array(vels[-30:]), 0.2,
                                               planner_cfg.limits)
        robot = RobotSnapshot(sim.pose.copy(), sim.velocity.copy(), acc)
        feed = build_inputs(grid, robot, goal, spec, planner_cfg)
        t0 = time.perf_counter()
        raw = controller(feed, robot)
        plan_ms.append((time.perf_counter() - t0) * 1e3)
        if record:
            label = raw if labeler is None else labeler(feed, robot)
            for key, name in zip(("costmap", "state", "goal", "meta"), feed):
                samples[key].append(feed[name][0])
            samples["label"].append(np.asarray(label, np.float32).reshape(spec.steps, 3))
        controls, check = make_safe(raw, feed[COSTMAP_INPUT][0, 0], previous, spec, planner_cfg)
        command = controls[0] if check.ok else np.zeros(3)
        for _ in range(cfg.substeps):  # integrate the base at odometry rate
            sim.step(command, sub_dt)
            t += sub_dt
            times.append(t)
            vels.append(sim.velocity.copy())
            clear = float(world.clearance(sim.pose[:2]))
            min_clear = min(min_clear, clear)
            if clear < 0.0:
                collision = True
                break
        previous = command
        poses.append(sim.pose.copy())
        if collision:
            break
    poses_arr = np.array(poses)
    length = float(np.hypot(*np.diff(poses_arr[:, :2], axis=0).T).sum()) if len(poses_arr) > 1 else 0.0
    out = EpisodeResult(success, collision, not (success or collision), t, length, min_clear, poses_arr,
                        plan_ms=plan_ms)
    if record and samples["label"]:
        out.samples = {k: np.stack(v).astype(np.float32) for k, v in samples.items()}
    return out
