"""The robustness suite end to end (a tiny matrix through the CLI with a small real ONNX model) and the
domain randomisation draw."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.sim.world import BASE_KINDS, FAMILIES, WorldConfig, make_scenario
from plan_ga_training.config import Config, ConfigError, ModelConfig
from plan_ga_training.episodes import EpisodeConfig
from plan_ga_training.randomize import Ranges, draw, randomized
from plan_ga_training.robustness import (
    GENERATOR,
    SCENE_PREFIX,
    SuiteConfig,
    check_seeds,
    criteria,
    fallback_criteria,
    fingerprint,
    jobs_for,
    scenario,
)

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("plan-ga-train"))
SMALL = ["--set", "ga.population=12", "--set", "ga.generations=2", "--set", "episode.max_time=4"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small real network (untrained PlannerNet, exported by the project's exporter)."""
    from plan_ga_training.export import export_planner
    from plan_ga_training.model import PlannerNet

    spec = ModelSpec()
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_planner(PlannerNet(spec, **{**dataclasses.asdict(ModelConfig()), "hidden": 16}).eval(), spec, path)
    return path


def suite_cli(model: Path, out: Path, *extra: str, ok: bool = True) -> subprocess.CompletedProcess:
    args = [CLI, "evaluate", "--suite", "robustness", "--model", str(model), "--workers", "1",
            "--families", "generator,door", "--inflation-radii", "0.55,0.8", "--rates", "20",
            "--episodes-per-cell", "1", "--scenes", "box_ahead", "--controllers", "onnx,ga,naive",
            "--json", str(out / "r.json"), "--png", str(out / "r.png"), "--md", str(out / "R.md"),
            "--card", str(out / "card.md"), *SMALL, *extra]
    res = subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=REPO)
    if ok:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def test_tiny_matrix_end_to_end_writes_json_table_picture_and_card_and_resumes(model, tmp_path):
    suite_cli(model, tmp_path)
    report = json.loads((tmp_path / "r.json").read_text())
    results = report["results"]
    # 2 families × 2 inflation radii × 1 rate + 1 scene × 2 radii, 1 episode each, 3 controllers.
    assert len(results) == (2 * 2 + 2) * 3 == report["episodes_done"] == report["episodes_planned"]
    assert {r["controller"] for r in results} == {"onnx", "ga", "naive"}
    assert {r["family"] for r in results} == {"generator", "door", SCENE_PREFIX + "box_ahead"}
    assert {r["inflation"] for r in results} == {0.55, 0.8} and {r["rate"] for r in results} == {20.0}
    assert all(r["outcome"] in ("success", "collision", "failed", "timeout") for r in results)
    assert all(r["seed"] == 900_000 for r in results)
    assert {r["planning_ticks"] > 0 for r in results} == {True}
    assert report["overall"]["ga"]["fallback_share"] == 1.0 and report["overall"]["onnx"]["fallback_share"] == 0.0
    assert len(report["cells"]) == 3 * 2 * 3
    assert set(report["criteria"]) >= {"cells_pass", "overall_pass", "collisions_pass", "worst_cell"}
    # The two inflation columns of a family drive the same world: same start, different costmap.
    door = [r for r in results if r["family"] == "door" and r["controller"] == "naive"]
    assert len({r["route_length"] > 0 for r in door}) == 1
    png = (tmp_path / "r.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    md = (tmp_path / "R.md").read_text()
    assert "| door | 0.8 m | 20 Hz | 1 |" in md and "| box_ahead | 0.55 m | 20 Hz |" in md
    assert "![success per cell](r.png)" in md and "Partial run" not in md
    assert "![worlds](r_worlds.png)" in md and (tmp_path / "r_worlds.png").stat().st_size > 5000
    card = (tmp_path / "card.md").read_text()
    assert card.startswith("## Robustness") and "| generator |" in card and "| **all** |" in card
    # Resume: nothing runs again, the results are the same.
    lines = (tmp_path / "r.json.jobs.jsonl").read_text().splitlines()
    assert len(lines) == 1 + len(results)
    again = suite_cli(model, tmp_path)
    assert (tmp_path / "r.json.jobs.jsonl").read_text().splitlines() == lines
    assert "0/18" not in again.stderr and "18/18" in again.stderr
    # A report from part of a run says so.
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "r.json.jobs.jsonl").write_text("\n".join(lines[:5]) + "\n")
    suite_cli(model, partial, "--report-only")
    assert "Partial run: 4 of 18 episodes" in (partial / "R.md").read_text()


