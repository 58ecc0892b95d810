"""The GA's navigation function: distances through free window cells, and the GA it leads out of the
local minimum a straight-line time to go has at a wall between the robot and the goal."""

import numpy as np

from plan_ga_ros import navfield
from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.ga import GAConfig, GAPlanner
from plan_ga_ros.kinematics import rollout
from plan_ga_ros.safety import collisions

SPEC = ModelSpec()


def door_window() -> np.ndarray:
    """A wall 0.5 m ahead across the whole window, with a 0.6 m door at y = -0.3 … 0.3 m."""
    w = np.zeros((50, 50), np.float32)
    w[:, 30:32] = 1.0
    w[22:28, 30:32] = 0.0
    return w


def test_distance_leads_through_the_door_and_walled_off_cells_are_unreachable():
    w = door_window()
    f = navfield.field(w, np.array([1.5, 1.0]), 0.1)
    d, h = f.at(np.array([[0.0, 1.0], [0.0, 0.0], [1.5, 1.0], [0.55, 1.0], [9.0, 0.0]]))
    # from (0, 1): down to the door and back up, at least the two straight legs
    assert d[0] >= np.hypot(0.5, 0.7) + np.hypot(1.0, 0.7) - 0.1 and d[0] < 2.6
    assert h[0] < -1.0  # the first step heads down, toward the door, not at the wall
    assert abs(h[1]) < 0.1 and d[2] == 0.0  # straight through the door; at the goal
    assert d[3] == np.inf and np.isinf(d[4]) and np.isnan(h[4])  # inside the wall; outside the window
    closed = w.copy()
    closed[22:28, 30:32] = 1.0
    assert np.isinf(navfield.field(closed, np.array([1.5, 1.0]), 0.1).at(np.zeros((1, 2)))[0][0])


def test_the_ga_heads_for_the_door_where_the_straight_line_meets_the_wall():
    """Goal behind the wall, 1 m off the door's axis: the navigation GA starts toward the door."""
    w = door_window()
    goal = np.array([1.5, 1.2, 0.0])
    plans = {}
    for nav in (True, False):
        ga = GAPlanner(SPEC, SPEC.limits, 0.2, GAConfig(navigation=nav), seed=1)
        plan = ga.plan(w, np.zeros(3), goal, 2.0)
        for _ in range(3):  # a few warm-started ticks from the same spot
            plan = ga.plan(w, np.zeros(3), goal, 2.0)
        poses = rollout(np.zeros(3), plan, SPEC.dt)
        assert not collisions(w, poses[1:11], SPEC, 0.2).any()
        plans[nav] = poses
    # with navigation the plan ends nearer the door's centre line than the wall above it
    assert abs(plans[True][-1, 1]) < 0.35 and plans[True][-1, 0] > 0.2
    assert plans[True][-1, 1] < plans[False][-1, 1]


def test_no_way_through_a_diagonal_wall_and_a_maze_beyond_the_sweep_bound_reads_as_walled_off():
    w = np.zeros((50, 50), np.float32)
    w[np.arange(50), np.arange(50)] = 1.0  # one cell thick, corner to corner: no 8-connected way across
    assert np.isinf(navfield.field(w, np.array([1.5, -1.5]), 0.1).at(np.array([[-1.5, 1.5]]))[0][0])
    w[10, 10] = 0.0  # one gap in it: the way leads through it
    d = navfield.field(w, np.array([1.5, -1.5]), 0.1).at(np.array([[-1.5, 1.5]]))[0][0]
    assert np.isfinite(d) and d > np.hypot(3.0, 3.0)
    maze = np.zeros((50, 50), np.float32)
    for r in range(2, 50, 4):  # a serpentine far longer than 2 × (rows + columns) cells
        maze[r, 0:46] = 1.0 if (r // 4) % 2 == 0 else 0.0
        if (r // 4) % 2:
            maze[r, 4:50] = 1.0
    assert np.isinf(navfield.field(maze, np.array([2.4, 2.4]), 0.1).at(np.array([[-2.4, -2.4]]))[0][0])
