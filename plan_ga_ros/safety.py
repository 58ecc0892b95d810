"""The collision check on the cost window (clearance of a circular footprint), plan validation as the
base really follows a plan, the collision horizon, and the goal check."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import kinematics
from .contract import Limits, ModelSpec
from .tensors import wrap_angle

LETHAL_COST = 1.0  # OccupancyGrid 100: an obstacle cell
INSCRIBED_COST = 0.99  # OccupancyGrid 99: the robot centre here puts the footprint on an obstacle


def window_lookup(window: np.ndarray, xy: np.ndarray, resolution: float, outside: float = 0.0) -> np.ndarray:
    """Window costs at robot-frame points [..., 2]; ``outside`` beyond the window."""
    window = np.asarray(window, np.float32)
    n = window.shape[0]
    padded = np.full((window.shape[0] + 2, window.shape[1] + 2), outside, dtype=np.float32)  # border = outside
    padded[1:-1, 1:-1] = window
    scale = 1.0 / resolution
    col = np.clip(np.floor(xy[..., 0] * scale + (n / 2.0 + 1.0)), 0, n + 1).astype(np.intp)
    row = np.clip(np.floor(xy[..., 1] * scale + (n / 2.0 + 1.0)), 0, n + 1).astype(np.intp)
    return padded.ravel().take(row * (n + 2) + col)


# ---------------------------------------------------------------- clearance: the check every plan passes
#
# A circular robot collides when its centre comes closer than its radius to an obstacle. A pose's
# clearance is its exact distance to the nearest lethal window cell (a square): a summed-area table
# of the lethal cells finds, with four lookups, the few poses that have one within reach, and only
# those measure the cells around them (per row of the box, the nearest lethal cells left of, under and
# right of the pose: tables per window). The GA checks its whole population with the very functions
# that validate the executed plan. A pose needs ``required_clearance``: the radius, plus how far an
# obstacle may reach past the window cells that mark it (a source cell finer than the window puts its
# centre in a window cell but its corner up to half its diagonal beyond), plus half the distance
# between two checked poses (the sweep between them).

MARGIN = 0.05  # m: the GA keeps this beyond the required clearance where it can (it never grazes)
# Half the diagonal of a source cell half the window's size, in window cells. Measured in the simulator's
# worlds (0.05 m costmaps, 0.1 m window): obstacles reach up to 3.3 cm past the lethal window cells. The
# price: gaps narrower than the robot plus about 0.15 m (door and dense families: 5 cm a side) are seldom
# certified; with 0 the check is the old one there, and a plan may touch an obstacle by that much.
PAD_CELLS = math.sqrt(2.0) / 4.0


def quantisation_pad(resolution: float) -> float:
    """How far (m) an obstacle may reach past the window cells that mark it, for a source costmap at
    half the window's resolution or finer (a Nav2 local costmap at 0.05 m under a 0.1 m window)."""
    return float(resolution) * PAD_CELLS


def required_clearance(radius: float, resolution: float, spacing: float = 0.0) -> float:
    """Distance (m) a checked pose must keep from every lethal window cell (see the note above)."""
    return float(radius) + quantisation_pad(resolution) + 0.5 * float(spacing)


def check_reach(radius: float, resolution: float, need: float = 0.0) -> float:
    """How far (m) clearances are measured (beyond it a pose reads inf): the required clearance at the
    usual pose spacing (or ``need``, if more) plus the GA's margin; one value for the GA and the validator
    so they share the window's tables."""
    return max(required_clearance(radius, resolution, 0.25 * resolution), need) + MARGIN


@functools.lru_cache(maxsize=8)  # one window per tick, checked by the GA's generations and the validator
def _tables(data: bytes, shape: tuple[int, int], r: int) -> tuple[np.ndarray, ...]:
    """Padded by 2r cells on every side (free), flattened, read-only: costs, cells with a lethal cell
    within r cells, and per cell the column (0..2r, 2r+1 for none) of the box around it where the
    nearest lethal cell of its row lies strictly left of it, at it, and strictly right of it."""
    p = 2 * r
    costs = np.zeros((shape[0] + 2 * p, shape[1] + 2 * p), dtype=np.float32)
    costs[p: p + shape[0], p: p + shape[1]] = np.frombuffer(data, dtype=np.float32).reshape(shape)
    lethal = costs >= LETHAL_COST
    table = np.zeros((lethal.shape[0] + 1, lethal.shape[1] + 1), dtype=np.int32)  # summed-area table
    table[1:, 1:] = lethal.cumsum(0).cumsum(1)
    k = 2 * r + 1
    near = np.zeros_like(lethal)
    near[r:-r, r:-r] = (table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]) > 0
    cols = np.arange(lethal.shape[1])
    big = lethal.shape[1] + k
    left = np.full(lethal.shape, -big)  # the nearest lethal column strictly left of each cell
    left[:, 1:] = np.maximum.accumulate(np.where(lethal, cols, -big), axis=1)[:, :-1]
    right = np.full(lethal.shape, 2 * big)  # ... strictly right
    right[:, :-1] = np.minimum.accumulate(np.where(lethal, cols, 2 * big)[:, ::-1], axis=1)[:, ::-1][:, 1:]
    left = np.where(cols - left <= r, r - (cols - left), k).astype(np.intp)
    right = np.where(right - cols <= r, r + (right - cols), k).astype(np.intp)
    at = np.where(lethal, r, k).astype(np.intp)
    out = (costs.ravel(), near.ravel(), left.ravel(), at.ravel(), right.ravel())
    for a in out:
        a.flags.writeable = False
    return out


