"""World families, hand-made scenes and the simulated local costmap (plan_ga_ros.sim.world, .scenes)."""

import dataclasses
import hashlib

import numpy as np
import pytest

from plan_ga_ros.sim import routes
from plan_ga_ros.sim.scenes import SCENES, make_scene
from plan_ga_ros.sim.world import (
    BASE_KINDS,
    FAMILIES,
    NEW_FAMILIES,
    PATH_FAMILIES,
    WorldConfig,
    local_costmap,
    make_episode,
    make_scenario,
)

# The original generator's worlds (the shipped model's training and evaluation seeds), fingerprinted
# when the families were added: existing kinds must keep giving exactly these worlds.
BASE_FINGERPRINT = "625c524b58910a516ef50eef63f962760c46a7e84ef082bf2c88da37441fb76d"


def test_the_original_generator_gives_the_same_worlds_as_before():
    h = hashlib.sha256()
    for s in (0, 1, 20000, 100000, 100001, 100002, 100003, 100199):
        w, a, b = make_episode(s)
        for part in (w.costs.tobytes(), np.round(a, 9).tobytes(), np.round(b, 9).tobytes(), w.kind.encode()):
            h.update(part)
    assert h.hexdigest() == BASE_FINGERPRINT
    sc = make_scenario(100000)
    assert sc.family in BASE_KINDS and sc.path is None and sc.route is None


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_each_family_gives_a_reachable_deterministic_episode(family):
    cfg = WorldConfig()
    for seed in (900000, 900001):
        sc = make_scenario(seed, cfg, family)
        again = make_scenario(seed, cfg, family)
        assert np.array_equal(sc.world.costs, again.world.costs) and np.array_equal(sc.start, again.start)
        assert sc.world.kind == family == sc.family
        for p in (sc.start, sc.goal):
            assert sc.world.clearance(p[:2]) > cfg.start_clearance
        assert sc.route is not None
        np.testing.assert_allclose(sc.route[0, :2], sc.start[:2])
        np.testing.assert_allclose(sc.route[-1], sc.goal)
        assert min(sc.world.clearance(q[:2]) for q in sc.route[::4]) > 0.0
        assert (sc.path is not None) == (family in PATH_FAMILIES)
        if family == "long_route":
            assert 8.0 <= sc.route_length <= 16.0  # 8-15 m on geometry, a little more on the cost-aware route
            assert sc.time_budget(40.0) > 40.0
        else:
            assert sc.time_budget(40.0) >= 40.0


def test_dense_fields_leave_gaps_wider_than_the_robot_and_doors_are_narrow():
    sc = make_scenario(900003, WorldConfig(), "dense")
    assert sc.world.obstacles.mean() > 0.04
    door = make_scenario(900004, WorldConfig(), "door")
    # The wall splits the world: on geometry, the only way is through a 0.5-1.0 m door.
    assert door.route_length > np.hypot(*(door.goal - door.start)[:2]) - 1e-6


def test_inflation_radius_and_unknown_patches_change_costs_only():
    base = make_scenario(900002, WorldConfig(), "blocker")
    wide = make_scenario(900002, WorldConfig(inflation_radius=1.0), "blocker")
    dark = make_scenario(900002, WorldConfig(unknown_fraction=0.2), "blocker")
    for other in (wide, dark):
        assert np.array_equal(base.world.obstacles, other.world.obstacles)
        assert np.array_equal(base.start, other.start) and np.array_equal(base.goal, other.goal)
    assert (wide.world.costs > 0).sum() > (base.world.costs > 0).sum()
    free = base.world.costs == 0
    unknown = dark.world.costs == -1
    assert 0.15 < unknown.sum() / free.sum() < 0.35
    assert not (unknown & ~free).any()  # only free floor is unobserved; obstacles and inflation stay
    legacy = make_episode(100000, dataclasses.replace(WorldConfig(), unknown_fraction=0.1))[0]
    assert np.array_equal(legacy.obstacles, make_episode(100000)[0].obstacles)


def test_families_are_chosen_by_name_or_drawn_from_kinds():
    with pytest.raises(ValueError, match="unknown world family"):
        make_scenario(1, WorldConfig(), "swamp")
    with pytest.raises(ValueError, match="unknown world kind"):
        make_scenario(1, WorldConfig(kinds=("clutter", "swamp")))
    drawn = {make_scenario(s, WorldConfig(kinds=("door", "u_trap"))).family for s in range(900000, 900006)}
    assert drawn <= {"door", "u_trap"} and len(drawn) == 2
    assert set(FAMILIES) == set(BASE_KINDS) | set(NEW_FAMILIES)


@pytest.mark.parametrize("name", list(SCENES))
def test_scenes_have_free_starts_and_goals_and_a_route(name):
    sc = make_scene(name, WorldConfig(inflation_radius=0.8))
    assert sc.world.clearance(sc.start[:2]) > 0.05 and sc.world.clearance(sc.goal[:2]) > 0.05
    assert sc.route is not None and sc.family == name


def test_box_ahead_scene_is_the_issue_13_box():
    sc = make_scene("box_ahead")
    ahead = sc.start[:2] + np.array([1.2 + 0.15, 0.0])  # the box's centre, 1.2 m to its near face
    assert sc.world.clearance(ahead) < -sc.world.robot_radius + 1e-9  # inside the box
    assert sc.world.clearance(sc.start[:2] + np.array([1.1, 0.0])) > -sc.world.robot_radius  # free in front
    assert sc.world.clearance(ahead + np.array([0.0, 0.45])) > -sc.world.robot_radius  # 0.6 m wide


def test_coarse_local_costmap_keeps_the_highest_cost_of_each_cell():
    world, start, _ = make_episode(100003)
    for pose in (start, start + np.array([0.73, -1.11, 0.0])):
        fine = local_costmap(world, pose, 8.0, 0.05)  # larger: it covers the coarse one
        coarse = local_costmap(world, pose, 6.0, 0.1)
        assert coarse.data.shape == (60, 60)
        # The coarse origin is on the fine grid: every coarse cell is the max of its 2×2 fine block.
        off = np.round((np.array(coarse.origin[:2]) - np.array(fine.origin[:2])) / 0.05).astype(int)
        block = fine.data[off[1]:off[1] + 120, off[0]:off[0] + 120]
        assert (off >= 0).all() and block.shape == (120, 120)
        np.testing.assert_array_equal(coarse.data, block.reshape(60, 2, 60, 2).max(axis=(1, 3)))
        assert (coarse.data == 100).sum() * 4 > (block == 100).sum()  # thin walls are not lost
        finer = local_costmap(world, pose, 6.0, 0.025)
        assert finer.data.max() == 100


def test_route_of_a_path_family_is_what_a_global_planner_would_give():
    sc = make_scenario(900005, WorldConfig(), "u_trap")
    again = routes.grid_path(sc.world.grid, sc.start, sc.goal)
    np.testing.assert_allclose(sc.path, again)
