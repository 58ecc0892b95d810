"""End to end, as a user types it: plan-ga-train pipeline on a tiny config, then each subcommand."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("plan-ga-train"))
TINY = str(REPO / "training" / "configs" / "tiny.yaml")


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900, cwd=REPO)
    if ok:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    run("pipeline", "--config", TINY, "--set", f"run_dir={d}", "--set", f"dataset.out_dir={d / 'data'}")
    return d


def test_pipeline_outputs(run_dir):
    for name in ("planner.onnx", "planner.pt", "MODEL_CARD.md", "loss.png", "evaluation.png", "evaluation.json",
                 "history.json", "data/manifest.json"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "data" / "manifest.json").read_text())
    assert manifest["episodes"] == 4 + 2 and len(manifest["content_hash"]) == 64
    assert all(s["file"].endswith(".npz") for s in manifest["shards"])
    assert not list(run_dir.rglob("*.pkl")) and not list(run_dir.rglob("*.pickle"))
    ev = json.loads((run_dir / "evaluation.json").read_text())
    assert set(ev) == {"onnx", "ga", "naive", "hybrid"}
    for s in ev.values():
        assert {"success_rate", "collision_rate", "timeout_rate", "failed_rate", "time_to_goal_s", "path_length_m",
                "min_clearance_m", "fallback_share"} <= set(s)
        assert s["rate_hz"] == 20.0 and s["episodes"] == 2  # the node's planning_frequency default
        assert s["success_rate"] + s["collision_rate"] + s["timeout_rate"] + s["failed_rate"] == pytest.approx(1.0)
    assert ev["ga"]["fallback_share"] == 1.0 and ev["onnx"]["fallback_share"] == 0.0
    # the checkpoint describes itself: weights, constructor arguments, spec, training config, epoch
    import torch

    ckpt = torch.load(run_dir / "planner.pt", weights_only=True)
    assert ckpt["model_args"] == {"hidden": 256, "decay_scale": 10.0, "hypotheses": 1} and ckpt["config"]["seed"] == 1
    assert json.loads(ckpt["spec"])["window_cells"] == 50 and ckpt["epoch"] >= 0


def test_dataset_resumes(run_dir):
    out = run("dataset", "--config", TINY, "--set", f"run_dir={run_dir}", "--set",
              f"dataset.out_dir={run_dir / 'data'}")
    assert "new episodes" not in out.stdout and "6 episodes" in out.stdout
    # a changed world or GA would silently mix old and new shards: refused, with the fix
    out = run("dataset", "--config", TINY, "--set", f"run_dir={run_dir}", "--set",
              f"dataset.out_dir={run_dir / 'data'}", "--set", "ga.population=16", ok=False)
    assert out.returncode == 2 and "ga.population" in out.stderr and "new folder" in out.stderr


def test_dagger_shards_record_their_driver_and_are_remade_for_another_model(run_dir):
    data = run_dir / "data"
    shards = json.loads((data / "manifest.json").read_text())["shards"]
    assert {s["driver"] for s in shards if s["file"].startswith("ga_")} == {""}
    round1 = {s["driver"] for s in shards if s["file"].startswith("dagger1_")}
    assert len(round1) == 1 and len(round1.pop()) == 64  # the round-1 model drove both episodes
    args = ("dataset", "--config", TINY, "--set", f"run_dir={run_dir}", "--set", f"dataset.out_dir={data}",
            "--round", "1", "--dagger-model")
    # the final model was retrained after round 1: its round-1 shards are made again, then resumed
    out = run(*args, str(run_dir / "planner.onnx"))
    assert "2 dagger1 shards were driven by another model" in out.stdout and "new episodes: 2" in out.stdout
    out = run(*args, str(run_dir / "planner.onnx"))
    assert "driven by another model" not in out.stdout and "new episodes" not in out.stdout
    missing = run(*args, str(run_dir / "nope.onnx"), ok=False)
    assert missing.returncode == 1 and "model not found" in missing.stderr


def test_a_rerun_pipeline_resumes_rounds_instead_of_training_again(run_dir, tmp_path):
    """An interrupted pipeline is rerun: finished rounds are taken back (their checkpoints and the ONNX
    driver of each DAgger round, whose bytes the shards record), nothing is made again."""
    import shutil

    shutil.copytree(run_dir, tmp_path / "run")
    run_ = tmp_path / "run"
    rounds = sorted(p.name for p in (run_ / "rounds").iterdir())
    # round 0 trains train.epochs from scratch; a DAgger round fine-tunes for train.finetune_epochs
    assert [len(json.loads((run_ / "rounds" / f"round{r}_history.json").read_text())) for r in (0, 1)] == [2, 1]
    assert rounds == ["round0.json", "round0.onnx", "round0.pt", "round0_history.json", "round1.json", "round1.pt",
                      "round1_history.json"]
    args = ("pipeline", "--config", TINY, "--set", f"run_dir={run_}", "--set", f"dataset.out_dir={run_ / 'data'}",
            "--set", "evaluate.episodes=1")
    # The round-1 shards remade with the final model (whatever other tests did): the rerun makes them again
    # with round 0's driver, byte for byte the shards round 1 was trained on (episodes are deterministic), so
    # round 1 is taken back too. A shard whose bytes changed makes its round train again.
    run("dataset", "--config", TINY, "--set", f"run_dir={run_}", "--set", f"dataset.out_dir={run_ / 'data'}",
        "--round", "1", "--dagger-model", str(run_ / "planner.onnx"))
    out = run(*args)
    assert "training round 0: done before on these 4 shards" in out.stdout
    assert "2 dagger1 shards were driven by another model" in out.stdout
    assert "training round 1: done before on these 6 shards" in out.stdout
    record = json.loads((run_ / "rounds" / "round1.json").read_text())
    (run_ / "rounds" / "round1.json").write_text(json.dumps({**record, "content_hash": "0" * 64}))
    out = run(*args)
    assert "training round 0: done before on these 4 shards" in out.stdout
    assert "training round 1: done before" not in out.stdout  # its shards "changed": trained again
    out = run(*args)  # and once more: nothing is made or trained again
    assert "training round 0: done before on these 4 shards" in out.stdout
    assert "training round 1: done before on these 6 shards" in out.stdout
    assert "new episodes" not in out.stdout and "driven by another model" not in out.stdout
    assert "over 4 sitting(s)" in out.stdout and len(json.loads((run_ / "sittings.json").read_text())) == 4
    # a polish round after the DAgger rounds: the final approach weighted, on the same shards, from the last
    # round's checkpoint, resumable too; without it (epochs 0) the last DAgger round's model and curve again
    polish = (*args, "--set", "polish.epochs=1", "--set", "polish.goal_weight=2")
    out = run(*polish)
    assert "polish round: 1 epochs, the final approach weighted 3×" in out.stdout
    assert "training round 1: done before on these 6 shards" in out.stdout and "polish round: done" not in out.stdout
    record = json.loads((run_ / "rounds" / "polish.json").read_text())
    assert record["files"] == json.loads((run_ / "rounds" / "round1.json").read_text())["files"]
    assert (record["train"]["goal_weight"], record["train"]["finetune_epochs"]) == (2.0, 1)
    assert record["init"] == hashlib.sha256((run_ / "rounds" / "round1.pt").read_bytes()).hexdigest()
    assert len(json.loads((run_ / "rounds" / "polish_history.json").read_text())) == 1
    assert (run_ / "planner.pt").read_bytes() == (run_ / "rounds" / "polish.pt").read_bytes()
    out = run(*polish)
    assert "training polish round: done before on these 6 shards" in out.stdout
    run(*args)
    assert (run_ / "planner.pt").read_bytes() == (run_ / "rounds" / "round1.pt").read_bytes()
    assert (run_ / "history.json").read_text() == (run_ / "rounds" / "round1_history.json").read_text()


def test_another_network_trains_every_round_again_and_exports_its_pick_in_the_graph(run_dir, tmp_path):
    """Rounds are taken back only for the network they were trained for: with model.hypotheses = 3 the
    rerun trains round 0 and the DAgger round again (its driver changed) and the 3-hypothesis network
    exports and verifies."""
    import shutil

    import torch

    shutil.copytree(run_dir, tmp_path / "run")
    run_ = tmp_path / "run"
    out = run("pipeline", "--config", TINY, "--set", f"run_dir={run_}", "--set", f"dataset.out_dir={run_ / 'data'}",
              "--set", "evaluate.episodes=1", "--set", "model.hypotheses=3")
    assert "done before" not in out.stdout and "driven by another model" in out.stdout
    assert "verify passed" in out.stdout
    ckpt = torch.load(run_ / "planner.pt", weights_only=True)
    assert ckpt["model_args"]["hypotheses"] == 3
    assert json.loads((run_ / "rounds" / "round0.json").read_text())["model"]["hypotheses"] == 3
    history = json.loads((run_ / "rounds" / "round0_history.json").read_text())
    assert all(h["val_picked_mse"] > 0 and 0 <= h["val_pick_is_closest"] <= 1 for h in history)  # what ships
    card = (run_ / "MODEL_CARD.md").read_text()
    assert "a head to 3 plans of 60 outputs" in card and "winner-takes-all" in card
    # a controller re-measured later carries a note into the regenerated card
    evaluation = json.loads((run_ / "evaluation.json").read_text())
    evaluation["hybrid"]["note"] = "re-measured at other defaults"
    (run_ / "evaluation.json").write_text(json.dumps(evaluation))
    run("model-card", "--config", TINY, "--set", "model.hypotheses=3", "--run", str(run_),
        "--set", f"dataset.out_dir={run_ / 'data'}")
    assert "- hybrid: re-measured at other defaults" in (run_ / "MODEL_CARD.md").read_text()


def test_pipeline_trains_on_its_own_shards_only(run_dir, tmp_path):
    """Leftover shards of another run in the data folder are neither trained on nor in the manifest."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(run_dir / "data", data)
    ga = sorted((data / "shards").glob("ga_*.npz"))
    for name in ("ga_009999.npz", "dagger7_070001.npz"):
        shutil.copy(ga[0], data / "shards" / name)
    out = run("pipeline", "--config", TINY, "--set", f"run_dir={tmp_path}", "--set", f"dataset.out_dir={data}",
              "--set", "dagger.rounds=0", "--set", "evaluate.episodes=1")
    manifest = json.loads((data / "manifest.json").read_text())
    assert sorted(s["file"] for s in manifest["shards"]) == [p.name for p in ga]
    trained = [int(n) for n in re.findall(r"\((\d+) train / (\d+) validation samples\)", out.stdout)[-1]]
    assert sum(trained) == manifest["samples"]
    assert "reusing 4 episode shards" in (tmp_path / "MODEL_CARD.md").read_text()  # its time excludes theirs


