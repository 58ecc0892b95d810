"""Tensor builders: the one place where the model's four inputs are computed.

The node and the training package both call these functions, so an input is never computed
two ways. All functions are pure numpy; none loops over cells.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .contract import COSTMAP_INPUT, GOAL_INPUT, METADATA_INPUT, STATE_INPUT, ModelSpec

MAX_COORDINATE = 1e6  # metres; farther poses are rejected (float32 tensors and grid indices stay exact)
MAX_YAW = 1e6  # rad: an unwrapped yaw beyond this is no angle (wrapping it would be noise); rejected


def check_pose(pose: np.ndarray, what: str) -> np.ndarray:
    """A finite [..., 3] pose array within ±MAX_COORDINATE and a yaw within ±MAX_YAW (any number of turns;
    builders wrap it); raises ValueError otherwise."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1:] != (3,):
        raise ValueError(f"{what} must have 3 values (x, y, yaw), got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise ValueError(f"{what} is not finite: {pose.tolist()}")
    if np.abs(pose[..., :2]).max(initial=0.0) > MAX_COORDINATE:
        raise ValueError(f"{what} is farther than {MAX_COORDINATE:g} m from the origin")
    if np.abs(pose[..., 2]).max(initial=0.0) > MAX_YAW:
        raise ValueError(f"{what} has a yaw beyond ±{MAX_YAW:g} rad")
    return pose


@dataclass(frozen=True)
class Grid:
    """An occupancy grid as nav_msgs/OccupancyGrid holds it.

    ``data`` is int8 [height, width] with values 0..100 or -1 (unknown); cell (r, c) has its
    centre at grid-frame ((c + 0.5)·resolution, (r + 0.5)·resolution), and the grid frame is
    placed in the parent frame by ``origin`` = (x, y, yaw).
    """

    data: np.ndarray
    resolution: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frame_id: str = "odom"

    @classmethod
    def from_flat(
        cls,
        flat: np.ndarray,
        width: int,
        height: int,
        resolution: float,
        origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
        frame_id: str = "odom",
        max_cells: int = 25_000_000,
    ) -> Grid:
        """Validate an OccupancyGrid's fields and wrap them; raises ValueError on bad input."""
        if width <= 0 or height <= 0:
            raise ValueError(f"grid is empty: width={width} height={height}")
        if width * height > max_cells:
            raise ValueError(f"grid of {width}x{height} cells exceeds max_grid_cells={max_cells}")
        if not np.isfinite(resolution) or resolution < 1e-6:
            raise ValueError(f"grid resolution must be positive and finite, got {resolution}")
        if not np.isfinite(resolution * width) or resolution * max(width, height) > MAX_COORDINATE:
            raise ValueError(f"grid of {width}x{height} cells at {resolution} m is too large")
        check_pose(np.array(origin, dtype=np.float64), "grid origin")
        flat = np.asarray(flat)
        if flat.size != width * height:
            raise ValueError(
                f"grid data has {flat.size} cells but width*height = {width}*{height} = {width * height}"
            )
        return cls(flat.astype(np.int8, copy=False).reshape(height, width), float(resolution),
                   tuple(float(v) for v in origin), frame_id)


def pool_grid(grid: Grid, window_resolution: float) -> Grid:
    """Max-pool a grid much finer than the window (k×k blocks, unknown only where a whole block is),
    so that building a window visits a bounded number of cells whatever the source resolution."""
    k = int(np.floor(0.5 * window_resolution / grid.resolution))
    if k < 2:
        return grid
    h, w = grid.data.shape
    hp, wp = -(-h // k) * k, -(-w // k) * k
    data = grid.data
    if (hp, wp) != (h, w):
        data = np.full((hp, wp), -1, dtype=np.int8)
        data[:h, :w] = grid.data
    # Unknown (-1) is below every known cost, so the block maximum is unknown only if all cells are.
    pooled = data.reshape(hp // k, k, wp // k, k).max(axis=(1, 3))
    return Grid(pooled, grid.resolution * k, grid.origin, grid.frame_id)


def grid_value_at(grid: Grid, xy: np.ndarray) -> int:
    """The OccupancyGrid value (0..100, -1 unknown) at parent-frame point ``xy``; -1 outside the grid."""
    ox, oy, oyaw = grid.origin
    dx, dy = float(xy[0]) - ox, float(xy[1]) - oy
    c, s = np.cos(oyaw), np.sin(oyaw)
    col = int(np.floor((c * dx + s * dy) / grid.resolution))
    row = int(np.floor((-s * dx + c * dy) / grid.resolution))
    h, w = grid.data.shape
    return int(grid.data[row, col]) if 0 <= row < h and 0 <= col < w else -1


def window_cell_centres(spec: ModelSpec) -> np.ndarray:
    """Robot-frame (x, y) of each window cell centre, shape [n, n, 2]; row ↔ y, column ↔ x (read-only)."""
    return _cell_centres(spec.window_cells, spec.resolution)


@functools.lru_cache(maxsize=8)
def _cell_centres(n: int, resolution: float) -> np.ndarray:
    offs = (np.arange(n) - (n - 1) / 2.0) * resolution
    xs, ys = np.meshgrid(offs, offs)  # xs varies along columns, ys along rows
    out = np.stack([xs, ys], axis=-1)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _cost_lookup(unknown_cost: float) -> np.ndarray:
    """Map int8 OccupancyGrid values (as uint8 index) to float costs in [0, 1] (read-only)."""
    table = np.full(256, unknown_cost, dtype=np.float32)
    table[:101] = np.arange(101, dtype=np.float32) / 100.0
    table.flags.writeable = False
    return table


def costmap_window(
    grid: Grid,
    robot_pose: np.ndarray,
    spec: ModelSpec,
    unknown_cost: float = 0.0,
) -> np.ndarray:
    """Robot-centred, robot-aligned cost window [n, n] float32 in [0, 1].

    Each window cell takes the maximum cost of the source cells it covers: window cell
    centres sample the source (coarse sources) and source cell centres are max-scattered
    into the window (fine sources never lose a thin obstacle). Unknown cells, values outside
    0..100 and the area outside the grid take ``unknown_cost``.
    """
    if not 0.0 <= unknown_cost <= 1.0:
        raise ValueError(f"unknown_cost must be in [0, 1], got {unknown_cost}")
    x, y, th = (float(v) for v in check_pose(robot_pose, "robot pose"))
    n, wres = spec.window_cells, spec.resolution
    h, w = grid.data.shape
    res = grid.resolution
    ox, oy, oyaw = grid.origin
    table = _cost_lookup(unknown_cost)
    src = grid.data.view(np.uint8)

    # Robot frame -> grid frame: p_g = R(-oyaw) (p_parent - o), p_parent = R(th) p_r + (x, y).
    c_o, s_o = np.cos(oyaw), np.sin(oyaw)
    rx, ry = x - ox, y - oy
    # Rotation robot -> grid is R(th - oyaw); translation is R(-oyaw)(robot - origin).
    c, s = np.cos(th - oyaw), np.sin(th - oyaw)
    tx, ty = c_o * rx + s_o * ry, -s_o * rx + c_o * ry

    # Gather: sample the source at each window cell centre.
    centres = window_cell_centres(spec)
    gx = c * centres[..., 0] - s * centres[..., 1] + tx
    gy = s * centres[..., 0] + c * centres[..., 1] + ty
    col = np.floor(gx / res).astype(np.int64)
    row = np.floor(gy / res).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    window = np.full((n, n), unknown_cost, dtype=np.float32)
    window[inside] = table[src[row[inside], col[inside]]]

    # Scatter: every source cell centre inside the window raises its window cell to its cost.
    # Only the source cells in the window's bounding box are visited.
    half = n * wres / 2.0
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    cgx = c * corners[:, 0] - s * corners[:, 1] + tx
    cgy = s * corners[:, 0] + c * corners[:, 1] + ty
    c0 = max(int(np.floor(cgx.min() / res)), 0)
    c1 = min(int(np.ceil(cgx.max() / res)) + 1, w)
    r0 = max(int(np.floor(cgy.min() / res)), 0)
    r1 = min(int(np.ceil(cgy.max() / res)) + 1, h)
    if c0 < c1 and r0 < r1:
        costs = table[src[r0:r1, c0:c1]]
        # Cells whose cost cannot raise the gathered window are skipped (most are free).
        rr, cc = np.nonzero(costs > 0.0)
        if rr.size:
            vals = costs[rr, cc]
            px = (cc + c0 + 0.5) * res - tx
            py = (rr + r0 + 0.5) * res - ty
            # grid -> robot: R(-(th - oyaw))
            qx = c * px + s * py
            qy = -s * px + c * py
            wc = np.floor(qx / wres + n / 2.0).astype(np.int64)
            wr = np.floor(qy / wres + n / 2.0).astype(np.int64)
            ok = (wc >= 0) & (wc < n) & (wr >= 0) & (wr < n)
            np.maximum.at(window, (wr[ok], wc[ok]), vals[ok])
    return window


def robot_state(pose: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> np.ndarray:
    """[x, y, θ, v_x, v_y, ω, a_x, a_y, α] float32; pose in odom (θ wrapped to [-π, π)), rates in the
    robot frame."""
    rates = np.concatenate([np.asarray(velocity, float).ravel(), np.asarray(acceleration, float).ravel()])
    if rates.shape != (6,) or not np.isfinite(rates).all() or np.abs(rates).max() > 1e3:
        raise ValueError(f"velocity/acceleration must be 3+3 finite values below 1e3, got {rates.tolist()}")
    pose = check_pose(np.asarray(pose, dtype=np.float64).reshape(-1), "robot pose")
    return np.concatenate([pose[:2], wrap_angle(pose[2:3]), rates]).astype(np.float32)


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Wrap angles to [-π, π)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def goal_relative(robot_pose: np.ndarray, goal_pose: np.ndarray, clip_distance: float) -> np.ndarray:
    """Goal in the robot frame [dx, dy, dθ] float32; (dx, dy) scaled to ``clip_distance`` if farther.

    Works on [..., 3] arrays so training can build a whole batch at once.
    """
    robot_pose = check_pose(robot_pose, "robot pose")
    goal_pose = check_pose(goal_pose, "goal pose")
    if not 0 < clip_distance <= MAX_COORDINATE:
        raise ValueError(f"clip_distance must be in (0, {MAX_COORDINATE:g}], got {clip_distance}")
    ddx = goal_pose[..., 0] - robot_pose[..., 0]
    ddy = goal_pose[..., 1] - robot_pose[..., 1]
    c, s = np.cos(robot_pose[..., 2]), np.sin(robot_pose[..., 2])
    dx = c * ddx + s * ddy
    dy = -s * ddx + c * ddy
    dist = np.hypot(dx, dy)
    scale = np.where(dist > clip_distance, clip_distance / np.maximum(dist, 1e-12), 1.0)
    dth = wrap_angle(goal_pose[..., 2] - robot_pose[..., 2])
    return np.stack([dx * scale, dy * scale, dth], axis=-1).astype(np.float32)


def costmap_metadata(inflation_decay: float, resolution: float) -> np.ndarray:
    """[inflation_decay, resolution] float32, in that order."""
    if not (0 <= inflation_decay <= 1e3 and 1e-6 <= resolution <= 1e3):
        raise ValueError(f"bad costmap metadata: inflation_decay={inflation_decay}, resolution={resolution}")
    return np.array([inflation_decay, resolution], dtype=np.float32)


def batch(costmap: np.ndarray, state: np.ndarray, goal: np.ndarray, meta: np.ndarray) -> dict[str, np.ndarray]:
    """The feed dict for one sample (batch of 1) under the contract's input names."""
    return {
        COSTMAP_INPUT: costmap[None, None].astype(np.float32, copy=False),
        STATE_INPUT: state[None].astype(np.float32, copy=False),
        GOAL_INPUT: goal[None].astype(np.float32, copy=False),
        METADATA_INPUT: meta[None].astype(np.float32, copy=False),
    }
