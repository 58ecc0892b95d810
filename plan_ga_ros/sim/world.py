"""2D worlds and a robot simulator, shared by the demo simulator node and the training package.

A world is an axis-aligned occupancy grid in the odom frame with Nav2-like inflation: 100 on
obstacles, 99 within the robot radius, exponential decay by ``inflation_decay`` out to the
inflation radius (Nav2's cost_scaling_factor), translated to OccupancyGrid's 0..100 scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .. import kinematics
from ..contract import Limits
from ..tensors import Grid


@dataclass(frozen=True)
class WorldConfig:
    size_m: float = 10.0
    resolution: float = 0.05
    robot_radius: float = 0.2
    inflation_radius: float = 0.55
    decay_range: tuple[float, float] = (2.0, 6.0)
    kinds: tuple[str, ...] = ("clutter", "walls", "corridor", "dead_end", "mixed")
    goal_distance: tuple[float, float] = (0.5, 4.0)
    start_clearance: float = 0.15  # free space around start and goal beyond the radius (m)
    # Grid-search path length over straight-line distance allowed between start and goal: a local
    # planner is meant for goals its window can see a way to (Nav2 feeds it a global path's carrot).
    max_detour: float = 1.3


@dataclass
class World:
    obstacles: np.ndarray  # bool [H, W]
    costs: np.ndarray  # int8 [H, W], 0..100
    distance: np.ndarray  # float [H, W], metres from each cell centre to the nearest obstacle cell centre
    resolution: float
    origin: tuple[float, float] = (0.0, 0.0)
    inflation_decay: float = 3.0
    robot_radius: float = 0.2
    kind: str = ""

    @property
    def grid(self) -> Grid:
        return Grid(self.costs, self.resolution, (self.origin[0], self.origin[1], 0.0))

    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = np.asarray(xy, dtype=np.float64)
        col = np.clip(np.floor((xy[..., 0] - self.origin[0]) / self.resolution), 0, self.costs.shape[1] - 1)
        row = np.clip(np.floor((xy[..., 1] - self.origin[1]) / self.resolution), 0, self.costs.shape[0] - 1)
        return row.astype(np.int64), col.astype(np.int64)

    def clearance(self, xy: np.ndarray) -> float:
        """Gap (m) between the robot disc centred at ``xy`` [2] and the nearest obstacle cell (a square);
        negative is a collision. Exact near obstacles; beyond them a distance-transform lower bound."""
        xy = np.asarray(xy, dtype=np.float64)
        res = self.resolution
        row, col = self.cell_of(xy)
        approx = self.distance[row, col] - res / np.sqrt(2.0)  # centre-to-centre minus the half diagonal
        reach = self.robot_radius + 2.0 * res
        if approx - res / np.sqrt(2.0) > reach:
            return float(approx - self.robot_radius)
        k = int(np.ceil(reach / res)) + 1
        h, w = self.obstacles.shape
        r0, r1, c0, c1 = max(row - k, 0), min(row + k + 1, h), max(col - k, 0), min(col + k + 1, w)
        rr, cc = np.nonzero(self.obstacles[r0:r1, c0:c1])
        if rr.size == 0:
            return float(approx - self.robot_radius)
        cx = self.origin[0] + (cc + c0 + 0.5) * res
        cy = self.origin[1] + (rr + r0 + 0.5) * res
        dx = np.maximum(np.abs(xy[0] - cx) - res / 2.0, 0.0)
        dy = np.maximum(np.abs(xy[1] - cy) - res / 2.0, 0.0)
        return float(np.hypot(dx, dy).min() - self.robot_radius)


def nav2_costs(distance: np.ndarray, robot_radius: float, inflation_radius: float, decay: float) -> np.ndarray:
    """OccupancyGrid costs (int8 0..100) from distances (m) to the nearest obstacle, as Nav2 inflates."""
    raw = 252.0 * np.exp(-decay * (distance - robot_radius))  # Nav2's 0..254 scale
    scaled = 1.0 + 97.0 * (raw - 1.0) / 251.0  # Nav2's costmap → OccupancyGrid translation
    costs = np.where(distance <= inflation_radius, np.clip(np.round(scaled), 1, 98), 0)
    costs = np.where(distance <= robot_radius, 99, costs)
    costs = np.where(distance <= 0.0, 100, costs)
    return costs.astype(np.int8)


def make_world(obstacles: np.ndarray, resolution: float, decay: float, config: WorldConfig = WorldConfig(),
               origin: tuple[float, float] = (0.0, 0.0), kind: str = "") -> World:
    distance = ndimage.distance_transform_edt(~obstacles) * resolution
    # Inflate from the obstacle cells' edges (not centres): then "inscribed" in the costmap means
    # exactly "footprint touches an obstacle" in the simulator (like Nav2's footprint_padding).
    edge = np.where(obstacles, 0.0, distance - 0.5 * resolution)
    costs = nav2_costs(edge, config.robot_radius, config.inflation_radius, decay)
    return World(obstacles, costs, distance, resolution, origin, decay, config.robot_radius, kind)


def _disc(mask: np.ndarray, yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, r: float) -> None:
    mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _box(mask: np.ndarray, yy: np.ndarray, xx: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> None:
    mask |= (xx >= min(x0, x1)) & (xx <= max(x0, x1)) & (yy >= min(y0, y1)) & (yy <= max(y0, y1))


def random_world(rng: np.random.Generator, config: WorldConfig = WorldConfig(), kind: str | None = None) -> World:
    """A seeded random world of discs, boxes, walls with doorways, corridors or dead ends."""
    n = int(round(config.size_m / config.resolution))
    s = config.size_m
    coords = (np.arange(n) + 0.5) * config.resolution
    yy, xx = coords[:, None], coords[None, :]
    occ = np.zeros((n, n), dtype=bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True  # the world is walled in
    kind = kind or str(rng.choice(config.kinds))
    wall = 0.1

    def clutter(count: int) -> None:
        for _ in range(count):  # a loop over objects, not cells
            cx, cy = rng.uniform(0.5, s - 0.5, size=2)
            if rng.random() < 0.5:
                _disc(occ, yy, xx, cx, cy, rng.uniform(0.1, 0.45))
            else:
                w, h = rng.uniform(0.15, 0.9, size=2)
                _box(occ, yy, xx, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def walls(count: int) -> None:
        for _ in range(count):
            pos, door = rng.uniform(2.0, s - 2.0), rng.uniform(1.0, s - 1.0)
            width = rng.uniform(0.9, 1.5)
            a, b = (0.0, door - width / 2), (door + width / 2, s)
            for lo, hi in (a, b):
                if rng.random() < 0.5:
                    _box(occ, yy, xx, pos - wall / 2, lo, pos + wall / 2, hi)
                else:
                    _box(occ, yy, xx, lo, pos - wall / 2, hi, pos + wall / 2)

    if kind == "clutter":
        clutter(int(rng.integers(6, 16)))
    elif kind == "walls":
        walls(int(rng.integers(1, 3)))
        clutter(int(rng.integers(2, 6)))
    elif kind == "corridor":
        c, gap = rng.uniform(3.0, s - 3.0), rng.uniform(1.1, 1.8)
        _box(occ, yy, xx, 1.0, c - gap / 2 - wall, s - 1.0, c - gap / 2)
        _box(occ, yy, xx, 1.0, c + gap / 2, s - 1.0, c + gap / 2 + wall)
        for _ in range(int(rng.integers(0, 3))):
            _disc(occ, yy, xx, rng.uniform(2, s - 2), c + rng.choice([-1, 1]) * gap / 2, rng.uniform(0.1, 0.25))
        clutter(int(rng.integers(2, 6)))
    elif kind == "dead_end":
        cx, cy, w, d = *rng.uniform(3.0, s - 3.0, size=2), rng.uniform(1.0, 1.8), rng.uniform(1.0, 2.0)
        _box(occ, yy, xx, cx - w / 2 - wall, cy, cx - w / 2, cy + d)
        _box(occ, yy, xx, cx + w / 2, cy, cx + w / 2 + wall, cy + d)
        _box(occ, yy, xx, cx - w / 2 - wall, cy + d, cx + w / 2 + wall, cy + d + wall)
        clutter(int(rng.integers(3, 8)))
    else:
        walls(1)
        clutter(int(rng.integers(4, 10)))
    decay = float(rng.uniform(*config.decay_range))
    return make_world(occ, config.resolution, decay, config, kind=kind)


def grid_path_length(passable: np.ndarray, start: tuple[int, int], goal: tuple[int, int],
                     max_cells: int) -> float:
    """Length in cells of the shortest 8-connected path through ``passable`` (inf if none within
    ``max_cells`` wavefront steps). The wavefront is a whole-grid dilation per step, not a cell loop.
    """
    reached = np.zeros_like(passable)
    reached[start] = True
    dist = np.full(passable.shape, np.inf)
    dist[start] = 0.0
    eight = np.ones((3, 3), dtype=bool)
    for step in range(1, max_cells + 1):
        grown = ndimage.binary_dilation(reached, structure=eight) & passable
        new = grown & ~reached
        if not new.any():
            break
        dist[new] = step
        reached = grown
        if reached[goal]:
            break
    return float(dist[goal])


def sample_start_goal(world: World, rng: np.random.Generator, config: WorldConfig = WorldConfig(),
                      tries: int = 500) -> tuple[np.ndarray, np.ndarray] | None:
    """A collision-free start and goal 0.5–4 m apart, joined through free space by a grid path at
    most ``max_detour`` times the straight line (chessboard metric).
    """
    free = world.distance > config.robot_radius + 0.5 * world.resolution + config.start_clearance
    passable = world.distance > config.robot_radius + 0.5 * world.resolution + 0.02
    labels, _ = ndimage.label(passable)
    rows, cols = np.nonzero(free)
    if rows.size == 0:
        return None
    idx = rng.integers(0, rows.size, size=(tries, 2))
    r0, c0, r1, c1 = rows[idx[:, 0]], cols[idx[:, 0]], rows[idx[:, 1]], cols[idx[:, 1]]
    d = np.hypot(r1 - r0, c1 - c0) * world.resolution
    ok = (d >= config.goal_distance[0]) & (d <= config.goal_distance[1]) & (labels[r0, c0] == labels[r1, c1])
    for k in np.flatnonzero(ok)[:20]:  # a few candidate pairs, each one grid search
        chebyshev = max(abs(int(r1[k] - r0[k])), abs(int(c1[k] - c0[k])))
        limit = int(np.ceil(config.max_detour * chebyshev)) + 2
        if grid_path_length(passable, (r0[k], c0[k]), (r1[k], c1[k]), limit) > limit:
            continue
        res = world.resolution
        start_xy = np.array([(c0[k] + 0.5) * res, (r0[k] + 0.5) * res]) + world.origin
        goal_xy = np.array([(c1[k] + 0.5) * res, (r1[k] + 0.5) * res]) + world.origin
        return np.array([*start_xy, rng.uniform(-np.pi, np.pi)]), np.array([*goal_xy, rng.uniform(-np.pi, np.pi)])
    return None


def make_episode(seed: int, config: WorldConfig = WorldConfig()) -> tuple[World, np.ndarray, np.ndarray]:
    """The world, start and goal of episode ``seed`` (deterministic; training, evaluation and demo share it)."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        world = random_world(rng, config)
        pair = sample_start_goal(world, rng, config)
        if pair is not None:
            return world, pair[0], pair[1]
    raise RuntimeError(f"no valid start/goal for seed {seed}")


