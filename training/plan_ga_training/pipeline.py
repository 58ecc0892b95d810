"""The offline pipeline and the work behind each subcommand (the CLI only parses arguments).

worlds → GA dataset → train → DAgger rounds → export → verify → evaluate → profile → model card.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .config import Config, polish_config

REPO = Path(__file__).resolve().parents[2]
EVALUATED = ("onnx", "ga", "naive", "hybrid")
INSTALLED = ("planner.onnx", "planner.pt", "MODEL_CARD.md", "evaluation.png", "loss.png")


def missing(model: str) -> bool:
    """True, after saying so on stderr, when the model file does not exist."""
    if Path(model).is_file():
        return False
    print(f"model not found: {model}", file=sys.stderr)
    return True


def draw_worlds(cfg: Config, count: int, seed: int, out: str) -> None:
    """Seeded worlds with start and goal, listed and drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plan_ga_ros.sim.world import make_episode

    cols = min(count, 4)
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    print(f"{'seed':>7} {'kind':<10} {'decay':>6} {'distance m':>11}")
    for ax, s in zip(axes.ravel(), range(seed, seed + count)):
        world, start, goal = make_episode(s, cfg.world)
        print(f"{s:>7} {world.kind:<10} {world.inflation_decay:>6.2f} {np.hypot(*(goal - start)[:2]):>11.2f}")
        ax.imshow(world.costs, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=[0, world.costs.shape[1] * world.resolution, 0, world.costs.shape[0] * world.resolution])
        ax.plot(*start[:2], "go")
        ax.plot(*goal[:2], "r*", ms=10)
        ax.set_title(f"{s}: {world.kind}", fontsize=8)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


def make_dataset(cfg: Config, out: Path, episodes: int | None, workers: int | None, dagger_model: str | None,
                 round_: int) -> None:
    """GA episodes (seeds from dataset.seed_base), or DAgger round ``round_`` driven by ``dagger_model``."""
    from .dataset import generate, write_manifest

    if dagger_model:
        base = cfg.dagger.seed_base + round_ * 10_000
        seeds = list(range(base, base + (episodes or cfg.dagger.episodes)))
        stats = generate(cfg, out, seeds, f"dagger{round_}", dagger_model, workers, desc=f"DAgger round {round_}")
    else:
        seeds = list(range(cfg.dataset.seed_base, cfg.dataset.seed_base + (episodes or cfg.dataset.episodes)))
        stats = generate(cfg, out, seeds, "ga", workers=workers, desc="GA episodes")
    manifest = write_manifest(cfg, out)
    if stats:
        print(f"new episodes: {len(stats)}, success {np.mean([s['success'] for s in stats]):.1%}, "
              f"samples {sum(s['samples'] for s in stats)}")
    print(f"dataset {out}: {manifest['episodes']} episodes, {manifest['samples']} samples, "
          f"hash {manifest['content_hash'][:16]}")


def train_on(cfg: Config, data_dir: Path, out_dir: Path, init: Path | None = None,
             files: list[str] | None = None) -> dict:
    """Train on ``files`` (default: every shard in ``data_dir``), split by episode."""
    from . import dataset, train

    files = sorted(files or (p.name for p in (data_dir / "shards").glob("*_??????.npz")))
    tr_files, va_files = train.split_by_episode(files, cfg.train.val_fraction, cfg.seed)
    result = train.train(dataset.load(data_dir, tr_files), dataset.load(data_dir, va_files), cfg, out_dir, init)
    print(f"best validation loss {result['best_val']:.5f} at epoch {result['best_epoch']} "
          f"({result['train_samples']} train / {result['val_samples']} validation samples)")
    return result


def export(checkpoint: Path, out: Path, data_dir: Path | None, exporter: str, opset: int) -> None:
    """The checkpoint's network as ONNX, with its spec, the dataset's content hash and the git commit."""
    from .export import export_planner, git_commit
    from .train import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    data_hash = ""
    if data_dir and (data_dir / "manifest.json").exists():
        data_hash = json.loads((data_dir / "manifest.json").read_text())["content_hash"]
    spec = ckpt.spec.with_overrides(training_data_hash=data_hash, git_commit=git_commit())
    export_planner(ckpt.model, spec, out, exporter, opset)
    print(f"exported {out} ({exporter} exporter, opset {opset}); onnx.checker full check passed")