def test_a_new_model_reruns_only_the_episodes_that_depend_on_it(model, tmp_path):
    """The GA's and naive episodes do not depend on the model: a retrained model keeps them (the suite's
    expensive part) and runs only its own."""
    from plan_ga_training.export import export_planner
    from plan_ga_training.model import PlannerNet

    other = tmp_path / "other.onnx"
    export_planner(PlannerNet(ModelSpec(), **{**dataclasses.asdict(ModelConfig()), "hidden": 8}).eval(), ModelSpec(),
                   other)
    small = ("--families", "door", "--inflation-radii", "0.55", "--scenes", "none")
    suite_cli(model, tmp_path, *small)
    first = {r["key"]: r for r in map(json.loads, (tmp_path / "r.json.jobs.jsonl").read_text().splitlines()[1:])}
    out = suite_cli(other, tmp_path, *small)
    assert "another model: kept 2 episodes of ga, naive" in out.stdout
    assert "2/3" in out.stderr  # only the onnx episode ran
    lines = (tmp_path / "r.json.jobs.jsonl").read_text().splitlines()
    again = {r["key"]: r for r in map(json.loads, lines[1:])}
    assert again.keys() == first.keys()
    assert all(again[k] == first[k] for k in again if not k.startswith("onnx|"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"].endswith("other.onnx") and report["episodes_done"] == 3
    # another world/episode/GA config keeps nothing
    out = suite_cli(other, tmp_path, *small, "--set", "ga.population=10")
    assert "kept" not in out.stdout and "0/3" in out.stderr


def test_a_second_suite_on_the_same_outputs_is_refused(model, tmp_path):
    import fcntl

    with (tmp_path / "r.json.lock").open("w") as held:  # a suite at work on these outputs
        fcntl.flock(held, fcntl.LOCK_EX)
        res = suite_cli(model, tmp_path, ok=False)
    assert res.returncode == 2 and "another robustness suite is writing" in res.stderr
    assert not (tmp_path / "r.json.jobs.jsonl").exists()


def test_suite_refuses_training_seeds_and_unknown_names(model, tmp_path):
    res = suite_cli(model, tmp_path, "--suite-seed", "100", ok=False)
    assert res.returncode == 2 and "overlap the dataset seeds" in res.stderr
    res = suite_cli(model, tmp_path, "--families", "swamp", ok=False)
    assert res.returncode == 2 and "swamp" in res.stderr
    cfg = Config()
    check_seeds(cfg, SuiteConfig())  # the default suite seeds are clear of every range of the default config
    with pytest.raises(ConfigError, match="evaluate"):
        check_seeds(cfg, SuiteConfig(seed_base=cfg.evaluate.seed_base + 10))
    with pytest.raises(ConfigError, match="dagger round 2"):
        check_seeds(cfg, SuiteConfig(seed_base=cfg.dagger.seed_base + 20_000))


def test_jobs_are_seed_major_and_every_cell_shares_its_seeds():
    suite = SuiteConfig(families=("door", "dense"), inflation_radii=(0.35, 1.0), rates=(10.0, 20.0),
                        episodes_per_cell=3, controllers=("onnx", "ga"), scenes=("slalom",))
    jobs = jobs_for(Config(), suite, "m.onnx")
    assert len(jobs) == (2 * 2 * 2 * 3 + 2 * 2) * 2
    assert [j.seed for j in jobs[:16]] == [900_000] * 16  # every cell's first episode comes first
    assert len({j.key for j in jobs}) == len(jobs)


def test_the_generator_family_is_the_original_generator_whatever_a_config_trains_on():
    """A config that trains on every family (robust.yaml) must not turn the suite's "generator" cells into a
    mix of the new families; nor does its kinds list change which GA episodes can be reused."""
    every = Config(world=dataclasses.replace(Config().world, kinds=FAMILIES))
    suite = SuiteConfig(families=(GENERATOR,), inflation_radii=(0.55,), rates=(20.0,), episodes_per_cell=30,
                        controllers=("ga",), scenes=())
    drawn = {scenario(j).family for j in jobs_for(every, suite, "")}
    assert drawn <= set(BASE_KINDS) and len(drawn) >= 3
    assert fingerprint(every, suite, "") == fingerprint(Config(), suite, "")


def test_criteria_follow_issue_13():
    def runs(controller, family, successes, collisions=0):
        return [{"controller": controller, "family": family, "inflation": 0.55, "rate": 20.0, "success": ok,
                 "collision": i < collisions} for i, ok in enumerate(successes)]

    suite = SuiteConfig(families=("door", "long_route"), inflation_radii=(0.55,), rates=(20.0,))
    good = runs("onnx", "door", [1] * 10) + runs("ga", "door", [1] * 10) + runs("onnx", "long_route", [1] * 10) \
        + runs("ga", "long_route", [1] * 9 + [0])
    c = criteria(good, suite)
    assert c["cells_pass"] and c["overall_pass"] and c["collisions_pass"] and c["long_route_pass"]
    bad = runs("onnx", "door", [1] * 8 + [0] * 2, collisions=1) + runs("ga", "door", [1] * 10) \
        + runs("onnx", "long_route", [1] * 8 + [0] * 2) + runs("ga", "long_route", [1] * 10)
    c = criteria(bad, suite)
    assert not c["cells_pass"] and c["worst_cell"]["ratio"] == pytest.approx(0.8)
    assert not c["overall_pass"] and not c["collisions_pass"] and not c["long_route_pass"]


def test_fallback_criteria_follow_issue_14():
    def runs(controller, family, outcomes, network=100, ga=0):
        """outcomes: episode times (s), None for a failure."""
        return [{"controller": controller, "family": family, "inflation": 0.55, "rate": 20.0, "seed": i,
                 "success": t is not None, "time": t or 40.0, "planners": {"onnx": network, "ga": ga}}
                for i, t in enumerate(outcomes)]

    suite = SuiteConfig(families=(GENERATOR, "door"), inflation_radii=(0.55,), rates=(20.0,),
                        controllers=("ga", "hybrid"))
    good = runs("ga", GENERATOR, [10, 10, None]) + runs("hybrid", GENERATOR, [10.5, 10, 12], network=95, ga=5) \
        + runs("ga", "door", [10, None], network=0, ga=100) + runs("hybrid", "door", [10.9, None], 50, 50)
    c = fallback_criteria(good, suite)
    assert c["families_pass"] and c["network_share_pass"] and c["time_pass"]
    assert c["network_share_standard"] == pytest.approx(0.95) and c["time_pairs"] == 3  # the 12 s is unpaired
    assert c["time_ratio"] == pytest.approx((10.5 + 10 + 10.9) / 30)
    bad = runs("ga", GENERATOR, [10, 10]) + runs("hybrid", GENERATOR, [12, None], network=85, ga=15) \
        + runs("ga", "door", [10, 10]) + runs("hybrid", "door", [12, 12])
    c = fallback_criteria(bad, suite)
    assert not c["families_pass"] and not c["families"][GENERATOR]["pass"] and c["families"]["door"]["pass"]
    assert not c["network_share_pass"] and not c["time_pass"] and c["time_ratio"] == pytest.approx(36 / 30)
    assert fallback_criteria(good, SuiteConfig(controllers=("onnx", "ga"))) == {}


def test_randomisation_draws_user_settings_in_range_deterministically():
    draws = [draw(s) for s in range(400)]
    assert draw(7) == draw(7) and draw(7) != draw(8)
    r = Ranges()
    radius = np.array([d.world["inflation_radius"] for d in draws])
    decay = np.array([d.world["decay_range"][0] for d in draws])
    res = np.array([d.episode["costmap_resolution"] for d in draws])
    rate = np.array([d.episode["planning_rate"] for d in draws])
    assert r.inflation_radius[0] <= radius.min() and radius.max() <= r.inflation_radius[1]
    assert radius.max() - radius.min() > 0.7
    assert 1.0 <= decay.min() and decay.max() <= 10.0 and np.median(decay) < 5.0  # log-uniform
    assert 0.025 <= res.min() and res.max() <= 0.1
    assert 10.0 <= rate.min() and rate.max() <= 20.0 and 0.2 < np.mean(rate == 20.0) < 0.4
    unknown = np.array([d.world["unknown_fraction"] for d in draws])
    assert 0.2 < np.mean(unknown > 0) < 0.4
    assert all(d.planner["allow_unknown"] == (d.world["unknown_fraction"] > 0) for d in draws)
    world, episode = randomized(WorldConfig(), EpisodeConfig(), 3)
    d = draw(3)
    assert world.inflation_radius == d.world["inflation_radius"] and episode.planning_rate == d.episode["planning_rate"]
    assert episode.odom_latency == d.episode["odom_latency"] and world.kinds == WorldConfig().kinds
    # The seed's world is the same; only its costs change.
    a, b = make_scenario(900_001, WorldConfig(), "door"), make_scenario(900_001, world, "door")
    assert np.array_equal(a.world.obstacles, b.world.obstacles) and np.array_equal(a.start, b.start)


def test_the_models_episodes_are_redone_when_the_nodes_parameter_defaults_change(model, monkeypatch):
    """hybrid's rules are node parameters (e.g. fallback_compare_margin): a changed default must not reuse the
    model's episodes, while the GA's and naive episodes (``configs``) stay."""
    from plan_ga_ros import parameters

    suite = SuiteConfig(families=("door",), inflation_radii=(0.55,), rates=(20.0,), episodes_per_cell=1,
                        controllers=("hybrid",), scenes=())
    stamp, configs = fingerprint(Config(), suite, str(model)), fingerprint(Config(), suite, "")
    defaults = parameters.defaults()
    changed = {**defaults, "fallback_compare_margin": defaults["fallback_compare_margin"] + 1.0}
    monkeypatch.setattr(parameters, "defaults", lambda: changed)
    assert fingerprint(Config(), suite, str(model)) != stamp
    assert fingerprint(Config(), suite, "") == configs
