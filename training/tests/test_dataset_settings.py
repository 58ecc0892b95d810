"""Datasets over every world family with randomised user settings, and DAgger's focus on the families the
network fails on (real episodes with a small GA; real shards on disk)."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from plan_ga_training.config import ConfigError, load_config
from plan_ga_training.dataset import (
    check_compatible,
    draw_families,
    family_success,
    focus_weights,
    generate,
    write_manifest,
)
from plan_ga_training.randomize import draw, setting

REPO = Path(__file__).resolve().parents[2]
ROBUST = REPO / "training" / "configs" / "robust.yaml"
SMALL = ["ga.population=12", "ga.generations=2", "episode.max_time=3", "dataset.workers=1"]


def test_robust_config_loads_and_unknown_families_are_refused():
    cfg = load_config(ROBUST)
    assert cfg.dataset.randomize and cfg.dagger.focus_floor > 0 and "long_route" in cfg.world.kinds
    assert set(cfg.evaluate.kinds) == {"clutter", "walls", "corridor", "dead_end", "mixed"}
    with pytest.raises(ConfigError, match="world families"):
        load_config(ROBUST, ["world.kinds=[clutter, lava]"])


def test_setting_applies_the_draw_and_gives_path_families_their_path_and_time():
    cfg = load_config(ROBUST)
    for seed in range(4):
        st = setting(cfg, seed, "long_route", randomize=True)
        d = draw(seed)
        assert st.cfg.world.inflation_radius == d.world["inflation_radius"]
        assert st.cfg.episode.planning_rate == d.episode["planning_rate"]
        assert st.planner["inflation_decay"] == pytest.approx(st.scenario.world.inflation_decay)
        assert st.goal.ndim == 2 and st.scenario.route_length >= 8.0
        assert st.cfg.episode.max_time >= cfg.episode.max_time  # long routes get their time
    plain = setting(cfg, 5, "door")
    assert plain.planner == {} and plain.cfg.world == cfg.world and plain.goal.shape == (3,)


def test_randomised_family_shards_record_their_setting_and_the_node_is_told_the_decay(tmp_path):
    cfg = load_config(ROBUST, SMALL + [f"dataset.out_dir={tmp_path}"])
    families = {0: "dense", 1: "long_route", 2: "door"}
    stats = generate(cfg, tmp_path, list(families), "ga", families=families)
    assert sorted(s["family"] for s in stats) == sorted(families.values())
    manifest = write_manifest(cfg, tmp_path)
    assert {e["seed"]: e["family"] for e in manifest["shards"]} == families
    for seed, family in families.items():
        with np.load(tmp_path / "shards" / f"ga_{seed:06d}.npz") as z:
            described = json.loads(str(z["setting"]))
            meta, samples = z["meta"], len(z["label"])
        d = draw(seed)
        assert described["family"] == family and described["planning_rate"] == d.episode["planning_rate"]
        assert described["inflation_radius"] == d.world["inflation_radius"]
        # the model's costmap metadata carries this costmap's cost scaling factor, as a user configures it
        assert np.allclose(meta[:, 0], d.planner["inflation_decay"], rtol=1e-6)
        # planned at the drawn rate: about rate × time ticks (the session plans on most of them)
        assert samples <= d.episode["planning_rate"] * described["max_time"] + 2
    assert family_success(tmp_path, [f"ga_{s:06d}.npz" for s in families]).keys() == set(families.values())
    # switching randomisation off would mix two kinds of episodes in one folder: refused
    with pytest.raises(ConfigError, match="dataset.randomize"):
        check_compatible(replace(cfg, dataset=replace(cfg.dataset, randomize=False)), tmp_path)


def test_focus_weights_follow_the_gap_to_the_expert_and_families_are_drawn_by_them():
    expert = {"door": (10, 10), "dense": (10, 9), "clutter": (10, 10)}
    learner = {"door": (10, 2), "dense": (10, 9), "clutter": (10, 10)}
    w = focus_weights(expert, learner, ("door", "dense", "clutter", "rooms"), floor=0.25)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["rooms"] > w["door"] > w["dense"] == w["clutter"]  # never seen: the most weight
    assert w["door"] == pytest.approx((0.25 + 0.8) / (0.25 + 0.8 + 0.25 + 0.25 + 1.25))
    seeds = list(range(30_000, 32_000))
    drawn = draw_families(seeds, w)
    assert drawn == draw_families(seeds, w)  # the same on every resume
    share = {k: np.mean([v == k for v in drawn.values()]) for k in w}
    for k in w:
        assert share[k] == pytest.approx(w[k], abs=0.04)