def verify(checkpoint: Path, model: Path, data_dir: Path | None) -> bool:
    """PyTorch (rebuilt from the checkpoint) vs ONNX Runtime; prints each check."""
    from . import dataset
    from .train import load_checkpoint
    from .verify import TOLERANCE
    from .verify import verify as compare

    real = None
    if data_dir and (data_dir / "shards").exists():
        files = sorted(p.name for p in (data_dir / "shards").glob("*_??????.npz"))[:5]
        real = dataset.load(data_dir, files) if files else None
    ckpt = load_checkpoint(checkpoint)
    checks = compare(ckpt.model, str(model), ckpt.spec, real)
    for c in checks:
        print(f"{c.name:<8} batch {c.batch}: max |Δ| = {c.max_abs_diff:.2e}  {'ok' if c.ok else 'FAIL'}")
    ok = all(c.ok for c in checks)
    print(f"verify {'passed' if ok else 'FAILED'} (tolerance {TOLERANCE:g})")
    return ok


def profile(model: str, checkpoint: str | None, runs: int, json_out: str | None = None) -> dict:
    from .profile import profile as measure
    from .profile import report
    from .train import load_checkpoint

    r = measure(model, load_checkpoint(Path(checkpoint)).model if checkpoint else None, runs)
    print(report(r))
    if json_out:
        Path(json_out).write_text(json.dumps(r, indent=1))
    return r


def evaluate(cfg: Config, model: str, episodes: int, seed: int, json_out: str | None, png: str | None,
             workers: int, controllers: tuple[str, ...], rate: float | None = None) -> dict:
    """Closed-loop evaluation at ``rate`` Hz (default: the config's planning rate); a table, JSON, a picture."""
    from .evaluate import at_rate, plot_runs, summarise, table, versus_ga
    from .evaluate import evaluate as run

    cfg = at_rate(cfg, rate)
    by = run(cfg, model, episodes, seed, controllers, workers)
    versus = versus_ga(by)
    summary = {name: {**summarise(runs), **versus.get(name, {}), "rate_hz": cfg.episode.planning_rate,
                      "seed_base": seed} for name, runs in by.items()}
    print(f"planning at {cfg.episode.planning_rate:g} Hz, seeds {seed}…{seed + episodes - 1}")
    print(table(summary))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(summary, indent=1))
    if png:
        plot_runs(cfg, by, png)
        print(f"wrote {png}")
    return summary