def _probe_xy(window: np.ndarray, x: np.ndarray, y: np.ndarray, resolution: float, reach: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """``probe`` of robot-frame points given as x [...] and y [...]."""
    window = np.ascontiguousarray(window, dtype=np.float32)
    ny, nx = window.shape
    r = max(int(np.ceil(reach / resolution)), 1)  # a lethal cell r+1 cells away is farther than reach
    costs, near_cells, left, at, right = _tables(window.tobytes(), window.shape, r)
    w = nx + 4 * r  # padded width: a point within r cells of the window has its whole box in the tables
    col = np.floor(x * (1.0 / resolution) + (nx / 2.0 + 2 * r))  # cell index in the padded tables
    row = np.floor(y * (1.0 / resolution) + (ny / 2.0 + 2 * r))
    # A point farther than r cells from the window (or NaN) reads the tables' border: free, nothing in reach.
    col = np.fmin(np.fmax(col, r - 1), nx + 3 * r)
    row = np.fmin(np.fmax(row, r - 1), ny + 3 * r)
    index = (row * w + col).astype(np.intp)
    cost = costs.take(index)
    near = near_cells.take(index)
    out = np.full(x.shape, np.inf)
    if not near.any():
        return cost, out
    i, m = index[near], int(near.sum())
    off = np.arange(-r, r + 1)[:, None]  # [2r+1, 1]: the box's columns (or rows) left to right
    # Gap from each point to the squares of the box's columns and rows (padded column c's centre:
    # c + ½ - 2r - nx/2), [2r+1, M], squared; a last row of inf stands for "no lethal cell".
    gx = np.abs(x[near] - ((col[near] + off) + (0.5 - 2 * r - nx / 2.0)) * resolution)  # col, row: integers
    gy = np.abs(y[near] - ((row[near] + off) + (0.5 - 2 * r - ny / 2.0)) * resolution)
    gx = np.maximum(gx - 0.5 * resolution, 0.0)
    gy = np.maximum(gy - 0.5 * resolution, 0.0)
    gx2 = np.empty((2 * r + 2, m))
    np.multiply(gx, gx, out=gx2[:-1])
    gx2[-1] = np.inf
    gx2 = gx2.ravel()
    # Along a row the gap grows with the distance from the point's column on either side, so the
    # nearest lethal square of each row is the first one left of the point, under it, or right of it.
    rows = i + off * w  # [2r+1, M] the box's rows' cells under each point's column
    points = np.arange(m)
    nearest = np.minimum(np.minimum(gx2.take(left.take(rows) * m + points), gx2.take(at.take(rows) * m + points)),
                         gx2.take(right.take(rows) * m + points))
    d = np.sqrt((gy * gy + nearest).min(axis=0))
    out[near] = np.where(d < reach, d, np.inf)  # farther cells were not all looked at
    return cost, out


def probe(window: np.ndarray, xy: np.ndarray, resolution: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """(window cost under each robot-frame point [..., 2] (0 beyond the window), distance (m) from it to
    the nearest lethal window cell (inf when none is within ``reach``))."""
    xy = np.asarray(xy, dtype=np.float64)
    return _probe_xy(window, xy[..., 0], xy[..., 1], resolution, reach)


def clearance_at(window: np.ndarray, xy: np.ndarray, resolution: float, reach: float) -> np.ndarray:
    """Distance (m) from robot-frame points [..., 2] to the nearest lethal window cell (a square); inf
    when none is within ``reach`` (cells beyond the window are not lethal)."""
    return probe(window, xy, resolution, reach)[1]


def pose_spacing(velocity: np.ndarray, limits: Limits, dt: float, resolution: float) -> tuple[int, float]:
    """(substeps per plan step, the most distance between two checked poses): poses a quarter of a
    window cell apart at the fastest speed the limits (or the measured ``velocity``) allow."""
    v = [x if math.isfinite(x) else math.inf for x in np.abs(np.asarray(velocity, np.float64).reshape(3)).tolist()]
    speed = math.hypot(max(abs(limits.min_v_x), limits.max_v_x, v[0]), max(limits.max_v_y, v[1]))
    substeps = min(max(math.ceil(speed * dt / (0.25 * resolution) - 1e-9), 1), 32) if math.isfinite(speed) else 32
    return substeps, speed * dt / substeps


def collisions(window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float, spacing: float = 0.0
               ) -> np.ndarray:
    """Boolean [...] per robot-frame pose [..., 3]: closer than ``required_clearance`` to a lethal cell,
    or the centre in inscribed space."""
    need = required_clearance(radius, spec.resolution, spacing)
    centre, d = probe(window, np.asarray(poses, dtype=np.float64)[..., :2], spec.resolution,
                      check_reach(radius, spec.resolution, need))
    return (d < need) | (centre >= INSCRIBED_COST)


def trajectory_collisions(window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float,
                          spacing: float = 0.0) -> np.ndarray:
    """Collision flags [..., N] for robot-frame poses [..., N+1, 3] whose first pose is the robot's.

    A pose collides when it is closer than ``required_clearance`` to a lethal window cell or its
    centre is in inscribed space. The window is re-gridded every tick as the robot moves, so a robot
    the last window kept clear can start inside the required clearance of this one. There the window
    cannot tell how close the true obstacles are (they may reach ``quantisation_pad`` past its cells),
    so a pose that is still inside must have moved *away*: its clearance must exceed the start's by
    ``ESCAPE_RATE`` times the distance travelled, and its centre must not be on a lethal cell. Turning
    in place and backing out pass; sliding along an obstacle or creeping toward it does not, not even
    by millimetres (a tolerance would be a ratchet, re-based every tick).
    """
    poses = np.asarray(poses, dtype=np.float64)
    need = required_clearance(radius, spec.resolution, spacing)
    return _flags(window, poses, spec, radius, need)[0]


ESCAPE_RATE = 0.5  # from a start inside the required clearance: clearance gained per metre travelled


def _flags(window: np.ndarray, poses: np.ndarray, spec: ModelSpec, radius: float, need: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """(collision flags [..., N] with the escape rule of ``trajectory_collisions``, clearance [..., N+1])."""
    poses = np.asarray(poses, dtype=np.float64)
    return _flags_xy(window, poses[..., 0], poses[..., 1], spec, radius, need)


def _flags_xy(window: np.ndarray, x: np.ndarray, y: np.ndarray, spec: ModelSpec, radius: float, need: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """``_flags`` of poses given as x [..., N+1] and y [..., N+1]."""
    centre, d = _probe_xy(window, x, y, spec.resolution, check_reach(radius, spec.resolution, need))
    return _escape_flags(centre, d, x, y, need), d


def _escape_flags(centre: np.ndarray, d: np.ndarray, x: np.ndarray, y: np.ndarray, need: float) -> np.ndarray:
    """``_flags``' collision flags from the probe's costs and clearances of poses x, y [..., N+1]."""
    hit = (d < need) | (centre >= INSCRIBED_COST)
    if not hit[..., 0].any():  # no start inside the required clearance: the escape rule does not apply
        return hit[..., 1:]
    moved = np.hypot(x[..., 1:] - x[..., :1], y[..., 1:] - y[..., :1])
    away = (d[..., 1:] >= need) | (d[..., 1:] >= d[..., :1] + ESCAPE_RATE * moved)
    return np.where(hit[..., :1], ~away | (centre[..., 1:] >= LETHAL_COST), hit[..., 1:])


MIN_LOOKAHEAD_TIME = 0.5  # s: the collision check never looks less far ahead (a floor, not a parameter)
STOP_MARGIN_TIME = 0.3  # s: beyond the stopping time at the current speed


def collision_horizon(lookahead_time: float, velocity: np.ndarray, limits: Limits) -> float:
    """The time (s) a plan is checked over: the requested lookahead, but never less than the floor or
    the time to stop from ``velocity`` at the acceleration limits plus a margin."""
    v = np.abs(np.asarray(velocity, dtype=np.float64).reshape(3)).tolist()
    # An axis without an acceleration limit (0) stops at once.
    t_stop = max((vi / ai for vi, ai in zip(v, limits.acceleration) if vi > 1e-6 and ai > 0), default=0.0)
    requested = float(lookahead_time) if math.isfinite(lookahead_time) else 0.0
    return max(requested, MIN_LOOKAHEAD_TIME, t_stop + STOP_MARGIN_TIME)


def lookahead_steps(lookahead_time: float, spec: ModelSpec) -> int:
    """Plan steps covered by ``lookahead_time`` (rounded up, at most the plan's length)."""
    if not lookahead_time < math.inf:  # inf or NaN: the whole plan
        return spec.steps
    return min(max(math.ceil(lookahead_time / spec.dt - 1e-9), 0), spec.steps)


def hold_steps(control_period: float, dt: float, steps: int) -> int:
    """Plan steps the first command is held before the next tick can change it (at least one)."""
    if not control_period < math.inf:  # inf or NaN: held for the whole plan
        return steps
    return min(max(math.ceil(control_period / dt - 1e-9), 1), steps)


@dataclass(frozen=True)
class Followed:
    """Plans [..., T, 3] rolled out as the base follows them, with their collision flags. Index 0 of
    the second-last axis is the plan; 1 is braking to a stop once its first command has been held
    (what happens if the next tick has no valid plan)."""

    poses: np.ndarray  # [..., 2, T*substeps+1, 3], robot frame, the robot first
    hits: np.ndarray  # [..., 2, S*substeps] bool for the S steps checked
    clearance: np.ndarray  # [..., 2, S*substeps+1] m to the nearest lethal window cell (inf far away)
    substeps: int
    need: float  # the clearance a pose needs (m)

    @property
    def step_poses(self) -> np.ndarray:
        """The plan's poses at the end of each step [..., T+1, 3]."""
        return self.poses[..., 0, :: self.substeps, :]

    def first_hit(self, steps: int) -> np.ndarray:
        """[..., 2] index of the first colliding step (1-based) within ``steps`` steps, 0 if none."""
        m = self.substeps
        within = self.hits[..., : steps * m]
        if within.shape[-1] == 0:
            return np.zeros(within.shape[:-1], dtype=np.intp)
        return np.where(within.any(-1), within.argmax(-1) // m + 1, 0)


def follow(controls: np.ndarray, window: np.ndarray, velocity: np.ndarray, spec: ModelSpec, radius: float,
           limits: Limits, hold: int = 1, steps: int | None = None) -> Followed:
    """Roll out plans [..., T, 3] as a base starting at ``velocity`` follows them at ``limits``' accelerations,
    and braking after ``hold`` steps of their first command; check every pose of the first ``steps``
    steps (default all; ``hits`` and ``clearance`` cover only those), vectorised over plans."""
    controls = np.asarray(controls, dtype=np.float64)
    both = np.zeros(controls.shape[:-2] + (2,) + controls.shape[-2:])  # [..., 2, T, 3]
    both[..., 0, :, :] = controls
    both[..., 1, :hold, :] = controls[..., :1, :]  # braking: the first command until the next tick, then stop
    substeps, spacing = pose_spacing(velocity, limits, spec.dt, spec.resolution)
    poses = kinematics.followed_rollout(velocity, both, limits, spec.dt, substeps)
    need = required_clearance(radius, spec.resolution, spacing)
    checked = poses if steps is None else poses[..., : steps * substeps + 1, :]
    hits, d = _flags(window, checked, spec, radius, need)
    return Followed(poses, hits, d, substeps, need)


@dataclass(frozen=True)
class FollowedBatch:
    """``follow`` of a batch of plans [P, T, 3] as the GA scores them: the plan over all its steps, braking
    only over the first ``brake_steps`` (all ``validate_plan`` looks at). Bit for bit ``follow``'s values."""

    step_poses: np.ndarray  # [P, T+1, 3] the plan's poses at the end of each step, the robot first
    hits: np.ndarray  # [P, T*substeps] the plan's collision flags
    clearance: np.ndarray  # [P, T*substeps+1] the plan's clearances (m, inf far away)
    brake_hits: np.ndarray  # [P, brake_steps*substeps] braking's collision flags
    substeps: int
    need: float


def follow_batch(controls: np.ndarray, window: np.ndarray, velocity: np.ndarray, spec: ModelSpec, radius: float,
                 limits: Limits, hold: int, brake_steps: int) -> FollowedBatch:
    """``follow(controls, window, velocity, spec, radius, limits, hold)`` for plans [P, T, 3], but braking is
    rolled out and checked over its first ``brake_steps`` steps only (a causal rollout: the same values)."""
    controls = np.asarray(controls, dtype=np.float64)
    n, steps = controls.shape[:2]
    brake_steps = min(max(brake_steps, 0), steps)
    substeps, spacing = pose_spacing(velocity, limits, spec.dt, spec.resolution)
    need = required_clearance(radius, spec.resolution, spacing)
    v = np.broadcast_to(np.asarray(velocity, dtype=np.float64), (n, 3))
    python = 2 * n <= 4  # follow rolls both branches out together: the same arithmetic
    poses, start, stop = kinematics.follow_and_brake(v, controls, hold, brake_steps, limits, spec.dt, substeps, python)
    centre, d_all = _probe_xy(window, poses[0], poses[1], spec.resolution,  # both branches at once
                              check_reach(radius, spec.resolution, need))
    end = steps * substeps + 1
    x, y, th = poses[:, :, :end]
    d = d_all[:, :end]
    hits = _escape_flags(centre[:, :end], d, x, y, need)
    brake_hits = _escape_flags(centre[:, start:], d_all[:, start:], poses[0, :, start:], poses[1, :, start:], need)
    if stop < brake_steps:  # the base stands still at braking's last pose from there
        brake_hits = np.concatenate([brake_hits, np.repeat(brake_hits[:, -1:], (brake_steps - stop) * substeps, 1)], 1)
    step_poses = np.stack([x[:, ::substeps], y[:, ::substeps], th[:, ::substeps]], axis=-1)
    return FollowedBatch(step_poses, hits, d, brake_hits, substeps, need)


@dataclass(frozen=True)
class PlanCheck:
    ok: bool
    reason: str
    relative_poses: np.ndarray  # [T+1, 3] robot-frame rollout of the whole plan as the base follows it


def validate_plan(
    controls: np.ndarray,
    window: np.ndarray,
    spec: ModelSpec,
    radius: float,
    lookahead_time: float,
    velocity: np.ndarray | None = None,
    limits: Limits | None = None,
    hold: int = 1,
) -> PlanCheck:
    """Reject non-finite plans, plans beyond the velocity ``limits`` (default: the model's), and plans
    that collide within ``lookahead_time`` as the base follows them from ``velocity`` (default: at rest)
    at the acceleration limits, or braking after ``hold`` steps of their first command (``follow``)."""
    controls = np.asarray(controls, dtype=np.float64)
    if controls.shape != (spec.steps, 3):
        return PlanCheck(False, f"plan has shape {controls.shape}, expected ({spec.steps}, 3)",
                         np.zeros((spec.steps + 1, 3)))
    velocity = np.zeros(3) if velocity is None else np.asarray(velocity, dtype=np.float64).reshape(3)
    if not (np.isfinite(controls).all() and np.isfinite(velocity).all()):
        return PlanCheck(False, "plan contains non-finite values", np.zeros((spec.steps + 1, 3)))
    steps = lookahead_steps(lookahead_time, spec)
    limits = spec.limits if limits is None else limits
    low, high = np.subtract(limits.velocity_low, 1e-9), np.add(limits.velocity_high, 1e-9)
    if np.any(controls < low) or np.any(controls > high):
        return PlanCheck(False, "plan exceeds the velocity limits", np.zeros((spec.steps + 1, 3)))
    followed = follow(controls, window, velocity, spec, radius, limits, hold, steps)
    rel = followed.step_poses
    if not np.isfinite(followed.poses).all():  # finite but absurd controls (validate_plan does not clip)
        return PlanCheck(False, "plan rollout is not finite", np.zeros((spec.steps + 1, 3)))
    plan_hit, brake_hit = followed.first_hit(steps)
    if plan_hit:
        return PlanCheck(False, f"plan collides at step {plan_hit} (t={plan_hit * spec.dt:.1f} s)", rel)
    if brake_hit:
        return PlanCheck(False, f"braking after the first command collides at t={brake_hit * spec.dt:.1f} s", rel)
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


def escape_bearing(window: np.ndarray, resolution: float, reach: float) -> float | None:
    """Robot-frame bearing (rad) away from the lethal window cells within ``reach`` (m) of the robot, each
    pushing by the inverse square of its distance; None when none is that close."""
    window = np.asarray(window)
    ny, nx = window.shape
    rows, cols = np.nonzero(window >= LETHAL_COST)
    x = (cols + 0.5 - nx / 2.0) * resolution
    y = (rows + 0.5 - ny / 2.0) * resolution
    d = np.hypot(x, y)
    near = (d < reach) & (d > 1e-9)
    if not near.any():
        return None
    push = -np.stack([x[near], y[near]]) / d[near] ** 3
    total = push.sum(axis=1)
    if np.hypot(*total) < 1e-9:  # boxed in symmetrically: no way out is better than another
        return None
    return float(np.arctan2(total[1], total[0]))
