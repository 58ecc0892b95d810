"""Grid paths on an inflated costmap (plan_ga_ros.sim.routes), as a global planner would hand them on."""

import numpy as np
import pytest

from plan_ga_ros.sim import routes
from plan_ga_ros.sim.world import WorldConfig, make_episode, make_world
from plan_ga_ros.tensors import Grid

RES = 0.05


def grid(costs: np.ndarray, origin=(0.0, 0.0, 0.0)) -> Grid:
    return Grid(np.asarray(costs, np.int8), RES, origin)


def cells_under(g: Grid, poses: np.ndarray) -> np.ndarray:
    c = np.floor((poses[:, 0] - g.origin[0]) / g.resolution).astype(int)
    r = np.floor((poses[:, 1] - g.origin[1]) / g.resolution).astype(int)
    return g.data[r, c]


def test_open_grid_gives_a_straight_evenly_spaced_path_with_headings_and_the_goal_yaw():
    g = grid(np.zeros((60, 100)), origin=(-2.0, 1.0, 0.0))
    start, goal = np.array([-1.5, 2.0, 1.0]), np.array([2.5, 2.0, 0.7])
    p = routes.grid_path(g, start, goal, spacing=0.05)
    assert p.shape[1] == 3
    np.testing.assert_allclose(p[0, :2], start[:2])
    np.testing.assert_allclose(p[-1], goal)
    step = np.hypot(*np.diff(p[:, :2], axis=0).T)
    assert step.max() <= 0.05 + 1e-9 and step.min() > 0.04
    assert abs(routes.path_length(p) - 4.0) < 0.02
    np.testing.assert_allclose(p[1:-1, 1], 2.0, atol=RES / 2 + 1e-9)  # cell centres, at most half a cell off
    np.testing.assert_allclose(p[:-1, 2], 0.0, atol=0.2)  # heading along +x


def test_path_goes_through_the_door_and_never_onto_impassable_cells():
    occ = np.zeros((100, 100), bool)
    occ[:, 48:52] = True
    occ[70:82, 48:52] = False  # a 0.6 m door near the top
    world = make_world(occ, RES, 3.0, WorldConfig(inflation_radius=0.55))
    start, goal = np.array([1.0, 1.0, 0.0]), np.array([4.0, 1.0, 0.0])
    p = routes.grid_path(world.grid, start, goal)
    assert p is not None
    assert (cells_under(world.grid, p) < routes.INSCRIBED).all()
    crossing = p[np.argmin(np.abs(p[:, 0] - 2.5))]
    assert 3.5 < crossing[1] < 4.1  # through the door
    assert min(world.clearance(q[:2]) for q in p) > 0.0
    # Direction of the last leg: heading is along the path.
    d = p[-1, :2] - p[-5, :2]
    assert abs(np.arctan2(d[1], d[0]) - p[-6, 2]) < 0.5


def test_no_path_when_the_goal_is_walled_off_or_on_an_obstacle():
    costs = np.zeros((80, 80), np.int8)
    costs[30:50, 30] = costs[30:50, 49] = costs[30, 30:50] = costs[49, 30:50] = 100
    g = grid(costs)
    assert routes.grid_path(g, np.array([0.5, 0.5, 0]), np.array([2.0, 2.0, 0])) is None
    assert routes.grid_path(g, np.array([0.5, 0.5, 0]), np.array([1.52, 2.0, 0])) is None  # on the wall
    assert routes.grid_path(g, np.array([0.5, 0.5, 0]), np.array([20.0, 2.0, 0])) is None  # off the grid


def test_prefers_low_cost_cells_like_a_nav2_planner_and_ignores_cost_without_weight():
    costs = np.zeros((80, 120), np.int8)
    costs[:, 55:65] = 100
    costs[30:50, 55:65] = 90  # a short, expensive but passable way straight across
    costs[72:78, 55:65] = 0  # a cheap way round at the top
    g = grid(costs)
    start, goal = np.array([1.0, 2.0, 0.0]), np.array([5.0, 2.0, 0.0])
    cheap = routes.grid_path(g, start, goal, cost_weight=3.0)
    short = routes.grid_path(g, start, goal, cost_weight=0.0)
    assert cells_under(g, cheap).max() < 90 and cheap[:, 1].max() > 3.5
    assert cells_under(g, short).max() == 90 and routes.path_length(short) < routes.path_length(cheap)


def test_no_squeezing_diagonally_between_corners_and_unknown_space_by_choice():
    costs = np.zeros((40, 40), np.int8)
    costs[:20, 19] = costs[20:, 20] = 100  # a wall with a diagonal step: only a corner-to-corner gap
    g = grid(costs)
    assert routes.cell_path(costs, (5, 5), (5, 35)) is None
    unknown = np.zeros((40, 40), np.int8)
    unknown[:, 18:22] = -1
    assert routes.grid_path(grid(unknown), np.array([0.3, 1.0, 0]), np.array([1.7, 1.0, 0])) is not None
    assert routes.grid_path(grid(unknown), np.array([0.3, 1.0, 0]), np.array([1.7, 1.0, 0]),
                            allow_unknown=False) is None
    assert routes.grid_path(g, np.array([0.3, 0.3, 0]), np.array([1.8, 0.3, 0])) is None


def test_a_start_inside_inflation_is_left_and_rotated_grids_are_refused():
    costs = np.zeros((40, 40), np.int8)
    costs[18:22, 18:22] = 99
    p = routes.grid_path(grid(costs), np.array([1.0, 1.0, 0]), np.array([1.8, 1.8, 0]))
    assert p is not None and (cells_under(grid(costs), p[3:]) < 99).all()
    with pytest.raises(ValueError, match="axis-aligned"):
        routes.grid_path(grid(costs, origin=(0, 0, 0.3)), np.zeros(3), np.ones(3))


@pytest.mark.parametrize("seed", [100000, 100003, 100007])
def test_paths_in_generated_worlds_keep_the_robot_clear(seed):
    world, start, goal = make_episode(seed)
    p = routes.grid_path(world.grid, start, goal)
    assert p is not None
    assert min(world.clearance(q[:2]) for q in p) > 0.0
    assert routes.path_length(p) >= np.hypot(*(goal - start)[:2]) - 1e-6


def test_resample_keeps_ends_and_spacing():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    out = routes.resample(xy, 0.1)
    np.testing.assert_allclose(out[[0, -1]], [[0, 0], [1, 1]])
    step = np.hypot(*np.diff(out, axis=0).T)
    assert step.max() <= 0.1 + 1e-9 and len(out) == 21
