"""Training package units: config and its defaults, episodes through the session, GA, augmentation, checkpoints,
export diagnostics, parity, the model card's rate table."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from export_examples import AdaptivePoolModel, BrokenModel, FixedModel

from plan_ga_ros import parameters
from plan_ga_ros.contract import INPUT_NAMES, ModelSpec
from plan_ga_ros.ga import GAPlanner
from plan_ga_ros.kinematics import rollout
from plan_ga_ros.planner import LIMIT_NAMES, PlannerConfig
from plan_ga_ros.safety import collisions, window_lookup
from plan_ga_ros.sim.world import WorldConfig, make_world
from plan_ga_ros.tensors import window_cell_centres
from plan_ga_training.config import (
    CheckpointError,
    Config,
    ConfigError,
    ModelConfig,
    load_config,
    model_spec,
    planner_config,
)
from plan_ga_training.episodes import (
    REPEAT_LABEL_EVERY,
    SAMPLE_KEYS,
    EpisodeConfig,
    NaiveController,
    PolicyController,
    ga_labeller,
    run_episode,
)
from plan_ga_training.evaluate import at_rate, table, versus_ga
from plan_ga_training.export import ExportError, export_module, export_planner
from plan_ga_training.losses import (
    clearance_penalty,
    goal_weights,
    mean_goal_weight,
    planner_loss,
    rollout_xy,
    window_cost,
)
from plan_ga_training.model import PlannerNet
from plan_ga_training.model_card import rate_table, replace_rate_section
from plan_ga_training.train import load_checkpoint, mirror, save_checkpoint
from plan_ga_training.verify import verify

SPEC = ModelSpec()
MODEL_ARGS = dataclasses.asdict(ModelConfig())


def test_yaml_numbers_parse_as_numbers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-3\n  epochs: '7'\nworld:\n  decay_range: [2, 5]\n")
    cfg = load_config(p, ["ga.population=32"])
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 7 and cfg.world.decay_range == (2.0, 5.0) and cfg.ga.population == 32
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="not a valid int"):
        load_config(None, ["train.epochs=2.5"])
    with pytest.raises(ConfigError, match="disjoint"):
        load_config(None, ["evaluate.seed_base=10"])


def test_ga_finds_a_way_around_a_wall_and_reaches_a_goal():
    window = np.zeros((50, 50), np.float32)
    window[15:35, 33:35] = 1.0  # a wall 0.8–1.0 m ahead, 2 m wide
    ga = GAPlanner(SPEC, SPEC.limits, 0.2, seed=0)
    plan = ga.plan(window, np.array([0.3, 0.0, 0.0]), np.array([2.0, 0.0, 0.0]), 2.0)
    poses = rollout(np.zeros(3), plan, SPEC.dt)
    assert not collisions(window, poses[1:11], SPEC, 0.2).any()
    assert plan[:, 0].max() > 0.1  # it drives
    # Open space, goal 0.8 m ahead: reached inside the horizon.
    ga.reset()
    plan = ga.plan(np.zeros((50, 50), np.float32), np.zeros(3), np.array([0.8, 0.0, 0.0]), 2.0)
    end = rollout(np.zeros(3), plan, SPEC.dt)[-1]
    assert np.hypot(end[0] - 0.8, end[1]) < 0.15


def test_ga_is_deterministic_per_seed():
    w = np.zeros((50, 50), np.float32)
    a = GAPlanner(SPEC, SPEC.limits, 0.2, seed=3).plan(w, np.zeros(3), np.array([1.0, 1.0, 0]), 2.0)
    b = GAPlanner(SPEC, SPEC.limits, 0.2, seed=3).plan(w, np.zeros(3), np.array([1.0, 1.0, 0]), 2.0)
    np.testing.assert_array_equal(a, b)


def test_mirror_augmentation_is_a_symmetry_of_the_rollout():
    costmap = torch.rand(1, 1, 50, 50)
    state = torch.arange(9.0)[None]
    goal = torch.tensor([[1.0, 0.5, 0.3]])
    label = torch.rand(1, 60)
    c2, s2, g2, y2 = mirror(costmap, state, goal, label, 20)
    assert torch.equal(c2[0, 0, 0], costmap[0, 0, -1])
    assert s2[0, 4].item() == -4.0 and s2[0, 5].item() == -5.0 and s2[0, 3].item() == 3.0
    p = rollout(np.zeros(3), label.view(20, 3).numpy().astype(float), SPEC.dt)
    q = rollout(np.zeros(3), y2.view(20, 3).numpy().astype(float), SPEC.dt)
    np.testing.assert_allclose(q[:, 1], -p[:, 1], atol=1e-6)  # the path mirrors across x
    assert g2[0, 1].item() == -0.5 and g2[0, 2].item() == pytest.approx(-0.3)


def test_training_rollout_matches_the_node_kinematics():
    rng = np.random.default_rng(3)
    plan = np.stack([rng.uniform(0, 0.5, (16, 20)), rng.uniform(-0.2, 0.2, (16, 20)),
                     rng.uniform(-1.5, 1.5, (16, 20))], axis=-1)
    exact = rollout(np.zeros(3), plan, SPEC.dt)[:, 1:, :2]
    approx = rollout_xy(torch.from_numpy(plan), SPEC.dt).numpy()
    assert np.abs(exact - approx).max() < 1e-3


def test_window_cost_agrees_with_the_safety_layer_lookup_at_cell_centres():
    rng = np.random.default_rng(4)
    window = rng.random((50, 50)).astype(np.float32)
    rc = rng.integers(0, 50, (200, 2))
    xy = window_cell_centres(SPEC)[rc[:, 0], rc[:, 1]]  # cell centres, (x ← column, y ← row)
    got = window_cost(torch.from_numpy(window)[None, None], torch.from_numpy(xy).float()[None], SPEC.window_cells,
                      SPEC.resolution)[0].numpy()
    np.testing.assert_allclose(got, window_lookup(window, xy, SPEC.resolution), atol=1e-5)


def test_clearance_penalty_charges_a_plan_into_an_obstacle_and_pushes_it_away():
    x = window_cell_centres(SPEC)[0, :, 0]
    window = np.tile(np.exp(-3.0 * np.clip(0.6 - x, 0, None)), (50, 1)).astype(np.float32)  # inflated wall 0.6 m ahead
    cost = torch.from_numpy(window)[None, None]
    ahead = torch.tensor([[[0.5, 0.0, 0.0]] * 20], requires_grad=True)
    aside = torch.tensor([[[0.0, 0.0, 1.0]] * 20])
    penalty = clearance_penalty(cost, ahead, SPEC, 10, 0.5)
    assert float(penalty) > 0 and float(clearance_penalty(cost, aside, SPEC, 10, 0.5)) == 0
    both = torch.stack([ahead, aside], dim=1)  # [1, 2, T, 3]: two hypotheses, each held to the full rule
    assert float(clearance_penalty(cost, both, SPEC, 10, 0.5)) == pytest.approx(float(penalty))
    penalty.backward()
    assert ahead.grad[0, :, 0].sum() > 0  # gradient descent slows the robot down


def test_model_output_within_limits_and_pose_invariant():
    model = PlannerNet(SPEC, **MODEL_ARGS).eval()
    args = [torch.randn(4, 1, 50, 50), torch.randn(4, 9) * 5, torch.randn(4, 3), torch.rand(4, 2)]
    out = model(*args).view(4, 20, 3)
    assert (out[..., 0] >= 0).all() and (out[..., 0] <= 0.5).all() and (out[..., 1] == 0).all()
    assert (out[..., 2].abs() <= 1.5).all()
    moved = args[1].clone()
    moved[:, :3] = torch.randn(4, 3) * 100
    assert torch.equal(model(args[0], moved, args[2], args[3]), model(*args))


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_broken_module_explains_and_fixed_module_exports_and_verifies(tmp_path, exporter):
    import onnxruntime as ort

    with pytest.raises(ExportError, match="torch.where"):
        export_module(BrokenModel(), (torch.randn(2, 10),), tmp_path / "b.onnx", ["input"], ["output"], exporter)
    fixed = FixedModel().eval()
    export_module(fixed, (torch.randn(2, 10),), tmp_path / "f.onnx", ["input"], ["output"], exporter)
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"))
    for batch in (1, 8):
        x = torch.randn(batch, 10)
        x[0] = -x[0].abs()  # both branches of the where
        (got,) = sess.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(got, fixed(x).detach().numpy(), atol=1e-5)


def test_adaptive_pooling_with_legacy_exporter_is_explained(tmp_path):
    with pytest.raises(ExportError, match="AvgPool2d"):
        export_module(AdaptivePoolModel(), (torch.randn(2, 1, 50, 50),), tmp_path / "a.onnx", ["input"], ["output"],
                      "legacy")


def _fixed_hypotheses(plans: list[list[float]], scores: list[float]) -> PlannerNet:
    """A 2-hypothesis network whose output ignores its inputs: constant twists per hypothesis, fixed scores."""
    model = PlannerNet(SPEC, **{**MODEL_ARGS, "hypotheses": len(plans)}).eval()
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        twists = torch.tensor(plans).view(-1, 1, 3).expand(-1, SPEC.steps, 3)
        last.bias[: twists.numel()] = torch.atanh(((twists - model.out_mid) / model.out_half.clamp(min=1e-6))
                                                  .clamp(-0.999, 0.999)
                                                  ).reshape(-1)
        last.bias[twists.numel():] = torch.tensor(scores)
    return model


def test_hypotheses_head_picks_the_best_scored_plan_that_keeps_clear():
    """Straight ahead scores higher than turning on the spot; with a wall 0.4 m ahead the graph picks the turn."""
    model = _fixed_hypotheses([[0.45, 0.0, 0.0], [0.0, 0.0, 1.0]], [2.0, 0.0])
    x = window_cell_centres(SPEC)[0, :, 0]
    wall = np.tile(np.where(x > 0.4, 1.0, 0.0), (50, 1)).astype(np.float32)
    args = [torch.randn(1, 9), torch.zeros(1, 3), torch.tensor([[3.0, 0.05]])]
    free = model(torch.zeros(1, 1, 50, 50), *args).view(20, 3)
    blocked = model(torch.from_numpy(wall)[None, None], *args).view(20, 3)
    assert float(free[0, 0]) == pytest.approx(0.45, abs=1e-3) and float(free[0, 2]) == pytest.approx(0, abs=1e-3)
    assert float(blocked[0, 0]) == pytest.approx(0, abs=1e-3) and float(blocked[0, 2]) == pytest.approx(1.0, abs=1e-3)
    plans, scores = model.hypotheses(torch.zeros(1, 1, 50, 50), *args)
    assert plans.shape == (1, 2, 20, 3) and scores.shape == (1, 2)


def test_winner_takes_all_loss_pulls_only_the_closest_hypothesis_and_its_score():
    """Of two hypotheses, the one nearer the label takes the imitation gradient (but wta_spread of it) and the
    cross-entropy raises its score; with one hypothesis the loss is the plain step-weighted MSE."""
    model = _fixed_hypotheses([[0.4, 0.0, 0.2], [0.4, 0.0, 0.5]], [0.0, 0.0])  # 0.1 and 0.2 rad/s off the label
    label = torch.tensor([[0.4, 0.0, 0.3] * 20])
    cfg = Config().train
    step_w = torch.ones(20, 1)
    plans, scores = model.hypotheses(torch.zeros(1, 1, 50, 50), torch.zeros(1, 9), torch.zeros(1, 3),
                                     torch.tensor([[3.0, 0.05]]))
    plans, scores = plans.detach().requires_grad_(), scores.detach().requires_grad_()
    loss = planner_loss(model, (plans, scores), label, torch.zeros(1, 1, 50, 50), step_w, cfg, 10)
    loss.backward()
    near, far = plans.grad[0, 0].abs().sum(), plans.grad[0, 1].abs().sum()
    assert near > 0 and far > 0 and near > 3 * far
    assert scores.grad[0, 0] < 0 < scores.grad[0, 1]  # gradient descent raises the winner's score
    single = _fixed_hypotheses([[0.4, 0.0, 0.2]], [])
    out = single.hypotheses(torch.zeros(1, 1, 50, 50), torch.zeros(1, 9), torch.zeros(1, 3),
                            torch.tensor([[3.0, 0.05]]))
    mse = ((single.normalised(out[0].reshape(1, 60)) - single.normalised(label)) ** 2).mean()
    got = planner_loss(single, out, label, torch.zeros(1, 1, 50, 50), step_w, cfg, 10)
    assert float(got) == pytest.approx(float(mse), rel=1e-5)


def test_goal_weight_pulls_the_final_approach_harder():
    """With train.goal_weight, samples whose goal is within goal_weight_radius weigh 1 + goal_weight against
    the others in the imitation term (divided by the training set's mean weight, the same in every batch);
    at 0 every sample weighs alike."""
    single = _fixed_hypotheses([[0.4, 0.0, 0.2]], [])
    goal = torch.tensor([[0.5, 0.2, 0.0], [2.0, 0.0, 0.0]])  # the final approach; a goal 2 m off (clipped)
    assert goal_weights(goal, Config().train) is None
    cfg = dataclasses.replace(Config().train, goal_weight=3.0, goal_weight_radius=1.0, clearance_weight=0.0)
    assert mean_goal_weight(goal, cfg) == pytest.approx(2.5) and mean_goal_weight(goal, Config().train) == 1.0
    assert goal_weights(goal, cfg, 2.5).tolist() == pytest.approx([1.6, 0.4])
    assert goal_weights(goal[:1], cfg, 2.5).tolist() == pytest.approx([1.6])  # a batch of one: the same weight
    out = single.hypotheses(torch.zeros(2, 1, 50, 50), torch.zeros(2, 9), goal, torch.tensor([[3.0, 0.05]] * 2))
    plans = out[0].detach().requires_grad_()
    label = torch.tensor([[0.4, 0.0, 0.3] * 20] * 2)
    loss = planner_loss(single, (plans, out[1]), label, torch.zeros(2, 1, 50, 50), torch.ones(20, 1), cfg, 10,
                        goal_weights(goal, cfg, 2.5))
    loss.backward()
    near, far = plans.grad[0].abs().sum(), plans.grad[1].abs().sum()
    assert float(near / far) == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("hypotheses", [1, 4])
def test_planner_export_parity_batch_1_and_8(tmp_path, hypotheses):
    model = PlannerNet(SPEC, **{**MODEL_ARGS, "hypotheses": hypotheses}).eval()
    path = tmp_path / "p.onnx"
    export_planner(model, SPEC, path)
    checks = verify(model, str(path), SPEC)
    assert {(c.name, c.batch) for c in checks} == {("random", 1), ("random", 8)}
    assert all(c.ok for c in checks), checks
    # costs rising ahead of the robot: each hypothesis's rollout is charged differently, so the in-graph pick
    # (rollout, GridSample, argmax, gather) is compared between PyTorch and ONNX Runtime too
    x = window_cell_centres(SPEC)[0, :, 0]
    ramp = np.tile(np.clip(0.78 + 0.3 * x, 0.0, 1.0), (50, 1)).astype(np.float32)
    rng = np.random.default_rng(7)
    real = {"costmap": np.repeat(ramp[None, None], 8, 0), "state": rng.normal(0, 0.2, (8, 9)).astype(np.float32),
            "goal": rng.uniform(-2, 2, (8, 3)).astype(np.float32), "meta": np.tile([[3.0, 0.1]], (8, 1)),
            "label": np.zeros((8, 60), np.float32)}
    if hypotheses > 1:
        plans, _ = model.hypotheses(*(torch.from_numpy(np.asarray(real[k], np.float32))
                                      for k in ("costmap", "state", "goal", "meta")))
        assert (model.blocked(torch.from_numpy(real["costmap"]), plans) > 0).any()
    checks = verify(model, str(path), SPEC, real)
    assert len(checks) == 4 and all(c.ok for c in checks), checks
    # A different model's weights do not verify: the check can fail.
    other = PlannerNet(SPEC, **{**MODEL_ARGS, "hypotheses": hypotheses}).eval()
    assert not all(c.ok for c in verify(other, str(path), SPEC))


# ---------------------------------------------------------------- one source of defaults
def test_training_plans_with_the_nodes_parameter_defaults_field_by_field():
    """The training config's planner settings are the node's parameter table: every PlannerConfig field."""
    cfg = Config()
    spec = model_spec(cfg)
    node = PlannerConfig.from_params(parameters.defaults(), spec)
    training = planner_config(cfg, spec, parameters.default("planner"))
    for f in dataclasses.fields(PlannerConfig):
        assert getattr(training, f.name) == getattr(node, f.name), f.name
    # what the training config feeds into it: the model's limits and radius, the planning rate
    assert {k: getattr(spec.limits, k) for k in LIMIT_NAMES} == {k: parameters.default(k) for k in LIMIT_NAMES}
    assert spec.robot_radius == WorldConfig().robot_radius == parameters.default("robot_radius")
    assert EpisodeConfig().planning_rate == parameters.default("planning_frequency") == 1.0 / node.control_period
    # other modes and rates change only what they name
    ga10 = planner_config(at_rate(cfg, 10.0), spec, "ga")
    assert ga10.planner == "ga" and ga10.control_period == pytest.approx(0.1)
    assert dataclasses.replace(ga10, planner=node.planner, control_period=node.control_period) == node
    with pytest.raises(ConfigError, match="planning_frequency"):
        at_rate(cfg, 500.0)  # the node's table refuses it, so training does too
    with pytest.raises(ConfigError, match="planning_frequency"):
        load_config(None, ["episode.planning_rate=0.5"])


# ---------------------------------------------------------------- episodes through the session
def _open_world():
    occ = np.zeros((120, 120), bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    return make_world(occ, 0.05, 3.0)


def _episode(controller="naive", goal=(4.0, 3.0, 0.0), rate=None, max_time=20.0, **kw):
    cfg = at_rate(Config(), rate)
    cfg = dataclasses.replace(cfg, episode=dataclasses.replace(cfg.episode, max_time=max_time, **kw))
    spec = model_spec(cfg)
    pcfg = planner_config(cfg, spec, "ga" if controller == "ga" else "onnx")
    network = NaiveController(spec, pcfg) if controller == "naive" else None
    return run_episode(_open_world(), np.array([1.5, 3.0, 0.0]), np.asarray(goal, float), spec, pcfg, network,
                       cfg.episode, cfg.ga, record=True, seed=1), pcfg


def test_episode_success_means_goal_reached_by_the_session_then_at_rest():
    r, pcfg = _episode()
    assert r.outcome == "success" and r.success and not (r.collision or r.timeout or r.failed)
    assert r.final_distance <= pcfg.xy_goal_tolerance + 0.05  # stops within the checker's tolerance
    assert r.stops.get("GOAL_REACHED", 0) >= 1  # the session said so before the base came to rest
    assert 2.5 / 0.5 < r.time < 20.0 and r.path_length == pytest.approx(2.5, abs=0.3)
    # the naive plan drove every executed tick; recording without a labeller keeps the network's raw plans
    assert set(r.planners) == {"onnx"} and r.planning_ticks == len(r.samples["label"])
    assert r.samples["costmap"].shape[1:] == (1, SPEC.window_cells, SPEC.window_cells)
    assert np.allclose(r.samples["label"][0, :, 0], r.samples["label"][0, 0, 0])  # a naive plan: constant


def test_episode_ticks_at_the_planning_rate():
    for rate in (10.0, 20.0):
        r, _ = _episode(rate=rate, max_time=3.0, goal=(5.0, 3.0, 0.0))
        assert r.outcome == "timeout" and r.time == 3.0
        assert abs(r.planning_ticks - rate * 3.0) <= 1  # one tick per period (inputs there from t = 0)


def test_episode_follows_a_global_path_by_the_carrot():
    path = np.stack([np.linspace(1.5, 4.5, 31), np.full(31, 3.0), np.zeros(31)], axis=1)
    r, _ = _episode(goal=path)
    assert r.success and r.final_distance < 0.2


def test_odometry_latency_beyond_odom_timeout_stops_planning_and_noise_is_survived():
    r, _ = _episode(max_time=2.0, odom_latency=parameters.default("odom_timeout") + 0.1)
    assert r.planning_ticks == 0 and r.stops.get("ODOMETRY_STALE", 0) > 0 and r.path_length == 0.0
    r, _ = _episode(odom_latency=0.1, odom_noise=0.05, velocity_noise=0.05)
    assert r.success


def test_episode_ends_when_the_session_gives_the_goal_up():
    """A network whose plans are always rejected (full speed into a wall) with no fallback: GOAL_FAILED."""
    cfg = Config()
    spec = model_spec(cfg)
    pcfg = dataclasses.replace(planner_config(cfg, spec, "onnx"), recovery_timeout=1.0)
    occ = np.zeros((120, 120), bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    occ[:, 50:54] = True  # a wall 0.9 m ahead of the start
    reckless = PolicyController(lambda feed: np.tile([0.5, 0.0, 0.0], (1, spec.steps)))
    r = run_episode(make_world(occ, 0.05, 3.0), np.array([1.5, 3.0, 0.0]), np.array([4.0, 3.0, 0.0]), spec, pcfg,
                    reckless, cfg.episode, seed=0)
    assert r.outcome == "failed" and r.failed and r.stops.get("GOAL_FAILED") == 1
    assert r.stops.get("PLAN_REJECTED", 0) > 0 and r.min_clearance > 0  # stopped short: never collided
    assert 1.0 < r.time < 5.0


def test_a_labeller_sees_a_repeated_state_once_in_repeat_label_every_ticks():
    """DAgger: a network stopped in front of a wall repeats its inputs every tick; the GA labels the first
    and then every REPEAT_LABEL_EVERY-th repeat, and every state the robot moved through."""
    cfg = Config()
    spec = model_spec(cfg)
    pcfg = dataclasses.replace(planner_config(cfg, spec, "onnx"), recovery_timeout=3.0)
    occ = np.zeros((120, 120), bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    occ[:, 50:54] = True
    reckless = PolicyController(lambda feed: np.tile([0.5, 0.0, 0.0], (1, spec.steps)))
    calls = []
    expert = ga_labeller(spec, pcfg, cfg.ga, seed=0)
    r = run_episode(make_world(occ, 0.05, 3.0), np.array([1.5, 3.0, 0.0]), np.array([4.0, 3.0, 0.0]), spec, pcfg,
                    reckless, cfg.episode, cfg.ga, lambda feed, to: calls.append(1) or expert(feed, to), record=True,
                    seed=0)
    assert r.failed and len(calls) == len(r.samples["label"])
    standing = r.planning_ticks - len(r.samples["label"])  # ticks whose state repeated and went unlabelled
    assert standing > 0.5 * r.planning_ticks  # most of the episode was spent standing still
    # each run of repeats keeps one sample in REPEAT_LABEL_EVERY
    assert len(r.samples["label"]) >= r.planning_ticks / REPEAT_LABEL_EVERY
    pose = r.samples["state"][:, :3]
    same = np.all(np.abs(np.diff(pose, axis=0)) < 0.01, axis=1)
    assert same.any()  # a long stand is labelled again (every REPEAT_LABEL_EVERY ticks), not only once


def test_ga_episode_records_the_driving_gas_raw_plans_and_the_labeller_matches_the_sessions_ga():
    r, pcfg = _episode("ga", max_time=1.0, goal=(5.0, 3.0, 0.0))
    assert r.planners.get("ga", 0) > 0 and r.fallback_ticks == r.planning_ticks == len(r.samples["label"])
    # the labeller is the session's GA call: same seed, same feed sequence → same plans as the driving GA
    label = ga_labeller(SPEC, pcfg, Config().ga, seed=1)
    feeds = [{n: r.samples[k][i:i + 1] for k, n in zip(SAMPLE_KEYS, INPUT_NAMES)} for i in range(3)]
    got = np.stack([label(f).reshape(SPEC.steps, 3) for f in feeds])
    np.testing.assert_allclose(got, r.samples["label"][:3], atol=1e-6)


def test_labeller_turns_to_the_heading_once_the_episodes_checker_accepted_the_position(monkeypatch):
    """DAgger labels after the stateful goal checker latched the position aim at the heading alone, as
    ``planner: ga`` does: the episode tells its labeller when its session's checker accepted the position."""
    cfg = Config()
    spec = model_spec(cfg)
    pcfg = planner_config(cfg, spec, "onnx")
    from plan_ga_ros.session import PlannerSession

    expert = ga_labeller(spec, pcfg, cfg.ga, seed=0)
    driving, tick = [], PlannerSession.tick
    monkeypatch.setattr(PlannerSession, "tick", lambda self, now: driving.append(self) or tick(self, now))
    seen = []

    def labeller(feed, goal):
        fed = feed["goal_relative_input"][0].astype(np.float64)
        accepted = driving[-1].position_accepted
        seen.append((float(np.hypot(*fed[:2])), accepted))
        # the label aims at the feed's goal, and once the position is accepted at its heading where the robot is
        np.testing.assert_allclose(goal, [0.0, 0.0, fed[2]] if accepted else fed, atol=1e-5)
        return expert(feed, goal)

    r = run_episode(_open_world(), np.array([1.5, 3.0, 0.0]), np.array([2.5, 3.0, 2.0]), spec, pcfg,
                    NaiveController(spec, pcfg), cfg.episode, cfg.ga, labeller, record=True, seed=0)
    assert r.success
    dist, accepted = np.array(seen).T
    first = int(np.argmax(accepted))
    assert accepted[first] and accepted[first:].all() and not accepted[:first].any()  # latched: stays accepted
    assert dist[first] <= pcfg.xy_goal_tolerance + 0.01 and (dist[:first] > pcfg.xy_goal_tolerance - 0.01).all()
    # a label toward the heading alone is another plan than one toward the exact point
    feed = {n: r.samples[k][first:first + 1] for k, n in zip(SAMPLE_KEYS, INPUT_NAMES)}
    point = feed["goal_relative_input"][0].astype(np.float64)
    a, b = ga_labeller(spec, pcfg, cfg.ga, seed=3), ga_labeller(spec, pcfg, cfg.ga, seed=3)
    assert not np.array_equal(a(feed, point * np.array([0.0, 0.0, 1.0])), b(feed, point))


def test_a_fallback_gets_through_a_doorway_without_the_gas_clearance_margin(monkeypatch):
    """A network that drives into the wall beside a 0.6 m doorway (a 0.4 m robot): the fallback takes over. Every
    way through grazes the GA's soft margin; priced, the GA dithers in front of the door for seconds. Hybrid's
    fallback plans without it (the safety layer's clearance still the floor) and gets through in half the time."""
    from plan_ga_ros.session import PlannerSession

    occ = np.zeros((120, 120), bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    occ[:, 60:63] = True
    occ[54:66, 60:63] = False  # the doorway: 12 cells of 0.05 m
    world = make_world(occ, 0.05, 3.0)
    cfg = Config()
    spec = model_spec(cfg)
    pcfg = planner_config(cfg, spec, "hybrid")
    reckless = PolicyController(lambda feed: np.tile([0.5, 0.0, 0.0], (1, spec.steps)))
    episode = dataclasses.replace(cfg.episode, max_time=30.0)

    def run():
        return run_episode(world, np.array([1.8, 3.0, 0.3]), np.array([4.5, 3.0, 0.0]), spec, pcfg, reckless,
                           episode, cfg.ga, seed=0)

    tight = run()
    monkeypatch.setattr(PlannerSession, "tight", property(lambda self: False))
    priced = run()
    assert tight.success and priced.outcome in ("success", "timeout") and not priced.collision
    assert tight.planners.get("ga", 0) > tight.planners.get("onnx", 0)  # the fallback drove through
    assert tight.time < 0.6 * priced.time, (tight.time, priced.time)
    assert tight.min_clearance > 0.0


# ---------------------------------------------------------------- checkpoints and the network's dimensions
def test_network_dimensions_come_from_the_contract():
    spec = ModelSpec(window_cells=40, steps=12, resolution=0.1, goal_clip_distance=1.5)
    model = PlannerNet(spec, hidden=32, decay_scale=5.0).eval()
    out = model(torch.rand(2, 1, 40, 40), torch.rand(2, 9), torch.rand(2, 3), torch.rand(2, 2))
    assert out.shape == (2, 12 * 3)
    assert model.meta_scale.tolist() == [5.0, pytest.approx(0.1)]


def test_checkpoint_is_self_describing_and_old_format_is_refused(tmp_path):
    spec = ModelSpec(robot_radius=0.25)
    model = PlannerNet(spec, hidden=16, decay_scale=7.0).eval()
    path = tmp_path / "p.pt"
    save_checkpoint(path, model, spec, {"hidden": 16, "decay_scale": 7.0}, {"seed": 3, "world": {"a": (1, 2)}}, 5)
    raw = torch.load(path, weights_only=True)  # plain data and tensors only
    assert set(raw) == {"format", "model", "model_args", "spec", "config", "epoch"}
    ckpt = load_checkpoint(path)
    assert ckpt.spec == spec and ckpt.epoch == 5 and ckpt.config == {"seed": 3, "world": {"a": [1, 2]}}
    # saved before the network had a ``hypotheses`` argument: read as the single-plan network it was, so a
    # config of today (hypotheses: 1) can fine-tune it
    assert ckpt.model_args == {"hidden": 16, "decay_scale": 7.0, "hypotheses": 1}
    x = [torch.rand(2, 1, 50, 50), torch.rand(2, 9), torch.rand(2, 3), torch.rand(2, 2)]
    assert torch.equal(ckpt.model(*x), model(*x))
    torch.save(model.state_dict(), path)  # format 1: a bare state dict
    with pytest.raises(CheckpointError, match="old format"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)


# ---------------------------------------------------------------- the model card's rate table
def test_rate_table_from_evaluation_files(tmp_path):
    def summary(rate, success):
        return {"episodes": 100, "success_rate": success, "collision_rate": 0.0, "timeout_rate": 1 - success,
                "failed_rate": 0.0, "time_to_goal_s": 7.0, "fallback_share": None, "rate_hz": rate,
                "seed_base": 100000}

    files = []
    for rate, success in ((20.0, 0.9), (10.0, 0.95)):
        files.append(tmp_path / f"{rate:g}.json")
        files[-1].write_text(json.dumps({"onnx": summary(rate, success)}))
    from plan_ga_training.model_card import load_rate_evaluations

    text = rate_table(load_rate_evaluations([str(f) for f in files]))
    assert "10 Hz vs 20 Hz" in text
    assert "| onnx | 10 Hz | 100 | 95.0% |" in text and "| onnx | 20 Hz | 100 | 90.0% |" in text
    card = tmp_path / "card.md"
    card.write_text("# card\n\n## Closed-loop evaluation\nx\n\n## Speed\ny\n")
    for _ in range(2):  # replaced, not appended, the second time
        replace_rate_section(card, load_rate_evaluations([str(f) for f in files]))
    body = card.read_text()
    assert body.count("## Planning rate") == 1 and body.index("## Planning rate") < body.index("## Speed")
    assert body.endswith("## Speed\ny\n")


def test_time_against_the_ga_is_paired_by_episode():
    """Hybrid's time is compared with the GA's on the episodes both reached: a world only hybrid solves (in 30 s)
    would otherwise count against it."""
    def run(seed, success, time):
        return {"seed": seed, "success": success, "time": time}

    by = {"ga": [run(1, True, 7.0), run(2, True, 8.0), run(3, False, 40.0)],
          "hybrid": [run(1, True, 7.7), run(2, True, 8.8), run(3, True, 30.0)],
          "onnx": [run(1, False, 40.0), run(2, False, 40.0), run(3, False, 40.0)]}
    versus = versus_ga(by)
    assert set(versus) == {"hybrid", "onnx"}
    assert versus["hybrid"] == {"time_vs_ga": pytest.approx(16.5 / 15.0), "time_vs_ga_pairs": 2}
    assert versus["onnx"] == {"time_vs_ga": None, "time_vs_ga_pairs": 0}
    assert versus_ga({"hybrid": by["hybrid"]}) == {}
    summary = {"hybrid": {"episodes": 3, "success_rate": 1.0, "collision_rate": 0.0, "timeout_rate": 0.0,
                          "failed_rate": 0.0, "time_to_goal_s": 15.5, "path_length_m": 3.0, "min_clearance_m": 0.1,
                          "plan_ms_p50": 1.0, "fallback_share": 0.1, **versus["hybrid"]}}
    assert "on the episodes both reached: hybrid 1.100 (2)" in table(summary)
    assert "| 1.100 |" in rate_table([{"hybrid": {**summary["hybrid"], "rate_hz": 20.0}}])


def test_an_interrupted_sitting_keeps_its_time(tmp_path):
    """The pipeline's clock records a sitting's time every few seconds, not only when a step ends: a
    sitting killed in the middle of a long step still counts (it recorded 0 s before)."""
    import time

    from plan_ga_training.pipeline import Sittings

    path = tmp_path / "sittings.json"
    first = Sittings(path, every=0.05)
    time.sleep(0.4)  # no mark(): the sitting is "killed" here
    recorded = json.loads(path.read_text())
    assert len(recorded) == 1 and recorded[0]["seconds"] >= 0.1
    first.close()
    second = Sittings(path, every=60.0)
    assert second.count == 2 and second.close() >= recorded[0]["seconds"]
    assert len(json.loads(path.read_text())) == 2


def test_a_training_round_is_taken_back_for_the_same_config_whatever_the_thread_count(tmp_path, monkeypatch):
    """pipeline.train_round reuses round<r>.pt trained on the same shards with the same network and training
    config; train.threads alone does not count, any other training setting does."""
    from plan_ga_training import pipeline

    def trained(*args, **kwargs):
        raise AssertionError("trained again")

    run = tmp_path / "run"
    (run / "rounds").mkdir(parents=True)
    (run / "rounds" / "round0.pt").write_bytes(b"weights")
    record = {"files": ["ga_000000.npz"], "content_hash": "ab" * 32, "model": dataclasses.asdict(Config().model),
              "train": dataclasses.asdict(Config().train)}
    (run / "rounds" / "round0.json").write_text(json.dumps(record))
    monkeypatch.setattr(pipeline, "train_on", trained)
    threads = Config(train=dataclasses.replace(Config().train, threads=1))
    pipeline.train_round(threads, tmp_path, run, 0, record["files"], record["content_hash"])
    assert (run / "planner.pt").read_bytes() == b"weights"
    other = Config(train=dataclasses.replace(Config().train, lr=5e-4))
    with pytest.raises(AssertionError, match="trained again"):
        pipeline.train_round(other, tmp_path, run, 0, record["files"], record["content_hash"])
    # a record written before a setting existed was trained as with its default: taken back; not with another
    older = {k: v for k, v in record["train"].items() if k not in ("goal_weight", "collision_weight")}
    (run / "rounds" / "round0.json").write_text(json.dumps({**record, "train": older}))
    pipeline.train_round(Config(), tmp_path, run, 0, record["files"], record["content_hash"])
    weighted = Config(train=dataclasses.replace(Config().train, goal_weight=2.0))
    with pytest.raises(AssertionError, match="trained again"):
        pipeline.train_round(weighted, tmp_path, run, 0, record["files"], record["content_hash"])
    # a fine-tune is taken back only from the checkpoint it started from (its SHA-256 in the record)
    start = tmp_path / "start.pt"
    start.write_bytes(b"round 1")
    digest = hashlib.sha256(b"round 1").hexdigest()
    (run / "rounds" / "polish.pt").write_bytes(b"polished")
    (run / "rounds" / "polish.json").write_text(json.dumps({**record, "init": digest}))
    pipeline.train_round(Config(), tmp_path, run, "polish", record["files"], record["content_hash"], init=start)
    assert (run / "planner.pt").read_bytes() == b"polished"
    start.write_bytes(b"round 1, trained again")
    with pytest.raises(AssertionError, match="trained again"):
        pipeline.train_round(Config(), tmp_path, run, "polish", record["files"], record["content_hash"], init=start)
