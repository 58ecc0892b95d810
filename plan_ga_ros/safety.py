"""Footprint collision check on the cost window, plan validation and the goal check."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .contract import Limits, ModelSpec
from .kinematics import rollout
from .tensors import window_cell_centres, wrap_angle

LETHAL_COST = 1.0  # OccupancyGrid 100: an obstacle cell
INSCRIBED_COST = 0.99  # OccupancyGrid 99: the robot centre here puts the footprint on an obstacle


def footprint_points(radius: float, resolution: float) -> np.ndarray:
    """Sample points [K, 2] covering a disc of ``radius`` densely enough for a grid of ``resolution``
    (read-only; cached, the same few footprints are checked every tick)."""
    if not (np.isfinite(radius) and radius >= 0 and resolution > 0):
        raise ValueError(f"bad footprint radius {radius} or resolution {resolution}")
    return _footprint_points(float(radius), float(resolution))


@functools.lru_cache(maxsize=16)
def _footprint_points(radius: float, resolution: float) -> np.ndarray:
    pts = [np.zeros((1, 2))]
    rings = max(int(np.ceil(radius / (0.5 * resolution))), 1) if radius > 0 else 0
    for k in range(1, rings + 1):  # a handful of rings, not cells
        r = radius * k / rings
        m = max(int(np.ceil(2 * np.pi * r / (0.5 * resolution))), 6)
        a = np.linspace(0.0, 2 * np.pi, m, endpoint=False)
        pts.append(np.stack([r * np.cos(a), r * np.sin(a)], axis=-1))
    out = np.concatenate(pts)
    out.flags.writeable = False
    return out


def window_lookup(window: np.ndarray, xy: np.ndarray, resolution: float, outside: float = 0.0) -> np.ndarray:
    """Window costs at robot-frame points [..., 2]; ``outside`` beyond the window."""
    n = window.shape[0]
    padded = np.pad(np.asarray(window, np.float32), 1, constant_values=outside)  # border = outside
    scale = 1.0 / resolution
    col = np.clip(np.floor(xy[..., 0] * scale + (n / 2.0 + 1.0)), 0, n + 1).astype(np.intp)
    row = np.clip(np.floor(xy[..., 1] * scale + (n / 2.0 + 1.0)), 0, n + 1).astype(np.intp)
    return padded.ravel().take(row * (n + 2) + col)


def footprint_costs(
    window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float, outside: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(max cost under the footprint, cost under the centre) for robot-frame poses [..., 3]."""
    poses = np.asarray(poses, dtype=np.float64)
    pts = footprint_points(radius, spec.resolution)
    xy = poses[..., None, :2] + pts  # circular footprint: heading does not matter
    costs = window_lookup(window, xy, spec.resolution, outside)
    return costs.max(axis=-1), costs[..., 0]


def collisions(
    window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float, outside: float = 0.0
) -> np.ndarray:
    """Boolean [...] per pose: an obstacle under the footprint or the centre in inscribed space."""
    fp, centre = footprint_costs(window, poses, spec, radius, outside)
    return (fp >= LETHAL_COST) | (centre >= INSCRIBED_COST)


def plan_collisions(window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float,
                    steps: int) -> np.ndarray:
    """Collision flags [..., steps] for poses [..., 1+, 3] whose first pose is the robot's (the origin).

    Normally a pose collides when ``collisions`` says so. If the robot already starts in collision
    on the window (max-pooling and re-gridding can put a physically clear robot there), a pose is a
    collision when it comes closer to any lethal window cell than the start was, or its centre enters
    a lethal cell: the robot may turn or back out, never go deeper, and is never trapped.
    """
    poses = np.asarray(poses, dtype=np.float64)[..., : steps + 1, :]
    fp, centre = footprint_costs(window, poses, spec, radius)
    hit = (fp >= LETHAL_COST) | (centre >= INSCRIBED_COST)  # as ``collisions``, from the same lookup
    if not np.any(hit[..., 0]):
        return hit[..., 1:]
    rows, cols = np.nonzero(window >= LETHAL_COST)
    if rows.size == 0:
        return np.zeros(hit[..., 1:].shape, dtype=bool)
    lethal = window_cell_centres(spec)[rows, cols]  # [L, 2]
    # Distance from each pose's centre to the nearest lethal cell centre (only for stuck starts).
    d = np.sqrt(((poses[..., None, :2] - lethal) ** 2).sum(-1)).min(-1)  # [..., T+1]
    deeper = (d[..., 1:] < d[..., :1] - 0.01) | (centre[..., 1:] >= LETHAL_COST)
    return np.where(hit[..., :1], deeper, hit[..., 1:])