def run_pipeline(cfg: Config, config_path: str | None, install: bool) -> int:
    """worlds → GA dataset → train → DAgger rounds → polish → export → verify → evaluate → profile → model card."""
    from .dataset import generate, shard_name, write_manifest

    t0 = time.time()
    run, data = Path(cfg.run_dir), Path(cfg.dataset.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    clock = Sittings(run / "sittings.json")
    seeds = list(range(cfg.dataset.seed_base, cfg.dataset.seed_base + cfg.dataset.episodes))
    made = len(generate(cfg, data, seeds, "ga", desc="GA episodes"))
    clock.mark()
    # Each round trains on exactly this config's shards so far, never on leftovers of another run;
    # the manifest (and the data hash in the model's metadata) describes those shards.
    files = [shard_name("ga", s) for s in seeds]
    manifest = write_manifest(cfg, data, files)
    ckpt, onnx_path = run / "planner.pt", run / "planner.onnx"
    train_round(cfg, data, run, 0, files, manifest["content_hash"])
    clock.mark()
    for rnd in range(1, cfg.dagger.rounds + 1):
        driver = round_driver(ckpt, data, run, rnd - 1)
        base = cfg.dagger.seed_base + rnd * 10_000
        dagger_seeds = list(range(base, base + cfg.dagger.episodes))
        families = focus(cfg, data, run, rnd, files, dagger_seeds)
        made += len(generate(cfg, data, dagger_seeds, f"dagger{rnd}", str(driver), desc=f"DAgger round {rnd}",
                             families=families))
        clock.mark()
        files += [shard_name(f"dagger{rnd}", s) for s in dagger_seeds]
        manifest = write_manifest(cfg, data, files)
        train_round(cfg, data, run, rnd, files, manifest["content_hash"], init=ckpt)
        clock.mark()
    if cfg.polish.epochs > 0:
        print(f"polish round: {cfg.polish.epochs} epochs, the final approach weighted {1 + cfg.polish.goal_weight:g}×")
        train_round(polish_config(cfg), data, run, "polish", files, manifest["content_hash"], init=ckpt)
        clock.mark()
    export(ckpt, onnx_path, data, "dynamo", 18)
    if not verify(ckpt, onnx_path, data):
        clock.close()
        return 1
    evaluate(cfg, str(onnx_path), cfg.evaluate.episodes, cfg.evaluate.seed_base, str(run / "evaluation.json"),
             str(run / "evaluation.png"), cfg.evaluate.workers, EVALUATED)
    profile(str(onnx_path), str(ckpt), 500, str(run / "profile.json"))
    elapsed = clock.close()
    (run / "pipeline.json").write_text(json.dumps({"minutes": elapsed / 60, "config": config_path,
                                                   "sittings": clock.count, "episodes_made": made,
                                                   "episodes_reused": len(files) - made}))
    model_card(cfg, run, install)
    print(f"pipeline finished in {elapsed / 60:.1f} min over {clock.count} sitting(s) "
          f"(this one {(time.time() - t0) / 60:.1f} min)")
    return 0


class Sittings:
    """The wall time of a pipeline that may take several sittings (it resumes): each run of the command
    is a sitting, its time so far recorded at every ``mark`` and every ``every`` seconds in between (an
    interrupted sitting keeps its time to within that)."""

    def __init__(self, path: Path, every: float = 30.0) -> None:
        self.path, self.start = path, time.time()
        self.past = json.loads(path.read_text()) if path.exists() else []
        self.count = len(self.past) + 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._tick, args=(every,), daemon=True, name="sittings").start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            self.mark()

    def mark(self) -> float:
        """Record this sitting's time; the total seconds of all sittings."""
        with self._lock:
            now = [*self.past, {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.start)),
                                "seconds": round(time.time() - self.start, 1)}]
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(now, indent=1))
            tmp.replace(self.path)
            return sum(s["seconds"] for s in now)

    def close(self) -> float:
        """Stop the periodic marks; the final total."""
        self._stop.set()
        return self.mark()


def train_round(cfg: Config, data: Path, run: Path, rnd: int | str, files: list[str], content_hash: str,
                init: Path | None = None) -> None:
    """Training round ``rnd`` (a number, or "polish") on ``files`` into ``run/planner.pt``, kept as
    ``run/rounds/round<r>.pt`` (``polish.pt``); a rerun of the pipeline takes that checkpoint (and its loss
    history) back instead of training again when it was trained on exactly these shards, byte for byte
    (``content_hash``: their manifest's), with this network and training config, from the same starting
    checkpoint ``init`` (its SHA-256), so an interrupted pipeline resumes at the round it stopped in."""
    from .config import ModelConfig, TrainConfig, to_dict
    from .dataset import file_sha256
    from .train import plot_losses

    rounds = run / "rounds"
    rounds.mkdir(exist_ok=True)
    name, label = (f"round{rnd}", f"round {rnd}") if isinstance(rnd, int) else (rnd, f"{rnd} round")
    kept, record, history = rounds / f"{name}.pt", rounds / f"{name}.json", rounds / f"{name}_history.json"
    start = file_sha256(str(init)) if init is not None and init.exists() else ""
    trained_on = json.loads(json.dumps({"files": files, "content_hash": content_hash, "model": to_dict(cfg.model),
                                        "train": to_dict(cfg.train), "init": start}))  # as the record reads back

    # A record written before a setting existed was trained as with its default (and before the starting
    # checkpoint was recorded, from the one its pipeline had). The thread count changes only the order of
    # float sums: not compared.
    defaults = {"model": to_dict(ModelConfig()), "train": to_dict(TrainConfig())}

    def compared(rec: dict, older: bool) -> dict:
        out = {k: rec.get(k) for k in trained_on if not (older and k == "init")}
        out |= {k: {**d, **(rec.get(k) or {})} for k, d in defaults.items()}
        out["train"]["threads"] = None
        return out

    if kept.exists() and record.exists():
        rec = json.loads(record.read_text())
        older = "init" not in rec
        if compared(rec, older) == compared(trained_on, older):
            shutil.copy(kept, run / "planner.pt")
            if history.exists():  # the shipped checkpoint's own curve, not the last round trained
                shutil.copy(history, run / "history.json")
                plot_losses(json.loads(history.read_text()), run / "loss.png")
            print(f"training {label}: done before on these {len(files)} shards, checkpoint {kept} reused")
            return
    result = train_on(cfg, data, run, init=init, files=files)
    (rounds / f"{name}.onnx").unlink(missing_ok=True)  # the DAgger driver exported from an older checkpoint
    shutil.copy(run / "planner.pt", kept)
    shutil.copy(run / "history.json", history)
    record.write_text(json.dumps({**trained_on, **{k: v for k, v in result.items() if k != "history"}},
                                 default=str))


