"""Global paths on an inflated costmap, as a Nav2 global planner (NavFn, Smac 2D) would hand them on.

Dijkstra over the 8-connected grid of cells whose cost lets the robot centre pass (below
inscribed), with each step's length weighted up by the cells' cost so that the path keeps away
from obstacles where it can; the cell chain is then smoothed (never onto an impassable cell) and
resampled to an even spacing, each pose heading along the path.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from ..tensors import Grid

INSCRIBED = 99  # OccupancyGrid scale: 99 = the footprint touches an obstacle, 100 = obstacle

_STEPS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


def passable_cells(costs: np.ndarray, allow_unknown: bool = True) -> np.ndarray:
    """Cells the robot centre may occupy: cost below inscribed (unknown −1 only if ``allow_unknown``)."""
    costs = np.asarray(costs)
    return (costs >= 0) & (costs < INSCRIBED) | ((costs < 0) & allow_unknown)


def cell_path(costs: np.ndarray, start: tuple[int, int], goal: tuple[int, int], cost_weight: float = 3.0,
              allow_unknown: bool = True, unknown_cost: int = 50) -> np.ndarray | None:
    """Cells [N, 2] (row, col) of the cheapest 8-connected chain from ``start`` to ``goal``, or None.

    A step costs its length × (1 + cost_weight · mean cell cost / 100), like NavFn's neutral cost
    plus cost factor. Diagonal steps need both side cells passable (no squeezing between corners).
    A robot may start inside inflation: the start cell and the inscribed (99) cells joined to it are
    usable, to get out; the goal cell must be passable.
    """
    costs = np.asarray(costs)
    h, w = costs.shape
    if not (0 <= start[0] < h and 0 <= start[1] < w and 0 <= goal[0] < h and 0 <= goal[1] < w):
        return None
    ok = passable_cells(costs, allow_unknown)
    if not ok[goal]:
        return None
    if not ok[start]:
        ok |= _escape(costs, start)
    weight = np.where(costs < 0, unknown_cost, np.clip(costs, 0, 100)).astype(np.float64)
    ids = np.arange(h * w).reshape(h, w)
    src, dst, length = [], [], []
    padded = np.pad(ok, 1)  # out-of-grid neighbours are not passable
    for dr, dc in _STEPS:  # eight whole-grid shifts, not a loop over cells
        nb = padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        edge = ok & nb
        if dr and dc:
            edge &= padded[1 + dr:1 + dr + h, 1:1 + w] & padded[1:1 + h, 1 + dc:1 + dc + w]
        r, c = np.nonzero(edge)
        src.append(ids[r, c])
        dst.append(ids[r + dr, c + dc])
        step = np.hypot(dr, dc)
        length.append(step * (1.0 + cost_weight * (weight[r, c] + weight[r + dr, c + dc]) / 200.0))
    graph = sparse.csr_matrix((np.concatenate(length), (np.concatenate(src), np.concatenate(dst))),
                              shape=(h * w, h * w))
    s, g = int(ids[start]), int(ids[goal])
    dist, pred = csgraph.dijkstra(graph, directed=True, indices=s, return_predecessors=True)
    if not np.isfinite(dist[g]):
        return None
    chain = [g]
    while chain[-1] != s:  # walks the path's cells only
        chain.append(int(pred[chain[-1]]))
    chain = np.array(chain[::-1])
    return np.stack([chain // w, chain % w], axis=1)


def _escape(costs: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """The start cell and the inscribed cells 8-connected to it."""
    labels, _ = ndimage.label(costs == INSCRIBED, structure=np.ones((3, 3), bool))
    out = labels == labels[start] if labels[start] else np.zeros(costs.shape, bool)
    out[start] = True
    return out


def resample(xy: np.ndarray, spacing: float) -> np.ndarray:
    """Points [M, 2] evenly spaced by arc length along the polyline ``xy`` [N, 2] (both ends kept)."""
    xy = np.asarray(xy, dtype=np.float64)
    seg = np.hypot(*np.diff(xy, axis=0).T)
    keep = np.concatenate([[True], seg > 1e-9])
    xy, arc = xy[keep], np.concatenate([[0.0], np.cumsum(seg[seg > 1e-9])])
    if len(xy) < 2:
        return xy[:1].copy()
    n = max(int(np.ceil(arc[-1] / spacing)), 1)
    s = np.linspace(0.0, arc[-1], n + 1)
    return np.stack([np.interp(s, arc, xy[:, 0]), np.interp(s, arc, xy[:, 1])], axis=1)


def _smooth(xy: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` points with both ends held in place."""
    if window < 3 or len(xy) < 3:
        return xy
    half = window // 2
    padded = np.concatenate([np.repeat(xy[:1], half, axis=0), xy, np.repeat(xy[-1:], half, axis=0)])
    out = ndimage.uniform_filter1d(padded, size=2 * half + 1, axis=0, mode="nearest")[half:half + len(xy)]
    out[0], out[-1] = xy[0], xy[-1]
    return out


