"""A navigation function over the model's window: the distance to the goal through free cells.

The GA scores a plan by where it ends: time spent plus time still to go. Measured in a straight line,
"to go" has local minima at every wall between the robot and the goal (in front of a door, behind a
blocker, inside a dense field); measured through the window's free cells (8-connected, cells where the
robot's centre may be), it leads around them, as the critics of Nav2's controllers follow a path.
Computed once per window and goal (cached: a GA's generations share it), in numpy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .safety import INSCRIBED_COST

_STEPS = [(dy, dx, math.hypot(dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
# Relaxation sweeps per window row and column: ways up to about this many times the window's side converge;
# a longer maze reads as walled off (the time per window stays bounded).
MAX_SWEEPS_PER_CELL = 2


@dataclass(frozen=True)
class NavField:
    """Distance (m) to the goal from each window cell through free cells (inf where unreachable) and the
    direction (rad, robot frame) of the first step of that way."""

    distance: np.ndarray  # [ny, nx]
    heading: np.ndarray  # [ny, nx]
    resolution: float

    def at(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance, heading) at robot-frame points [..., 2]; inf and NaN outside the window."""
        ny, nx = self.distance.shape
        col = np.floor(xy[..., 0] / self.resolution + nx / 2.0)
        row = np.floor(xy[..., 1] / self.resolution + ny / 2.0)
        inside = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
        index = np.where(inside, row * nx + col, 0).astype(np.intp)
        return (np.where(inside, self.distance.ravel().take(index), np.inf),
                np.where(inside, self.heading.ravel().take(index), np.nan))


def field(window: np.ndarray, goal_xy: np.ndarray, resolution: float) -> NavField:
    """The navigation function of ``window`` toward the robot-frame point ``goal_xy`` (clamped into the
    window: the GA's goal is clipped well inside it)."""
    window = np.ascontiguousarray(window, dtype=np.float32)
    ny, nx = window.shape
    col = int(np.clip(np.floor(goal_xy[0] / resolution + nx / 2.0), 0, nx - 1))
    row = int(np.clip(np.floor(goal_xy[1] / resolution + ny / 2.0), 0, ny - 1))
    distance, heading = _field(window.tobytes(), window.shape, row, col)
    return NavField(distance * resolution, heading, resolution)


@functools.lru_cache(maxsize=8)
def _field(data: bytes, shape: tuple[int, int], row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
    """(distance in cells, heading) by repeated 8-neighbour relaxation until nothing changes."""
    ny, nx = shape
    free = np.frombuffer(data, dtype=np.float32).reshape(shape) < INSCRIBED_COST
    free[row, col] = True  # the goal itself may sit in inflation
    d = np.full((ny + 2, nx + 2), np.inf)  # a border of inf: no way leads out of the window
    inner = d[1:-1, 1:-1]
    inner[row, col] = 0.0
    # Added to each step's candidate: a blocked cell never takes a value, and a diagonal step needs both cells
    # beside it free (no cutting a corner or slipping through a diagonal wall).
    padded = np.zeros((ny + 2, nx + 2), bool)
    padded[1:-1, 1:-1] = free
    step_cost = []
    for dy, dx, w in _STEPS:
        ok = free.copy()
        if dy and dx:
            ok &= padded[1 + dy: ny + 1 + dy, 1: nx + 1] & padded[1: ny + 1, 1 + dx: nx + 1 + dx]
        step_cost.append(np.where(ok, w, np.inf))
    for _ in range(MAX_SWEEPS_PER_CELL * (ny + nx)):  # bounded: a way longer than this reads as none
        before = inner.copy()
        for (dy, dx, _w), cost in zip(_STEPS, step_cost):
            np.minimum(inner, d[1 + dy: ny + 1 + dy, 1 + dx: nx + 1 + dx] + cost, out=inner)
        if np.array_equal(inner, before):
            break
    candidates = np.stack([d[1 + dy: ny + 1 + dy, 1 + dx: nx + 1 + dx] + cost
                           for (dy, dx, _w), cost in zip(_STEPS, step_cost)])
    best = candidates.argmin(0)
    angles = np.array([math.atan2(dy, dx) for dy, dx, _ in _STEPS])
    heading = np.where(np.isfinite(candidates.min(0)) & np.isfinite(inner), angles[best], np.nan)
    distance = inner.copy()
    for a in (distance, heading):
        a.flags.writeable = False
    return distance, heading
