"""Hand-made scenes outside any generator: small situations a local planner must handle.

Every scene is a 10 m × 10 m walled room with the robot at (3, 5) facing +x (unless the scene says
otherwise); obstacles are placed relative to it. The first three are the scenes of issue 13 on
which the shipped network failed while the GA expert did not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import routes
from .world import Scenario, WorldConfig, _box, _canvas, _disc, make_world

SIZE = 10.0
X0, Y0 = 3.0, 5.0  # the robot's start

Builder = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, bool]]


def _box_ahead(occ, yy, xx):
    """A 0.3 m × 0.6 m box 1.2 m ahead (its near face), the goal 2.5 m ahead behind it."""
    _box(occ, yy, xx, X0 + 1.2, Y0 - 0.3, X0 + 1.5, Y0 + 0.3)
    return np.array([X0, Y0, 0.0]), np.array([X0 + 2.5, Y0, 0.0]), False


def _door(occ, yy, xx):
    """A wall across the room 1.2 m ahead with a 0.9 m door, offset 0.3 m to the left; goal 1.3 m past it."""
    wall, door, width = X0 + 1.2, Y0 + 0.3, 0.9
    _box(occ, yy, xx, wall, 0.0, wall + 0.1, door - width / 2)
    _box(occ, yy, xx, wall, door + width / 2, wall + 0.1, SIZE)
    return np.array([X0, Y0, 0.0]), np.array([wall + 1.4, Y0, 0.0]), False


def _pillars_behind(occ, yy, xx):
    """Three 0.15 m pillars behind the robot, the goal 2.5 m behind it past them."""
    for dx, dy in ((-0.8, -0.55), (-0.8, 0.55), (-1.5, 0.0)):
        _disc(occ, yy, xx, X0 + 3.0 + dx, Y0 + dy, 0.15)
    return np.array([X0 + 3.0, Y0, 0.0]), np.array([X0 + 0.5, Y0, np.pi]), False


def _narrow_gap(occ, yy, xx):
    """Two boxes with a 0.6 m gap straight ahead."""
    _box(occ, yy, xx, X0 + 1.0, Y0 + 0.3, X0 + 1.6, Y0 + 1.5)
    _box(occ, yy, xx, X0 + 1.0, Y0 - 1.5, X0 + 1.6, Y0 - 0.3)
    return np.array([X0, Y0, 0.0]), np.array([X0 + 3.0, Y0, 0.0]), False


def _pillar_row(occ, yy, xx):
    """A row of 0.1 m pillars across the way with 0.55 m gaps, none in line with the goal."""
    for y in np.arange(Y0 - 2.5, Y0 + 2.6, 0.75) + 0.3:
        _disc(occ, yy, xx, X0 + 1.5, y, 0.1)
    return np.array([X0, Y0, 0.0]), np.array([X0 + 3.0, Y0, 0.0]), False


def _slalom(occ, yy, xx):
    """A chicane: two walls from alternate sides leaving 0.8 m, the goal past both."""
    _box(occ, yy, xx, X0 + 1.0, Y0 - 0.4, X0 + 1.1, SIZE)
    _box(occ, yy, xx, X0 + 2.3, 0.0, X0 + 2.4, Y0 + 0.4)
    return np.array([X0, Y0, 0.0]), np.array([X0 + 3.5, Y0, 0.0]), False


def _corridor_turnaround(occ, yy, xx):
    """The robot in a 1.1 m dead-end corridor facing its end; the goal behind it outside."""
    _box(occ, yy, xx, X0 - 0.5, Y0 + 0.55, X0 + 1.5, Y0 + 0.65)
    _box(occ, yy, xx, X0 - 0.5, Y0 - 0.65, X0 + 1.5, Y0 - 0.55)
    _box(occ, yy, xx, X0 + 1.5, Y0 - 0.65, X0 + 1.6, Y0 + 0.65)
    return np.array([X0 + 0.8, Y0, 0.0]), np.array([X0 - 1.5, Y0, np.pi]), False


def _l_corner(occ, yy, xx):
    """A 1.2 m corridor turning left 90° after 3 m; the goal around the corner, fed as a path."""
    occ[:] = True
    occ[(xx > X0 - 1.0) & (xx < X0 + 3.6) & (np.abs(yy - Y0) < 0.6)] = False
    occ[(xx > X0 + 2.4) & (xx < X0 + 3.6) & (yy > Y0 - 0.6) & (yy < Y0 + 3.5)] = False
    return np.array([X0 - 0.3, Y0, 0.0]), np.array([X0 + 3.0, Y0 + 3.0, np.pi / 2]), True


SCENES: dict[str, Builder] = {
    "box_ahead": _box_ahead,
    "door_0.9m": _door,
    "pillars_behind": _pillars_behind,
    "narrow_gap_0.6m": _narrow_gap,
    "pillar_row": _pillar_row,
    "slalom": _slalom,
    "corridor_turnaround": _corridor_turnaround,
    "l_corner": _l_corner,
}


def make_scene(name: str, config: WorldConfig = WorldConfig(), decay: float | None = None) -> Scenario:
    """Scene ``name`` inflated with ``config``'s robot radius and inflation radius; the decay is
    ``decay`` or the middle of ``config.decay_range``."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; known: {', '.join(SCENES)}")
    occ, yy, xx = _canvas(SIZE, config.resolution)
    start, goal, follow = SCENES[name](occ, yy, xx)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    d = float(np.mean(config.decay_range)) if decay is None else decay
    world = make_world(occ, config.resolution, d, config, kind=name)
    route = routes.grid_path(world.grid, start, goal)
    return Scenario(world, start, goal, name, 0, route, follow and route is not None)
