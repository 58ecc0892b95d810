"""Global path following: pruning passed poses, the carrot, and Nav2's simple progress checker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tensors import check_pose

MAX_PATH_POSES = 100_000


def check_path(poses: np.ndarray) -> np.ndarray:
    """A finite [N, 3] path (N ≥ 1); raises ValueError with the reason otherwise."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 or len(poses) == 0:
        raise ValueError(f"path must be a non-empty list of poses, got shape {poses.shape}")
    if len(poses) > MAX_PATH_POSES:
        raise ValueError(f"path has {len(poses)} poses (at most {MAX_PATH_POSES})")
    return check_pose(poses, "path pose")


def prune(poses: np.ndarray, start: int, xy: np.ndarray, search_distance: float) -> int:
    """Index of the path pose closest to ``xy`` among those from ``start`` up to ``search_distance``
    of arc length ahead (like Nav2's RPP): poses behind it are passed and never come back."""
    seg = np.hypot(*np.diff(poses[start:, :2], axis=0).T) if len(poses) - start > 1 else np.zeros(0)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    reach = np.searchsorted(arc, search_distance, side="right")
    candidates = poses[start:start + max(reach, 1), :2]
    d = np.hypot(*(candidates - xy).T)
    return start + int(np.argmin(d))


def carrot(poses: np.ndarray, index: int, distance: float) -> tuple[np.ndarray, bool]:
    """(pose [3], is_end): the point ``distance`` of arc length along the path from pose ``index``,
    heading along the path; the path's last pose (with its own heading) when the path ends sooner."""
    rest = poses[index:]
    if len(rest) < 2:
        return poses[-1].copy(), True
    seg = np.hypot(*np.diff(rest[:, :2], axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= distance:
        return poses[-1].copy(), True
    k = int(np.searchsorted(arc, distance, side="right")) - 1  # segment k..k+1 holds the carrot
    f = (distance - arc[k]) / max(seg[k], 1e-12)
    xy = rest[k, :2] + f * (rest[k + 1, :2] - rest[k, :2])
    d = rest[k + 1, :2] - rest[k, :2]
    heading = float(np.arctan2(d[1], d[0])) if np.hypot(*d) > 1e-9 else float(rest[k + 1, 2])
    return np.array([xy[0], xy[1], heading]), False


@dataclass
class ProgressChecker:
    """Nav2's SimpleProgressChecker: the robot must move ``radius`` from where it last did within
    ``allowance`` seconds."""

    radius: float
    allowance: float
    _baseline: np.ndarray | None = None
    _since: float = 0.0

    def reset(self) -> None:
        self._baseline = None

    def check(self, xy: np.ndarray, now: float) -> bool:
        """True while progress is made (or the allowance has not run out)."""
        if self._baseline is None or np.hypot(*(xy - self._baseline)) > self.radius or now < self._since:
            self._baseline, self._since = np.asarray(xy, dtype=np.float64).copy(), now
            return True
        return now - self._since <= self.allowance

    def stalled_for(self, now: float) -> float:
        return 0.0 if self._baseline is None else now - self._since


def tail_lengths(poses: np.ndarray) -> np.ndarray:
    """[N] arc length (m) from each path pose to the path's end."""
    seg = np.hypot(*np.diff(np.asarray(poses, dtype=np.float64)[:, :2], axis=0).T) if len(poses) > 1 else np.zeros(0)
    return np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])


@dataclass
class ApproachChecker:
    """Progress toward the goal: the distance still to go (along the path) must shrink by ``radius``
    within ``allowance`` seconds. Catches what a displacement check cannot: a robot that keeps moving
    (circling, going back and forth at a gap) without getting any closer. Within ``radius`` of the goal
    it always passes (the last turn to the goal's heading is the displacement check's business)."""

    radius: float
    allowance: float
    _anchor: float | None = None
    _since: float = 0.0

    def reset(self) -> None:
        self._anchor = None

    def shift(self, delta: float) -> None:
        """The distance to go changed by ``delta`` without the robot moving (a replanned path)."""
        if self._anchor is not None:
            self._anchor += float(delta)

    def check(self, to_go: float, now: float) -> bool:
        """True while the robot gets closer (or the allowance has not run out)."""
        if self._anchor is None or to_go < self._anchor - self.radius or now < self._since or to_go <= self.radius:
            self._anchor, self._since = float(to_go), now
            return True
        return now - self._since <= self.allowance
