"""2D worlds and a robot simulator, shared by the demo simulator node and the training package.

A world is an axis-aligned occupancy grid in the odom frame with Nav2-like inflation: 100 on
obstacles, 99 within the robot radius, exponential decay by ``inflation_decay`` out to the
inflation radius (Nav2's cost_scaling_factor), translated to OccupancyGrid's 0..100 scale.

Worlds come in families (``FAMILIES``): the original generator's kinds (``BASE_KINDS``: clutter,
walls, corridor, dead_end, mixed) and families robots meet outside it (dense fields of small round
obstacles, doors, narrow passages, a blocker across the way, U-shaped traps, rooms and turning
corridors, long routes). ``make_scenario(seed, config, family)`` gives a world with its start, goal
and, for the families a global planner must guide (``PATH_FAMILIES``), the grid path to follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .. import kinematics
from ..contract import Limits
from ..tensors import Grid
from . import routes

BASE_KINDS = ("clutter", "walls", "corridor", "dead_end", "mixed")
NEW_FAMILIES = ("dense", "door", "narrow", "blocker", "u_trap", "rooms", "long_route")
FAMILIES = BASE_KINDS + NEW_FAMILIES
# The goal of these families is fed as a global path (a carrot on it), as Nav2's planner_server feeds
# a controller: a single goal behind a U or around corners is a local minimum for any local planner.
PATH_FAMILIES = ("u_trap", "rooms", "long_route")
LONG_ROUTE_M = 8.0  # routes longer than this get proportionally more time (Scenario.time_budget)


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
    # Share of the free area (cost 0) shown as unknown (−1) in patches, like unobserved floor in a
    # costmap with track_unknown_space (drawn from its own random stream: worlds stay the same).
    unknown_fraction: float = 0.0


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


@dataclass
class Scenario:
    """One episode's world, start and goal; ``route`` is the grid path between them (new families),
    ``path`` the same route when the goal is to be followed along it (``PATH_FAMILIES``), else None."""

    world: World
    start: np.ndarray
    goal: np.ndarray
    family: str
    seed: int
    route: np.ndarray | None = None
    follow_route: bool = False
    variant: str = ""

    @property
    def path(self) -> np.ndarray | None:
        return self.route if self.follow_route else None

    @property
    def route_length(self) -> float:
        if self.route is None:
            return float(np.hypot(*(self.goal - self.start)[:2]))
        return routes.path_length(self.route)

    def time_budget(self, base: float) -> float:
        """Episode time limit (s): ``base`` for routes up to ``LONG_ROUTE_M``, in proportion beyond."""
        return base if self.route is None else max(base, base * self.route_length / LONG_ROUTE_M)


def make_scenario(seed: int, config: WorldConfig = WorldConfig(), family: str | None = None) -> Scenario:
    """The episode of ``seed`` (deterministic): ``family`` if given, else one drawn from ``config.kinds``.
    For the base kinds with ``family=None`` this is exactly the original generator's episode."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown world family {family!r}; known: {', '.join(FAMILIES)}")
    unknown = set(config.kinds) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown world kind(s) {sorted(unknown)}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    for _ in range(50):
        kind = family or str(rng.choice(config.kinds))
        if kind in BASE_KINDS:
            world = random_world(rng, config, kind)
            pair = sample_start_goal(world, rng, config)
            scenario = None if pair is None else Scenario(world, pair[0], pair[1], kind, seed)
        else:
            scenario = _family_scenario(rng, config, kind, seed)
        if scenario is not None:
            if config.unknown_fraction > 0:
                scenario.world = with_unknown(scenario.world, config.unknown_fraction,
                                              np.random.default_rng([seed, 7]))
            return scenario
    raise RuntimeError(f"no valid start/goal for seed {seed}")


def make_episode(seed: int, config: WorldConfig = WorldConfig(), family: str | None = None
                 ) -> tuple[World, np.ndarray, np.ndarray]:
    """The world, start and goal of episode ``seed`` (deterministic; training, evaluation and demo share it).
    Path families' goals are meant to be followed along ``make_scenario(...).path``."""
    s = make_scenario(seed, config, family)
    return s.world, s.start, s.goal