def test_verify_inspect_profile_evaluate(run_dir, tmp_path):
    model, ckpt = str(run_dir / "planner.onnx"), str(run_dir / "planner.pt")
    # verify, export and profile rebuild the network from the checkpoint alone: no --config
    out = run("verify", "--checkpoint", ckpt, "--model", model, "--data", str(run_dir / "data"))
    assert "dataset  batch 8" in out.stdout and "verify passed" in out.stdout
    out = run("inspect", "--model", model)
    assert "Conv" in out.stdout and "costmap_input" in out.stdout and "schema_version: 1" in out.stdout
    info = json.loads(run("inspect", "--model", model, "--json").stdout)
    assert info["ops"]["Conv"] == 3 and info["parameters"] > 1_000_000
    out = run("profile", "--model", model, "--checkpoint", ckpt, "--runs", "50")
    assert "speedup" in out.stdout and "20Hz" in out.stdout and "session tick" in out.stdout
    res10, res20 = tmp_path / "ev10.json", tmp_path / "ev20.json"
    for rate, res in (("10", res10), ("20", res20)):
        out = run("evaluate", "--config", TINY, "--model", model, "--episodes", "1", "--seed", "100000", "--json",
                  str(res), "--controllers", "onnx,naive", "--workers", "1", "--rate", rate)
        assert f"planning at {rate} Hz" in out.stdout
        ev = json.loads(res.read_text())
        assert set(ev) == {"onnx", "naive"} and {s["rate_hz"] for s in ev.values()} == {float(rate)}
    bad = run("evaluate", "--model", model, "--episodes", "1", "--rate", "1000", ok=False)
    assert bad.returncode == 2 and "planning_frequency" in bad.stderr
    # the model card's rate table from evaluation files
    card = tmp_path / "card.md"
    card.write_text((run_dir / "MODEL_CARD.md").read_text())
    run("model-card", "--card", str(card), "--rate-eval", str(res10), "--rate-eval", str(res20))
    assert "## Planning rate: 10 Hz vs 20 Hz" in card.read_text() and "| naive | 10 Hz | 1 |" in card.read_text()
    # the robustness suite's block goes into the card (its other sections kept), and model-card puts it into a
    # run's card when the run's robustness.json was made with the run's very model
    import shutil

    run_ = tmp_path / "run"
    shutil.copytree(run_dir, run_)
    run("evaluate", "--suite", "robustness", "--config", TINY, "--model", str(run_ / "planner.onnx"), "--workers",
        "1", "--families", "door", "--inflation-radii", "0.55", "--rates", "20", "--episodes-per-cell", "1",
        "--scenes", "none", "--controllers", "onnx", "--json", str(run_ / "robustness.json"), "--md", "",
        "--card", str(card))
    text = card.read_text()
    assert text.count("## Robustness (outside the training generator)") == 1 and "| door |" in text
    assert "## Planning rate: 10 Hz vs 20 Hz" in text and text.index("## Robustness") < text.index("## Speed")
    card_args = ("model-card", "--config", TINY, "--run", str(run_), "--set", f"dataset.out_dir={run_ / 'data'}")
    run(*card_args)
    assert "| door |" in (run_ / "MODEL_CARD.md").read_text()
    report = json.loads((run_ / "robustness.json").read_text())  # another model's report: left out
    (run_ / "robustness.json").write_text(json.dumps({**report, "model_sha256": "0" * 64}))
    run(*card_args)
    assert "## Robustness" not in (run_ / "MODEL_CARD.md").read_text()
    # verify fails (non-zero exit) against a checkpoint that is not the model's
    import torch

    from plan_ga_ros.contract import ModelSpec
    from plan_ga_training.model import PlannerNet
    from plan_ga_training.train import save_checkpoint

    other = tmp_path / "other.pt"
    save_checkpoint(other, PlannerNet(ModelSpec(), 256, 10.0), ModelSpec(), {"hidden": 256, "decay_scale": 10.0},
                    {}, 0)
    assert run("verify", "--checkpoint", str(other), "--model", model, ok=False).returncode == 1
    # a bare state dict (the old format) or a damaged file: a one-line error, no traceback
    torch.save({"costmap_fc.0.weight": torch.zeros(256, 6272)}, other)
    out = run("verify", "--checkpoint", str(other), "--model", model, ok=False)
    assert out.returncode == 1 and "checkpoint error" in out.stderr and "old format" in out.stderr
    assert "Traceback" not in out.stderr


def test_worlds_and_export_commands(tmp_path, run_dir):
    run("worlds", "--count", "3", "--out", str(tmp_path / "w.png"))
    assert (tmp_path / "w.png").stat().st_size > 1000
    out = run("export", "--checkpoint", str(run_dir / "planner.pt"), "--out",
              str(tmp_path / "e.onnx"), "--exporter", "legacy", "--opset", "17")
    assert "full check passed" in out.stdout
    bad = run("train", "--set", "train.epochs=abc", ok=False)
    assert bad.returncode == 2 and "not a valid int" in bad.stderr