def local_costmap(world: World, pose: np.ndarray, size_m: float = 6.0, resolution: float = 0.05,
                  outside: int = 0) -> Grid:
    """A Nav2 rolling-window local costmap: axis-aligned, centred on the robot, origin snapped to cells."""
    n = int(round(size_m / resolution))
    ox = np.floor((pose[0] - size_m / 2) / resolution) * resolution
    oy = np.floor((pose[1] - size_m / 2) / resolution) * resolution
    centres = (np.arange(n) + 0.5) * resolution
    xs, ys = ox + centres, oy + centres
    col = np.floor((xs - world.origin[0]) / world.resolution).astype(np.int64)
    row = np.floor((ys - world.origin[1]) / world.resolution).astype(np.int64)
    h, w = world.costs.shape
    data = np.full((n, n), outside, dtype=np.int8)
    rin, cin = (row >= 0) & (row < h), (col >= 0) & (col < w)
    data[np.ix_(rin, cin)] = world.costs[np.ix_(row[rin], col[cin])]
    return Grid(data, resolution, (float(ox), float(oy), 0.0))


@dataclass
class RobotSim:
    """A robot whose velocity chases the command at its acceleration limits; exact arc integration."""

    pose: np.ndarray
    limits: Limits = field(default_factory=Limits)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    noise: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def step(self, command: np.ndarray, dt: float) -> None:
        self.velocity = kinematics.track_velocity(self.velocity, command, self.limits, dt)
        twist = self.velocity
        if self.noise > 0:
            twist = twist * (1.0 + self.noise * self.rng.standard_normal(3))
        self.pose = kinematics.rollout(self.pose, twist[None], dt)[-1]
        self.pose[2] = (self.pose[2] + np.pi) % (2 * np.pi) - np.pi