def with_unknown(world: World, fraction: float, rng: np.random.Generator) -> World:
    """A copy of ``world`` with about ``fraction`` of its free (cost 0) cells unknown, in round patches."""
    free = world.costs == 0
    total = int(free.sum())
    if total == 0 or fraction <= 0:
        return world
    h, w = world.costs.shape
    yy = (np.arange(h) + 0.5)[:, None] * world.resolution
    xx = (np.arange(w) + 0.5)[None, :] * world.resolution
    mask = np.zeros_like(free)
    for _ in range(200):  # a loop over patches, not cells
        if (mask & free).sum() >= fraction * total:
            break
        _disc(mask, yy, xx, rng.uniform(0, w * world.resolution), rng.uniform(0, h * world.resolution),
              rng.uniform(0.3, 1.2))
    costs = np.where(mask & free, -1, world.costs).astype(np.int8)
    return World(world.obstacles, costs, world.distance, world.resolution, world.origin, world.inflation_decay,
                 world.robot_radius, world.kind)


# ---------------------------------------------------------------- families beyond the original generator
def _canvas(size_m: float, resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A walled-in empty occupancy grid and its cell-centre coordinates (yy [n, 1], xx [1, n])."""
    n = int(round(size_m / resolution))
    coords = (np.arange(n) + 0.5) * resolution
    occ = np.zeros((n, n), dtype=bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    return occ, coords[:, None], coords[None, :]


def _local(yy: np.ndarray, xx: np.ndarray, origin: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates (u along ``angle``, v to its left) in a frame at ``origin``."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xx - origin[0], yy - origin[1]
    return c * dx + s * dy, -s * dx + c * dy


def _rbox(mask: np.ndarray, u: np.ndarray, v: np.ndarray, u0: float, u1: float, v0: float, v1: float,
          value: bool = True) -> None:
    """Set ``mask`` to ``value`` on the box [u0, u1] × [v0, v1] of a local frame."""
    inside = (u >= min(u0, u1)) & (u <= max(u0, u1)) & (v >= min(v0, v1)) & (v <= max(v0, v1))
    mask[inside] = value


def _way(rng: np.random.Generator, size: float, length: float) -> tuple[np.ndarray, np.ndarray, float]:
    """A start and goal ``length`` apart in a random direction, centred near the world's middle."""
    angle = float(rng.uniform(-np.pi, np.pi))
    u = np.array([np.cos(angle), np.sin(angle)])
    centre = np.full(2, size / 2.0) + rng.uniform(-1.0, 1.0, size=2)
    return centre - 0.5 * length * u, centre + 0.5 * length * u, angle


def _scatter(occ: np.ndarray, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, count: int,
             keep_clear: list[np.ndarray], clear_radius: float, size: float) -> None:
    """``count`` small boxes and discs anywhere except within ``clear_radius`` of the ``keep_clear`` points."""
    for _ in range(count):
        c = rng.uniform(0.5, size - 0.5, size=2)
        r = rng.uniform(0.1, 0.35)
        if all(np.hypot(*(c - p)) > clear_radius + r for p in keep_clear):
            if rng.random() < 0.5:
                _disc(occ, yy, xx, c[0], c[1], r)
            else:
                _box(occ, yy, xx, c[0] - r, c[1] - r * 0.7, c[0] + r, c[1] + r * 0.7)


def _dense_field(occ: np.ndarray, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, size: float,
                 robot_radius: float, keep_clear: list[np.ndarray]) -> None:
    """Small round obstacles (poles, legs) thrown at random with gaps of at least the robot's width
    plus a small margin between any two; the points in ``keep_clear`` get room for the robot."""
    gap = 2.0 * robot_radius + rng.uniform(0.05, 0.3)
    count = int(rng.integers(4, 16) * size * size)  # candidates: the field's density varies
    centres = rng.uniform(0.3, size - 0.3, size=(count, 2))
    radii = rng.uniform(0.05, 0.25, size=count)
    kept: list[int] = []
    clear = np.array(keep_clear).reshape(-1, 2)
    for k in range(count):  # dart throwing: a loop over candidate obstacles, each check vectorised
        if clear.size and (np.hypot(*(clear - centres[k]).T) < radii[k] + robot_radius + 0.35).any():
            continue
        if kept and (np.hypot(*(centres[kept] - centres[k]).T) - radii[kept] - radii[k] < gap).any():
            continue
        kept.append(k)
        _disc(occ, yy, xx, centres[k, 0], centres[k, 1], radii[k])


def _room_grid(occ: np.ndarray, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, size: float,
               cuts: int) -> None:
    """Rooms: ``cuts`` internal walls along each axis, a door in every wall segment between crossings."""
    t = 0.12
    for axis in (0, 1):
        positions = np.sort(rng.uniform(2.0, size - 2.0, size=cuts))
        positions = positions[np.concatenate([[True], np.diff(positions) > 1.5])]
        for pos in positions:
            bounds = np.concatenate([[0.0], np.sort(rng.uniform(1.0, size - 1.0, size=cuts)), [size]])
            for lo, hi in zip(bounds[:-1], bounds[1:]):  # segments between crossings, each with a door
                width = rng.uniform(0.8, 1.2)
                door = rng.uniform(lo + 0.2, max(hi - 0.2 - width, lo + 0.2))
                for a, b in ((lo, door), (door + width, hi)):
                    if b > a:
                        if axis == 0:
                            _box(occ, yy, xx, pos - t / 2, a, pos + t / 2, b)
                        else:
                            _box(occ, yy, xx, a, pos - t / 2, b, pos + t / 2)


def _turning_corridor(occ: np.ndarray, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, size: float
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Fill the world and carve a corridor with 2–4 turns; returns its two ends (start, goal)."""
    width = rng.uniform(1.0, 1.6)
    point = rng.uniform(1.5, size - 1.5, size=2)
    angle = float(rng.uniform(-np.pi, np.pi))
    points = [point]
    for _ in range(int(rng.integers(3, 6))):  # segments
        length = rng.uniform(1.5, 3.5)
        nxt = points[-1] + length * np.array([np.cos(angle), np.sin(angle)])
        if not ((1.0 < nxt) & (nxt < size - 1.0)).all():
            return None
        points.append(nxt)
        angle += float(rng.choice([-1.0, 1.0]) * rng.uniform(np.pi / 4, np.pi / 2))
    carved = np.zeros_like(occ)
    for a, b in zip(points[:-1], points[1:]):
        d = b - a
        ang = float(np.arctan2(d[1], d[0]))
        u, v = _local(yy, xx, a, ang)
        _rbox(carved, u, v, -width / 2, np.hypot(*d) + width / 2, -width / 2, width / 2)
    occ[:] = True
    occ &= ~carved
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    u = points[1] - points[0]
    start = points[0] + 0.2 * u / np.hypot(*u)
    return start, points[-1]


def _build(rng: np.random.Generator, config: WorldConfig, family: str
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str] | None:
    """(occupancy, start xy, goal xy, world size, variant) of one draw of ``family``; None to redraw."""
    r = config.robot_radius
    size = max(config.size_m, 16.0) if family == "long_route" else max(config.size_m, 8.0)
    occ, yy, xx = _canvas(size, config.resolution)
    variant = ""
    if family == "dense":
        start, goal, _ = _way(rng, size, rng.uniform(3.0, 4.5))
        _dense_field(occ, yy, xx, rng, size, r, [start, goal])
    elif family in ("door", "narrow"):
        before, after = rng.uniform(1.0, 2.2, size=2)
        depth = rng.uniform(0.1, 0.25) if family == "door" else rng.uniform(0.6, 2.0)
        start, goal, angle = _way(rng, size, before + depth + after)
        wall_centre = start + (before + depth / 2) * np.array([np.cos(angle), np.sin(angle)])
        width, offset = rng.uniform(0.5, 1.0), rng.uniform(-0.6, 0.6)
        u, v = _local(yy, xx, wall_centre, angle)
        _rbox(occ, u, v, -depth / 2, depth / 2, -2 * size, offset - width / 2)
        _rbox(occ, u, v, -depth / 2, depth / 2, offset + width / 2, 2 * size)
        door = wall_centre + offset * np.array([-np.sin(angle), np.cos(angle)])
        _scatter(occ, yy, xx, rng, int(rng.integers(0, 4)), [start, goal, door], 1.0 + depth / 2, size)
    elif family == "blocker":
        start, goal, angle = _way(rng, size, rng.uniform(2.5, 4.5))
        at = start + rng.uniform(0.35, 0.65) * (goal - start)
        at += rng.uniform(-0.3, 0.3) * np.array([-np.sin(angle), np.cos(angle)])
        variant = str(rng.choice(["box", "disc", "wall"]))
        if variant == "disc":
            _disc(occ, yy, xx, at[0], at[1], rng.uniform(0.2, 0.6))
        else:
            if variant == "box":
                du, dv, turn = rng.uniform(0.15, 0.4), rng.uniform(0.15, 0.6), rng.uniform(-np.pi, np.pi)
            else:
                du, dv, turn = rng.uniform(0.05, 0.1), rng.uniform(0.5, 1.5), rng.uniform(-0.5, 0.5)
            u, v = _local(yy, xx, at, angle + turn)
            _rbox(occ, u, v, -du, du, -dv, dv)
    elif family == "u_trap":
        angle = float(rng.uniform(-np.pi, np.pi))
        along, left = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        width, depth, t = rng.uniform(1.0, 2.0), rng.uniform(1.0, 2.0), rng.uniform(0.1, 0.2)
        behind = rng.uniform(1.0, 2.5)
        mouth = np.full(2, size / 2.0) - 0.5 * (depth + behind) * along + rng.uniform(-1.0, 1.0, size=2)
        u, v = _local(yy, xx, mouth, angle)
        _rbox(occ, u, v, 0.0, depth + t, width / 2, width / 2 + t)
        _rbox(occ, u, v, 0.0, depth + t, -width / 2 - t, -width / 2)
        _rbox(occ, u, v, depth, depth + t, -width / 2 - t, width / 2 + t)
        start = mouth + rng.uniform(0.3, max(depth - 0.5, 0.3)) * along \
            + rng.uniform(-0.2, 0.2) * (width / 2 - 0.4) * left
        goal = mouth + (depth + t + behind) * along + rng.uniform(-0.5, 0.5) * left
        _scatter(occ, yy, xx, rng, int(rng.integers(0, 4)), [start, goal, mouth + 0.5 * depth * along],
                 1.0 + max(width, depth), size)
    elif family == "rooms":
        variant = str(rng.choice(["rooms", "corridor"]))
        if variant == "rooms":
            _room_grid(occ, yy, xx, rng, size, int(rng.integers(1, 3)))
            start, goal, _ = _way(rng, size, rng.uniform(3.0, 7.0))
        else:
            ends = _turning_corridor(occ, yy, xx, rng, size)
            if ends is None:
                return None
            start, goal = ends
        _scatter(occ, yy, xx, rng, int(rng.integers(0, 4)), [start, goal], 0.9, size)
    elif family == "long_route":
        variant = str(rng.choice(["dense", "rooms", "clutter"]))
        start, goal, _ = _way(rng, size, rng.uniform(7.5, 13.0))
        if variant == "dense":
            _dense_field(occ, yy, xx, rng, size, r, [start, goal])
        elif variant == "rooms":
            _room_grid(occ, yy, xx, rng, size, int(rng.integers(2, 4)))
            _scatter(occ, yy, xx, rng, int(rng.integers(3, 12)), [start, goal], 0.9, size)
        else:
            _scatter(occ, yy, xx, rng, int(rng.integers(25, 60)), [start, goal], 0.9, size)
    else:
        raise ValueError(f"unknown world family {family!r}")
    return occ, start, goal, size, variant


def _family_scenario(rng: np.random.Generator, config: WorldConfig, family: str, seed: int) -> Scenario | None:
    """One draw of a new family: the world, a free start and goal joined by a grid route of the family's
    length (checked on geometry alone, so the world does not depend on the inflation settings)."""
    built = _build(rng, config, family)
    decay = float(rng.uniform(*config.decay_range))
    heading = float(rng.uniform(-np.pi, np.pi))
    goal_yaw = float(rng.uniform(-np.pi, np.pi))
    if built is None:
        return None
    occ, start_xy, goal_xy, size, variant = built
    if family == "u_trap":  # facing into the trap
        d = goal_xy - start_xy
        heading = float(np.arctan2(d[1], d[0])) + 0.3 * np.tanh(heading)
    world = make_world(occ, config.resolution, decay, config, kind=family)
    res = config.resolution
    need = config.robot_radius + 0.5 * res + config.start_clearance
    (r0, r1), (c0, c1) = world.cell_of(np.stack([start_xy, goal_xy]))
    inside = all(0.5 < p < size - 0.5 for p in (*start_xy, *goal_xy))
    if not inside or world.distance[r0, c0] <= need or world.distance[r1, c1] <= need:
        return None
    geometric = Grid(np.where(world.costs >= routes.INSCRIBED, world.costs, 0).astype(np.int8), res)
    shortest = routes.grid_path(geometric, np.array([*start_xy, 0.0]), np.array([*goal_xy, 0.0]), cost_weight=0.0)
    if shortest is None:
        return None
    length, straight = routes.path_length(shortest), float(np.hypot(*(goal_xy - start_xy)))
    if family == "long_route" and not 8.0 <= length <= 15.0:
        return None
    if family not in PATH_FAMILIES and length > 1.6 * straight + 0.5:
        return None  # a local goal must be reachable without a global planner's help
    start, goal = np.array([*start_xy, heading]), np.array([*goal_xy, goal_yaw])
    route = routes.grid_path(world.grid, start, goal)
    return Scenario(world, start, goal, family, seed, route, family in PATH_FAMILIES, variant)


def local_costmap(world: World, pose: np.ndarray, size_m: float = 6.0, resolution: float = 0.05,
                  outside: int = 0) -> Grid:
    """A Nav2 rolling-window local costmap: axis-aligned, centred on the robot, origin snapped to cells.
    A cell coarser than the world's takes the highest cost of the world cells it covers (an obstacle
    anywhere in a cell marks it, as a costmap layer does); a finer one repeats the world's cell."""
    n = int(round(size_m / resolution))
    ox = np.floor((pose[0] - size_m / 2) / resolution) * resolution
    oy = np.floor((pose[1] - size_m / 2) / resolution) * resolution
    k = max(int(round(resolution / world.resolution)), 1) if resolution > 1.5 * world.resolution else 1
    offsets = (np.arange(k) + 0.5) / k * resolution  # k×k sample points per cell (its centre when k = 1)
    h, w = world.costs.shape
    data = np.full((n, n), -128, dtype=np.int8)
    for dy in offsets:  # k² whole-grid samplings, not a loop over cells
        for dx in offsets:
            col = np.floor((ox + np.arange(n) * resolution + dx - world.origin[0]) / world.resolution).astype(np.int64)
            row = np.floor((oy + np.arange(n) * resolution + dy - world.origin[1]) / world.resolution).astype(np.int64)
            sample = np.full((n, n), outside, dtype=np.int8)
            rin, cin = (row >= 0) & (row < h), (col >= 0) & (col < w)
            sample[np.ix_(rin, cin)] = world.costs[np.ix_(row[rin], col[cin])]
            data = np.maximum(data, sample)
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
