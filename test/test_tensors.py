"""Tensor builders: window geometry for any pose and source grid, goal clipping, state, metadata."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import compose
from plan_ga_ros.tensors import Grid, costmap_metadata, costmap_window, goal_relative, robot_state, wrap_angle

SPEC = ModelSpec()
N, WRES = SPEC.window_cells, SPEC.resolution

angles = st.floats(-np.pi, np.pi)
poses = st.tuples(st.floats(-20, 20), st.floats(-20, 20), angles)


def to_grid_frame(grid_origin, world_xy):
    ox, oy, oyaw = grid_origin
    dx, dy = world_xy[..., 0] - ox, world_xy[..., 1] - oy
    return np.stack([np.cos(oyaw) * dx + np.sin(oyaw) * dy, -np.sin(oyaw) * dx + np.cos(oyaw) * dy], -1)


def to_robot_frame(pose, world_xy):
    return to_grid_frame(pose, world_xy)


def window_index(robot_xy):
    return np.floor(robot_xy / WRES + N / 2).astype(int)  # (col, row)


@settings(max_examples=150, deadline=None)
@given(robot=poses, res=st.floats(0.02, 0.3), oyaw=angles,
       local=st.tuples(st.floats(-2.3, 2.3), st.floats(-2.3, 2.3)),
       cells=st.tuples(st.integers(10, 40), st.integers(10, 40)), frac=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_obstacle_lands_in_the_right_cell(robot, res, oyaw, local, cells, frac):
    """A lethal source cell lands in the window cell containing its centre, for any geometry."""
    frac_cell = np.abs(np.asarray(local) / WRES - np.round(np.asarray(local) / WRES))
    assume(np.all(frac_cell > 1e-6))  # a point exactly on a window cell edge belongs to either cell
    world = compose(np.array(robot), np.array([local[0], local[1], 0.0]))[:2]
    h, w = cells
    r, c = int(frac[0] * (h - 1)), int(frac[1] * (w - 1))
    # Place the grid so cell (r, c) has its centre exactly at the obstacle's world position.
    centre_g = np.array([(c + 0.5) * res, (r + 0.5) * res])
    origin_xy = world - np.array([[np.cos(oyaw), -np.sin(oyaw)], [np.sin(oyaw), np.cos(oyaw)]]) @ centre_g
    data = np.zeros((h, w), np.int8)
    data[r, c] = 100
    grid = Grid(data, res, (origin_xy[0], origin_xy[1], oyaw))
    window = costmap_window(grid, np.array(robot), SPEC)
    rel = to_robot_frame(np.array(robot), world[None])[0]
    col, row = window_index(rel)
    assert window[row, col] == pytest.approx(1.0)
    # Every lethal window cell overlaps the obstacle cell: nothing lands elsewhere.
    rr, cc = np.nonzero(window >= 1.0)
    centres = np.stack([(cc - (N - 1) / 2) * WRES, (rr - (N - 1) / 2) * WRES], -1)
    reach = (res + WRES) * np.sqrt(2) / 2 + 1e-6
    assert np.all(np.hypot(*(centres - rel).T) <= reach)


@settings(max_examples=60, deadline=None)
@given(robot=poses, res=st.floats(0.01, 0.099), oyaw=angles, seed=st.integers(0, 2**31 - 1))
def test_finer_source_never_loses_an_obstacle(robot, res, oyaw, seed):
    """Every obstacle cell of a finer grid whose centre is in the window shows up, however thin."""
    rng = np.random.default_rng(seed)
    size = int(np.ceil(6.0 / res))
    data = np.zeros((size, size), np.int8)
    idx = rng.integers(0, size, size=(40, 2))
    data[idx[:, 0], idx[:, 1]] = 100
    robot = np.array(robot)
    # Centre the grid on the robot (rotated by oyaw) so the whole window is covered.
    half = size * res / 2
    origin_xy = robot[:2] - np.array([[np.cos(oyaw), -np.sin(oyaw)], [np.sin(oyaw), np.cos(oyaw)]]) @ [half, half]
    grid = Grid(data, res, (origin_xy[0], origin_xy[1], oyaw))
    window = costmap_window(grid, robot, SPEC)
    gc = np.stack([(idx[:, 1] + 0.5) * res, (idx[:, 0] + 0.5) * res], -1)
    world = origin_xy + gc @ np.array([[np.cos(oyaw), np.sin(oyaw)], [-np.sin(oyaw), np.cos(oyaw)]])
    rel = to_robot_frame(robot, world)
    col, row = window_index(rel).T
    on_edge = np.any(np.abs(rel / WRES - np.round(rel / WRES)) < 1e-6, axis=1)  # belongs to either cell
    inside = (col >= 0) & (col < N) & (row >= 0) & (row < N) & ~on_edge
    assert np.all(window[row[inside], col[inside]] == 1.0)


def test_aligned_grid_is_copied_cell_for_cell():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 101, size=(80, 90)).astype(np.int8)
    grid = Grid(data, WRES, (-3.0, -2.0, 0.0))
    # Robot exactly on a cell corner so window cells coincide with source cells.
    robot = np.array([-3.0 + 40 * WRES, -2.0 + 30 * WRES, 0.0])
    window = costmap_window(grid, robot, SPEC)
    np.testing.assert_allclose(window, data[5:55, 15:65] / 100.0, atol=1e-6)


def test_robot_heading_rotates_the_window():
    """An obstacle 1.05 m ahead of the robot is at window column > centre, row = centre, whatever θ."""
    for th in np.linspace(-np.pi, np.pi, 13):
        robot = np.array([1.0, 2.0, th])
        ahead = compose(robot, np.array([1.05, 0.0, 0.0]))
        data = np.zeros((200, 200), np.int8)
        res = 0.05
        c, r = int((ahead[0] + 5) / res), int((ahead[1] + 5) / res)
        data[r, c] = 100
        window = costmap_window(Grid(data, res, (-5, -5, 0)), robot, SPEC)
        rr, cc = np.nonzero(window == 1.0)
        assert set(rr) <= {24, 25} and set(cc) == {35}


def test_unknown_and_outside_cells_take_unknown_cost():
    data = np.full((10, 10), -1, np.int8)
    data[0, 0] = 50
    grid = Grid(data, 0.1, (0, 0, 0))
    window = costmap_window(grid, np.array([0.5, 0.5, 0.0]), SPEC, unknown_cost=0.7)
    assert np.count_nonzero(np.isclose(window, 0.5)) == 1  # the known cell keeps its cost
    assert np.count_nonzero(np.isclose(window, 0.7)) == 50 * 50 - 1
    window = costmap_window(grid, np.array([0.5, 0.5, 0.0]), SPEC, unknown_cost=0.0)
    assert window.max() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        costmap_window(grid, np.array([0.5, 0.5, 0.0]), SPEC, unknown_cost=2.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(flat=np.zeros(10), width=4, height=4, resolution=0.1), "10 cells"),
    (dict(flat=np.zeros(0), width=0, height=0, resolution=0.1), "empty"),
    (dict(flat=np.zeros(16), width=4, height=4, resolution=0.0), "resolution"),
    (dict(flat=np.zeros(16), width=4, height=4, resolution=-1.0), "resolution"),
    (dict(flat=np.zeros(16), width=4, height=4, resolution=float("nan")), "resolution"),
    (dict(flat=np.zeros(16), width=4, height=4, resolution=0.1, max_cells=15), "max_grid_cells"),
])
def test_bad_grids_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid.from_flat(**kwargs)


@settings(max_examples=200, deadline=None)
@given(robot=poses, goal=poses, clip=st.floats(0.1, 5.0))
def test_goal_clip_keeps_direction(robot, goal, clip):
    rel = goal_relative(np.array(robot), np.array(goal), clip)
    full = goal_relative(np.array(robot), np.array(goal), 1e6)
    d_full = np.hypot(full[0], full[1])
    assert np.hypot(rel[0], rel[1]) <= clip * (1 + 1e-5) + 1e-6
    if d_full > 1e-3:
        cos = (rel[0] * full[0] + rel[1] * full[1]) / (np.hypot(rel[0], rel[1]) * d_full)
        assert cos == pytest.approx(1.0, abs=1e-4)
    if d_full <= clip:
        np.testing.assert_allclose(rel[:2], full[:2], atol=1e-4)
    assert -np.pi - 1e-6 <= rel[2] <= np.pi + 1e-6


def test_goal_relative_is_in_the_robot_frame():
    rel = goal_relative(np.array([1.0, 1.0, np.pi / 2]), np.array([1.0, 2.0, np.pi]), 2.0)
    np.testing.assert_allclose(rel, [1.0, 0.0, np.pi / 2], atol=1e-6)
    batch = goal_relative(np.zeros((5, 3)), np.tile([3.0, 4.0, 0.0], (5, 1)), 2.0)
    np.testing.assert_allclose(batch[:, :2], np.tile([1.2, 1.6], (5, 1)), atol=1e-6)


def test_state_and_metadata():
    s = robot_state([1, 2, 3], [0.1, 0, 0.2], [0.5, 0, 1.0])
    assert s.dtype == np.float32 and s.shape == (9,)
    with pytest.raises(ValueError):
        robot_state([1, 2, np.nan], [0, 0, 0], [0, 0, 0])
    np.testing.assert_allclose(costmap_metadata(3.0, 0.1), [3.0, 0.1], rtol=1e-6)
    with pytest.raises(ValueError):
        costmap_metadata(3.0, 0.0)
    assert wrap_angle(3 * np.pi) == pytest.approx(-np.pi)


def test_obstacle_on_the_robot_position_regression():
    """Found by hypothesis: an odd-sized grid centred on the robot puts a cell centre on a window corner."""
    res, size = 0.07630490224961788, 79
    data = np.zeros((size, size), np.int8)
    data[39, 39] = 100
    half = size * res / 2
    window = costmap_window(Grid(data, res, (-half, 8.0 - half, 0.0)), np.array([0.0, 8.0, 0.0]), SPEC)
    assert window[24:26, 24:26].max() == 1.0  # one of the four cells around the robot