def headings(xy: np.ndarray, final_yaw: float | None = None) -> np.ndarray:
    """Poses [N, 3]: each point heading along the path (the last one ``final_yaw`` when given)."""
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 2:
        return np.array([[*xy[0], 0.0 if final_yaw is None else final_yaw]])
    d = np.gradient(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    if final_yaw is not None:
        yaw[-1] = final_yaw
    return np.column_stack([xy, yaw])


def grid_path(grid: Grid, start: np.ndarray, goal: np.ndarray, spacing: float = 0.05, smoothing: float = 0.4,
              cost_weight: float = 3.0, allow_unknown: bool = True) -> np.ndarray | None:
    """A global path [N, 3] (x, y, yaw in the grid's parent frame) from ``start`` to ``goal`` on ``grid``
    (OccupancyGrid 0..100, −1 unknown, axis-aligned origin), or None when no passable route exists.

    The path starts at ``start``'s xy and ends at ``goal``'s (with the goal's yaw if it has one),
    poses about ``spacing`` m apart; corners are rounded by a moving average over ``smoothing`` m,
    reduced wherever it would cut onto an impassable cell.
    """
    if abs(grid.origin[2]) > 1e-9:
        raise ValueError("grid_path needs an axis-aligned grid (origin yaw 0)")
    start, goal = np.asarray(start, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    res, (ox, oy) = grid.resolution, grid.origin[:2]
    h, w = grid.data.shape

    def cell(p: np.ndarray) -> tuple[int, int]:
        return int(np.floor((p[1] - oy) / res)), int(np.floor((p[0] - ox) / res))

    cells = cell_path(grid.data, cell(start), cell(goal), cost_weight, allow_unknown)
    if cells is None:
        return None
    xy = np.column_stack([ox + (cells[:, 1] + 0.5) * res, oy + (cells[:, 0] + 0.5) * res])
    xy[0], xy[-1] = start[:2], goal[:2]
    fine = resample(xy, min(spacing, res) / 2.0)
    ok = passable_cells(grid.data, allow_unknown)
    if not ok[cell(start)]:
        ok |= _escape(grid.data, cell(start))
    window = int(round(smoothing / (min(spacing, res) / 2.0))) | 1
    while True:  # halve the smoothing until the rounded path stays on passable cells
        smooth = _smooth(fine, window)
        r = np.clip(np.floor((smooth[:, 1] - oy) / res).astype(int), 0, h - 1)
        c = np.clip(np.floor((smooth[:, 0] - ox) / res).astype(int), 0, w - 1)
        if window < 3 or ok[r, c].all():
            break
        window = (window // 2) | 1 if window > 3 else 1
    return headings(resample(smooth, spacing), float(goal[2]) if goal.shape[0] > 2 else None)


def path_length(poses: np.ndarray) -> float:
    """Arc length (m) of a path [N, ≥2]."""
    poses = np.asarray(poses, dtype=np.float64)
    return float(np.hypot(*np.diff(poses[:, :2], axis=0).T).sum()) if len(poses) > 1 else 0.0