def round_driver(ckpt: Path, data: Path, run: Path, rnd: int) -> Path:
    """The ONNX model that drives the next DAgger round, exported once from round ``rnd``'s checkpoint and
    kept (``run/rounds/round<r>.onnx``): its bytes, which the shards record, stay the same on a rerun."""
    path = run / "rounds" / f"round{rnd}.onnx"
    if not path.exists():
        export(ckpt, path, data, "dynamo", 18)
    return path


def focus(cfg: Config, data: Path, run: Path, rnd: int, files: list[str], seeds: list[int]) -> dict[int, str] | None:
    """DAgger round ``rnd``'s family per seed when ``dagger.focus_floor`` > 0: weighted by how far the network's
    success in the previous round is below the GA's on the GA dataset (``dataset.focus_weights``); recorded
    in ``run/focus.json``. None (families as ``world.kinds`` draws them) when off or for the first round."""
    from .dataset import draw_families, family_success, focus_weights

    if cfg.dagger.focus_floor <= 0 or rnd < 2:
        return None
    expert = family_success(data, [f for f in files if f.startswith("ga_")])
    learner = family_success(data, [f for f in files if f.startswith(f"dagger{rnd - 1}_")])
    weights = focus_weights(expert, learner, tuple(cfg.world.kinds), cfg.dagger.focus_floor)
    record = json.loads((run / "focus.json").read_text()) if (run / "focus.json").exists() else {}
    record[str(rnd)] = {"weights": weights, "ga": expert, "network": learner}
    (run / "focus.json").write_text(json.dumps(record, indent=1))
    print(f"DAgger round {rnd} families: " + ", ".join(f"{k} {w:.0%}" for k, w in sorted(weights.items())))
    return draw_families(seeds, weights)


def model_card(cfg: Config, run: Path, install: bool, rate_files: list[str] = ()) -> None:
    """MODEL_CARD.md from a run directory's manifest, history, evaluation and profile (and evaluations at
    other planning rates, ``rate_files``); optionally install the model into models/."""
    from .inspect_model import inspect
    from .model_card import load_rate_evaluations, write_model_card

    data = Path(cfg.dataset.out_dir)
    meta = json.loads((run / "pipeline.json").read_text()) if (run / "pipeline.json").exists() else {}
    evaluation = json.loads((run / "evaluation.json").read_text())
    write_model_card(run / "MODEL_CARD.md", cfg, json.loads((data / "manifest.json").read_text()),
                     json.loads((run / "history.json").read_text()), evaluation,
                     inspect(str(run / "planner.onnx")), json.loads((run / "profile.json").read_text()),
                     60 * meta.get("minutes", float("nan")), meta.get("config"), meta.get("episodes_reused", 0),
                     load_rate_evaluations(rate_files, evaluation), meta.get("sittings", 1))
    robust = run / "robustness.json"  # the robustness suite's report, when it was run on this very model
    if robust.exists():
        from .dataset import file_sha256
        from .model_card import replace_section
        from .robustness import CARD_HEADING, card_block

        report = json.loads(robust.read_text())
        if report.get("model_sha256") == file_sha256(str(run / "planner.onnx")):
            replace_section(run / "MODEL_CARD.md", CARD_HEADING, card_block(report))
    if install:
        models = REPO / "models"
        for name in INSTALLED:
            shutil.copy(run / name, models / name)
        print(f"installed the model into {models}")


def rate_section(card: Path, rate_files: list[str]) -> None:
    """Write (or replace) the planning-rate table of an existing model card from evaluation JSON files."""
    from .model_card import load_rate_evaluations, replace_rate_section

    replace_rate_section(card, load_rate_evaluations(rate_files))
    print(f"updated the planning-rate table in {card}")
