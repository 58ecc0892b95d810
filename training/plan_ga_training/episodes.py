"""Closed-loop episodes in simulated worlds, driven through the node's own ``PlannerSession``.

The simulator plays the robot and its sensors: the base integrates the last command at the physics
rate and publishes odometry (optionally noisy and late), a Nav2-like rolling local costmap is
published at its own rate, both stamped; the episode calls ``session.tick(t)`` at the planning rate
and the base chases the command of each Decision that is sent. Gating, the goal check, the
acceleration estimate, rate limiting, the safety layer, the fallback and recovery are the session's.

An episode ends with one outcome:

- ``success``: the session's goal checker reported the goal reached (``StopReason.GOAL_REACHED``)
  and the base then came to rest (every |velocity| component < ``REST_SPEED``) without collision;
  the simulator node (``plan_ga_ros/sim/sim_node.py``) uses the same rule;
- ``collision``: the robot's disc touched an obstacle;
- ``failed``: the session gave the goal up (``StopReason.GOAL_FAILED``, no valid plan for
  ``recovery_timeout``);
- ``timeout``: none of these within ``max_time``.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from plan_ga_ros import parameters
from plan_ga_ros.contract import GOAL_INPUT, INPUT_NAMES, ModelSpec
from plan_ga_ros.ga import GAConfig
from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.session import Decision, PlannerSession, Policy, StopReason
from plan_ga_ros.sim.world import RobotSim, World, local_costmap

from .compute import local_path

if TYPE_CHECKING:
    from .config import Config

REST_SPEED = 0.05  # m/s and rad/s: "at rest" for a success (the simulator node's rule too)
OUTCOMES = ("success", "collision", "failed", "timeout")
SAMPLE_KEYS = ("costmap", "state", "goal", "meta")  # the model's inputs, in INPUT_NAMES order
REPEAT_LABEL_EVERY = 10  # a labeller sees a repeated state (robot standing still) once in this many ticks
FRAME = "odom"


@dataclass(frozen=True)
class EpisodeConfig:
    """The simulated robot around the planner: rates, costmap and odometry (defaults as the demo's
    simulator node; the planning rate is the node's ``planning_frequency`` default)."""

    planning_rate: float = parameters.default("planning_frequency")  # Hz: session.tick
    physics_rate: float = 50.0  # Hz: base integration step and odometry rate
    costmap_rate: float = 5.0  # Hz: local costmap updates
    costmap_size: float = 6.0  # m: side of the rolling window
    costmap_resolution: float = 0.05  # m
    max_time: float = 40.0  # s
    velocity_noise: float = 0.0  # relative slip of the base's motion (the simulator node's velocity_noise)
    odom_noise: float = 0.0  # std of additive noise on the reported twist (m/s, rad/s)
    odom_latency: float = 0.0  # s: odometry reaches the session this late (stamped when measured)


@dataclass
class EpisodeResult:
    outcome: str  # one of OUTCOMES
    time: float  # s: when the episode ended (at rest at the goal, for a success)
    path_length: float  # m
    min_clearance: float  # m: closest approach of the robot's disc to an obstacle
    final_distance: float  # m: true distance from the robot to the goal at the end
    poses: np.ndarray  # [ticks + 1, 3] true poses at the start and after each tick
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    plan_ms: list[float] = field(default_factory=list)  # planner time (network + GA) per planning tick
    planning_ticks: int = 0  # ticks that built the model's inputs
    fallback_ticks: int = 0  # ticks on which the GA planned (every planning tick of a GA episode)
    planners: dict[str, int] = field(default_factory=dict)  # executed ticks by planner: onnx, ga, recovery
    stops: dict[str, int] = field(default_factory=dict)  # ticks by stop reason (StopReason names)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def collision(self) -> bool:
        return self.outcome == "collision"

    @property
    def timeout(self) -> bool:
        return self.outcome == "timeout"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


# ---------------------------------------------------------------- networks (feed → raw plan)
def load_onnx_policy(path: str):
    """One loaded, warmed-up ONNX Runtime session per model file version per process (episodes reuse
    it). Keyed by the file's size and modification time too: DAgger rounds export to the same path, and
    with one worker the episodes run in this very process."""
    st = os.stat(path)
    return _load_onnx_policy(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _load_onnx_policy(path: str, mtime_ns: int, size: int):
    from plan_ga_ros.policy import OnnxPolicy

    return OnnxPolicy(path)


class PolicyController:
    """A trained model as the session's network: ``run`` maps a feed dict to [B, steps*3]."""

    def __init__(self, run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> None:
        self.run = run

    @classmethod
    def onnx(cls, path: str) -> PolicyController:
        return cls(load_onnx_policy(path).run)

    @classmethod
    def torch(cls, module) -> PolicyController:
        """A PyTorch PlannerNet, evaluated without gradients."""
        import torch

        module = module.eval()

        @torch.no_grad()
        def run(feed: dict[str, np.ndarray]) -> np.ndarray:
            return module(*(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in INPUT_NAMES)).numpy()

        return cls(run)

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.run(feed))


class NaiveController:
    """Go-to-goal: turn toward the goal, drive when roughly facing it; no obstacle awareness
    (the session's safety layer still vets every plan)."""

    def __init__(self, spec: ModelSpec, config: PlannerConfig) -> None:
        self.spec, self.limits = spec, config.limits

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        dx, dy, dth = feed[GOAL_INPUT][0].astype(np.float64)
        dist, bearing = np.hypot(dx, dy), np.arctan2(dy, dx)
        turn = dth if dist < 0.1 else bearing
        v = self.limits.max_v_x * np.clip(dist, 0, 1) * max(np.cos(bearing), 0.0) ** 4 if dist >= 0.1 else 0.0
        w = np.clip(2.0 * turn, -self.limits.max_omega, self.limits.max_omega)
        return np.tile([v, 0.0, w], self.spec.steps)[None]


def ga_labeller(spec: ModelSpec, config: PlannerConfig, ga: GAConfig = GAConfig(), seed: int = 0
                ) -> Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]:
    """The GA expert labelling feeds: a GA of its own, called as ``planner: ga`` calls it (warm-started from
    its plan of the last labelled tick; hybrid's fallback drops that warm start when the network drove in
    between), always pricing its soft clearance margin: the labels are the expert's careful plans, never the
    ones ``planner: ga`` and the fallback make without the margin where the robot got stuck.
    ``labeller(feed, goal)``: ``goal`` is the episode's session's ``ga_goal(feed)`` (once its goal checker has
    accepted the position, the goal's heading where the robot stands), so the label aims where ``planner: ga``
    would."""
    session = PlannerSession(config, spec, None, ga, seed)

    def label(feed: dict[str, np.ndarray], goal: np.ndarray | None = None) -> np.ndarray:  # None: the feed's
        return session.ga_plan(feed, goal=goal)

    return label


# ---------------------------------------------------------------- the episode
def _repeats(samples: dict[str, list], feed: dict[str, np.ndarray]) -> bool:
    """Whether ``feed`` is the last recorded state again (a robot standing still before the same plan):
    the same cost window, the goal within 1 cm and the pose within 1 cm / 0.01 rad (the velocities carry
    odometry noise, so they are not compared)."""
    if not samples["label"]:
        return False
    last = {key: samples[key][-1] for key in SAMPLE_KEYS}
    new = {key: feed[name][0] for key, name in zip(SAMPLE_KEYS, INPUT_NAMES)}
    return (np.array_equal(last["costmap"], new["costmap"]) and np.array_equal(last["meta"], new["meta"])
            and np.allclose(last["goal"], new["goal"], atol=0.01)
            and np.allclose(last["state"][:3], new["state"][:3], atol=0.01))


def _record(samples: dict[str, list], d: Decision, label: np.ndarray | None, steps: int) -> None:
    if d.feed is None or label is None:
        return
    for key, name in zip(SAMPLE_KEYS, INPUT_NAMES):
        samples[key].append(d.feed[name][0])
    samples["label"].append(np.asarray(label, np.float32).reshape(steps, 3))


def run_episode(
    world: World,
    start: np.ndarray,
    goal: np.ndarray,
    spec: ModelSpec,
    planner_cfg: PlannerConfig,
    network: Policy | None = None,
    cfg: EpisodeConfig = EpisodeConfig(),
    ga: GAConfig = GAConfig(),
    labeller: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] | None = None,
    record: bool = False,
    seed: int = 0,
) -> EpisodeResult:
    """Drive from ``start`` to ``goal`` with a PlannerSession in mode ``planner_cfg.planner``.

    ``goal`` is a pose [3] or a global path [N, 3] (odom frame) that the session follows by its carrot.
    ``network`` is the session's network (onnx, hybrid; a naive controller too); ``ga`` configures its
    GA (ga, hybrid). With ``record``, each planning tick stores the model's inputs and a label:
    ``labeller(feed, session.ga_goal(feed))`` when given (where the session's GA would aim), else the raw
    plan of the planner that ran (GA or network; a GA's after a stall is planned without its soft clearance
    margin, see ``PlannerSession.tight``). A labeller is asked only every
    ``REPEAT_LABEL_EVERY``-th tick while the state repeats (a frozen robot would cost one GA plan
    per tick for the same sample), so DAgger's GA time goes to states the network actually visits.
    """
    sim = RobotSim(np.asarray(start, np.float64).copy(), planner_cfg.limits, noise=cfg.velocity_noise,
                   rng=np.random.default_rng(seed))
    odom_rng = np.random.default_rng([seed, 1])
    noise_mask = np.array([1.0, 1.0 if planner_cfg.limits.max_v_y > 0 else 0.0, 1.0]) * cfg.odom_noise
    session = PlannerSession(planner_cfg, spec, network, ga, seed)
    goal = np.asarray(goal, np.float64)
    problem = session.set_path(goal, 0.0, FRAME) if goal.ndim == 2 else session.set_goal(goal, 0.0, FRAME)
    if problem:
        raise ValueError(f"episode goal refused by the session: {problem}")
    final = goal[-1] if goal.ndim == 2 else goal
    rates = {"odometry": cfg.physics_rate, "costmap": cfg.costmap_rate, "tick": cfg.planning_rate}  # tie order
    count = dict.fromkeys(rates, 0)
    pending: collections.deque[tuple[float, np.ndarray, np.ndarray]] = collections.deque()
    samples: dict[str, list] = {k: [] for k in (*SAMPLE_KEYS, "label")}
    plan_ms: list[float] = []
    planners: collections.Counter[str] = collections.Counter()
    stops: collections.Counter[str] = collections.Counter()
    poses = [sim.pose.copy()]
    command = np.zeros(3)
    min_clear = float(world.clearance(sim.pose[:2]))
    t_sim, t, planning_ticks, reached, outcome, repeats = 0.0, 0.0, 0, False, "", 0
    while not outcome:
        kind, t = min(((k, count[k] / r) for k, r in rates.items()), key=lambda kt: kt[1])
        if t > cfg.max_time:
            outcome, t = "timeout", cfg.max_time
            break
        count[kind] += 1
        if t > t_sim:  # the base chases the last command; events are at most one physics period apart
            sim.step(command, t - t_sim)
            t_sim = t
            clear = float(world.clearance(sim.pose[:2]))
            min_clear = min(min_clear, clear)
            if clear < 0.0:
                outcome = "collision"
                break
        if reached and np.abs(sim.velocity).max() < REST_SPEED:
            outcome = "success"
            break
        if kind == "odometry":
            twist = sim.velocity + noise_mask * odom_rng.standard_normal(3)
            pending.append((t, sim.pose.copy(), twist))
        elif kind == "costmap":
            session.set_costmap(local_costmap(world, sim.pose, cfg.costmap_size, cfg.costmap_resolution), t)
        else:
            while pending and pending[0][0] + cfg.odom_latency <= t + 1e-9:
                stamp, pose, twist = pending.popleft()
                session.set_odometry(pose, twist, stamp, FRAME)
            d = session.tick(t)
            if d.send:
                command = d.command
            poses.append(sim.pose.copy())
            if d.executing:
                planners[d.planner] += 1
            else:
                stops[d.reason.name] += 1
            if d.feed is not None:
                planning_ticks += 1
                plan_ms.append(d.timings_ms.get("inference", 0.0) + d.timings_ms.get("fallback", 0.0))
                repeats = repeats + 1 if labeller and _repeats(samples, d.feed) else 0
                if record and repeats % REPEAT_LABEL_EVERY == 0:
                    own = d.ga_raw if planner_cfg.planner == "ga" else d.network_raw
                    label = labeller(d.feed, session.ga_goal(d.feed)) if labeller else own
                    _record(samples, d, label, spec.steps)
            if d.reason is StopReason.GOAL_REACHED:
                reached = True
                if np.abs(sim.velocity).max() < REST_SPEED:
                    outcome = "success"
            elif d.reason is StopReason.GOAL_FAILED:
                outcome = "failed"
    poses.append(sim.pose.copy())
    path = np.array(poses)
    out = EpisodeResult(outcome, float(t), float(np.hypot(*np.diff(path[:, :2], axis=0).T).sum()), min_clear,
                        float(np.hypot(*(sim.pose[:2] - final[:2]))), path, plan_ms=plan_ms,
                        planning_ticks=planning_ticks, fallback_ticks=session.fallback_ticks,
                        planners=dict(planners), stops=dict(stops))
    if record and samples["label"]:
        out.samples = {k: np.stack(v).astype(np.float32) for k, v in samples.items()}
    return out


CONTROLLERS = ("onnx", "ga", "naive", "hybrid")


def driver(name: str, cfg: Config, model_path: str = "", overrides: dict | None = None
           ) -> tuple[ModelSpec, PlannerConfig, Policy | None]:
    """(spec, planner config, network) of a controller: ``onnx`` (the network alone), ``hybrid`` (the
    network with the GA fallback), ``ga`` (the session's GA alone) or ``naive`` (go-to-goal); node
    parameters ``overrides`` as a user would set them (see ``randomize.Draw.planner``)."""
    from .config import ConfigError, model_spec, planner_config

    spec = model_spec(cfg)
    if name in ("onnx", "hybrid"):
        policy = load_onnx_policy(local_path(model_path))  # a Dask worker's own copy of the model
        return policy.spec, planner_config(cfg, policy.spec, name, overrides), policy.run
    if name == "ga":
        return spec, planner_config(cfg, spec, "ga", overrides), None
    if name == "naive":
        pcfg = planner_config(cfg, spec, "onnx", overrides)
        return spec, pcfg, NaiveController(spec, pcfg)
    raise ConfigError(f"unknown controller {name!r}; known: {', '.join(CONTROLLERS)}")