MIN_LOOKAHEAD_TIME = 0.5  # s: the collision check never looks less far ahead (a floor, not a parameter)
STOP_MARGIN_TIME = 0.3  # s: beyond the stopping time at the current speed


def collision_horizon(lookahead_time: float, velocity: np.ndarray, limits: Limits) -> float:
    """The time (s) a plan is checked over: the requested lookahead, but never less than the floor or
    the time to stop from ``velocity`` at the acceleration limits plus a margin."""
    v = np.abs(np.asarray(velocity, dtype=np.float64).reshape(3))
    acc = np.maximum(np.asarray(limits.acceleration, dtype=np.float64), 1e-3)
    t_stop = float(np.max(np.where(v > 1e-6, v / acc, 0.0)))
    requested = float(lookahead_time) if np.isfinite(lookahead_time) else 0.0
    return max(requested, MIN_LOOKAHEAD_TIME, t_stop + STOP_MARGIN_TIME)


def lookahead_steps(lookahead_time: float, spec: ModelSpec) -> int:
    """Plan steps covered by ``lookahead_time`` (rounded up, at most the plan's length)."""
    return int(np.clip(np.ceil(lookahead_time / spec.dt - 1e-9), 0, spec.steps))


@dataclass(frozen=True)
class PlanCheck:
    ok: bool
    reason: str
    relative_poses: np.ndarray  # [T+1, 3] robot-frame rollout of the whole plan


def validate_plan(
    controls: np.ndarray,
    window: np.ndarray,
    spec: ModelSpec,
    radius: float,
    lookahead_time: float,
) -> PlanCheck:
    """Reject non-finite plans and plans whose rollout collides within ``lookahead_time``
    (from a start already in collision: plans that go deeper; see ``plan_collisions``)."""
    controls = np.asarray(controls, dtype=np.float64)
    if controls.shape != (spec.steps, 3):
        return PlanCheck(False, f"plan has shape {controls.shape}, expected ({spec.steps}, 3)",
                         np.zeros((spec.steps + 1, 3)))
    if not np.isfinite(controls).all():
        return PlanCheck(False, "plan contains non-finite values", np.zeros((spec.steps + 1, 3)))
    rel = rollout(np.zeros(3), controls, spec.dt)
    k = lookahead_steps(lookahead_time, spec)
    hit = plan_collisions(window, rel, spec, radius, k)
    if hit.any():
        step = int(np.argmax(hit)) + 1
        return PlanCheck(False, f"plan collides at step {step} (t={step * spec.dt:.1f} s)", rel)
    return PlanCheck(True, "", rel)


def goal_reached(pose: np.ndarray, goal: np.ndarray, xy_tolerance: float, yaw_tolerance: float) -> bool:
    """True when the robot is within both tolerances of the goal (Nav2's simple goal checker)."""
    return goal_check(pose, goal, xy_tolerance, yaw_tolerance, False, False)[0]


def goal_check(pose: np.ndarray, goal: np.ndarray, xy_tolerance: float, yaw_tolerance: float,
               stateful: bool, xy_latched: bool) -> tuple[bool, bool]:
    """(reached, xy_latched). Stateful like Nav2's SimpleGoalChecker: once the position is within
    tolerance it stays accepted, and only the heading is checked (the robot may drift while turning).
    """
    d = float(np.hypot(goal[0] - pose[0], goal[1] - pose[1]))
    xy_ok = d <= xy_tolerance or (stateful and xy_latched)
    yaw_ok = abs(float(wrap_angle(goal[2] - pose[2]))) <= yaw_tolerance
    return xy_ok and yaw_ok, xy_ok and stateful
