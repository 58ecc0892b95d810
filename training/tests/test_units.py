"""Training package units: config parsing, GA, augmentation, export diagnostics, parity, inspection."""

import numpy as np
import pytest
import torch

from plan_ga_ros.contract import ModelSpec
from plan_ga_ros.kinematics import rollout
from plan_ga_ros.safety import collisions, window_lookup
from plan_ga_ros.tensors import window_cell_centres
from plan_ga_training.config import ConfigError, load_config
from plan_ga_training.export import ExportError, export_module, export_planner
from plan_ga_training.export_examples import AdaptivePoolModel, BrokenModel, FixedModel
from plan_ga_ros.ga import GAPlanner
from plan_ga_training.losses import clearance_penalty, rollout_xy, window_cost
from plan_ga_training.model import PlannerNet
from plan_ga_training.train import mirror
from plan_ga_training.verify import verify

SPEC = ModelSpec()


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
    p = rollout(np.zeros(3), label.view(20, 3).numpy().astype(float), 0.1)
    q = rollout(np.zeros(3), y2.view(20, 3).numpy().astype(float), 0.1)
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
    got = window_cost(torch.from_numpy(window)[None, None], torch.from_numpy(xy).float()[None], SPEC)[0].numpy()
    np.testing.assert_allclose(got, window_lookup(window, xy, SPEC.resolution), atol=1e-5)


def test_clearance_penalty_charges_a_plan_into_an_obstacle_and_pushes_it_away():
    x = window_cell_centres(SPEC)[0, :, 0]
    window = np.tile(np.exp(-3.0 * np.clip(0.6 - x, 0, None)), (50, 1)).astype(np.float32)  # inflated wall 0.6 m ahead
    cost = torch.from_numpy(window)[None, None]
    ahead = torch.tensor([[[0.5, 0.0, 0.0]] * 20], requires_grad=True)
    aside = torch.tensor([[[0.0, 0.0, 1.0]] * 20])
    penalty = clearance_penalty(cost, ahead, SPEC, 10, 0.5)
    assert float(penalty) > 0 and float(clearance_penalty(cost, aside, SPEC, 10, 0.5)) == 0
    penalty.backward()
    assert ahead.grad[0, :, 0].sum() > 0  # gradient descent slows the robot down


def test_model_output_within_limits_and_pose_invariant():
    model = PlannerNet(SPEC).eval()
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


def test_planner_export_parity_batch_1_and_8(tmp_path):
    model = PlannerNet(SPEC).eval()
    path = tmp_path / "p.onnx"
    export_planner(model, SPEC, path)
    checks = verify(model, str(path), SPEC)
    assert {(c.name, c.batch) for c in checks} == {("random", 1), ("random", 8)}
    assert all(c.ok for c in checks), checks
    # A different model's weights do not verify: the check can fail.
    other = PlannerNet(SPEC).eval()
    assert not all(c.ok for c in verify(other, str(path), SPEC))
