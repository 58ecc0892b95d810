"""plan-ga-train: the offline package's single command-line entry point."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .config import CheckpointError, Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def _cfg(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.set)


def _spec(cfg: Config):
    from .dataset import model_spec

    return model_spec(cfg)


# ---------------------------------------------------------------- subcommands
def cmd_worlds(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .episodes import make_episode

    cfg = _cfg(args)
    cols = min(args.count, 4)
    rows = int(np.ceil(args.count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    print(f"{'seed':>7} {'kind':<10} {'decay':>6} {'distance m':>11}")
    for ax, seed in zip(axes.ravel(), range(args.seed, args.seed + args.count)):
        world, start, goal = make_episode(seed, cfg.world)
        print(f"{seed:>7} {world.kind:<10} {world.inflation_decay:>6.2f} {np.hypot(*(goal - start)[:2]):>11.2f}")
        ax.imshow(world.costs, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=[0, world.costs.shape[1] * world.resolution, 0, world.costs.shape[0] * world.resolution])
        ax.plot(*start[:2], "go")
        ax.plot(*goal[:2], "r*", ms=10)
        ax.set_title(f"{seed}: {world.kind}", fontsize=8)
    for ax in axes.ravel()[args.count:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


def cmd_ga(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, summarise, table

    cfg = _cfg(args)
    by = evaluate(cfg, "", args.episodes, args.seed, controllers=("ga",), workers=args.workers)
    print(table({"ga": summarise(by["ga"])}))
    return 0


def _missing(model: str) -> bool:
    """True, after saying so on stderr, when the model file does not exist."""
    if Path(model).is_file():
        return False
    print(f"model not found: {model}", file=sys.stderr)
    return True


def cmd_dataset(args: argparse.Namespace) -> int:
    from .dataset import generate, write_manifest

    cfg = _cfg(args)
    out = Path(args.out or cfg.dataset.out_dir)
    n = args.episodes or cfg.dataset.episodes
    if args.dagger_model and _missing(args.dagger_model):
        return 1
    if args.dagger_model:
        seeds = list(range(cfg.dagger.seed_base + args.round * 10_000,
                           cfg.dagger.seed_base + args.round * 10_000 + (args.episodes or cfg.dagger.episodes)))
        stats = generate(cfg, out, seeds, f"dagger{args.round}", args.dagger_model, args.workers,
                         desc=f"DAgger round {args.round}")
    else:
        seeds = list(range(cfg.dataset.seed_base, cfg.dataset.seed_base + n))
        stats = generate(cfg, out, seeds, "ga", workers=args.workers, desc="GA episodes")
    manifest = write_manifest(cfg, out)
    if stats:
        print(f"new episodes: {len(stats)}, success {np.mean([s['success'] for s in stats]):.1%}, "
              f"samples {sum(s['samples'] for s in stats)}")
    print(f"dataset {out}: {manifest['episodes']} episodes, {manifest['samples']} samples, "
          f"hash {manifest['content_hash'][:16]}")
    return 0


def _train(cfg: Config, data_dir: Path, out_dir: Path, init: Path | None = None,
           files: list[str] | None = None) -> dict:
    """Train on ``files`` (default: every shard in ``data_dir``), split by episode."""
    from . import dataset, train

    files = sorted(files or (p.name for p in (data_dir / "shards").glob("*_??????.npz")))
    tr_files, va_files = train.split_by_episode(files, cfg.train.val_fraction, cfg.seed)
    result = train.train(dataset.load(data_dir, tr_files), dataset.load(data_dir, va_files), _spec(cfg),
                         cfg.train, out_dir, cfg.seed, init)
    print(f"best validation loss {result['best_val']:.5f} at epoch {result['best_epoch']} "
          f"({result['train_samples']} train / {result['val_samples']} validation samples)")
    return result


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    _train(cfg, Path(args.data or cfg.dataset.out_dir), Path(args.out or cfg.run_dir),
           Path(args.init) if args.init else None)
    return 0


def _export(cfg: Config, checkpoint: Path, out: Path, data_dir: Path | None, exporter: str, opset: int) -> None:
    from .export import export_planner, git_commit
    from .train import load_model

    spec = _spec(cfg)
    data_hash = ""
    if data_dir and (data_dir / "manifest.json").exists():
        data_hash = json.loads((data_dir / "manifest.json").read_text())["content_hash"]
    spec = spec.with_overrides(training_data_hash=data_hash, git_commit=git_commit())
    export_planner(load_model(checkpoint, _spec(cfg)), spec, out, exporter, opset)
    print(f"exported {out} ({exporter} exporter, opset {opset}); onnx.checker full check passed")


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError

    cfg = _cfg(args)
    try:
        _export(cfg, Path(args.checkpoint), Path(args.out), Path(args.data) if args.data else None,
                args.exporter, args.opset)
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _verify(cfg: Config, checkpoint: Path, model: Path, data_dir: Path | None) -> bool:
    from . import dataset
    from .train import load_model
    from .verify import TOLERANCE, verify

    real = None
    if data_dir and (data_dir / "shards").exists():
        files = sorted(p.name for p in (data_dir / "shards").glob("*_??????.npz"))[:5]
        real = dataset.load(data_dir, files) if files else None
    checks = verify(load_model(checkpoint, _spec(cfg)), str(model), _spec(cfg), real)
    for c in checks:
        print(f"{c.name:<8} batch {c.batch}: max |Δ| = {c.max_abs_diff:.2e}  {'ok' if c.ok else 'FAIL'}")
    ok = all(c.ok for c in checks)
    print(f"verify {'passed' if ok else 'FAILED'} (tolerance {TOLERANCE:g})")
    return ok


def cmd_verify(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    return 0 if _verify(cfg, Path(args.checkpoint), Path(args.model), Path(args.data) if args.data else None) else 1


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_model import inspect, report, serve_netron

    info = inspect(args.model)
    print(json.dumps(info, indent=1) if args.json else report(info))
    if args.netron:
        serve_netron(args.model, args.port)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from .profile import profile, report
    from .train import load_model

    cfg = _cfg(args)
    model = load_model(Path(args.checkpoint), _spec(cfg)) if args.checkpoint else None
    r = profile(args.model, model, _spec(cfg), args.runs)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


def _evaluate(cfg: Config, model: str, episodes: int, seed: int, json_out: str | None, png: str | None,
              workers: int, controllers: tuple[str, ...]) -> dict:
    from .evaluate import evaluate, plot_runs, summarise, table

    by = evaluate(cfg, model, episodes, seed, controllers, workers)
    summary = {name: summarise(runs) for name, runs in by.items()}
    print(table(summary))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(summary, indent=1))
    if png:
        plot_runs(cfg, by, png)
        print(f"wrote {png}")
    return summary


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    controllers = tuple(c.strip() for c in args.controllers.split(","))
    if "onnx" in controllers and _missing(args.model):
        return 1
    _evaluate(cfg, args.model, args.episodes, args.seed, args.json, args.png, args.workers, controllers)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """worlds → GA dataset → train → DAgger rounds → export → verify → evaluate → model card."""
    from .dataset import generate, shard_name, write_manifest

    cfg = _cfg(args)
    t0 = time.time()
    run, data = Path(cfg.run_dir), Path(cfg.dataset.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    seeds = list(range(cfg.dataset.seed_base, cfg.dataset.seed_base + cfg.dataset.episodes))
    made = len(generate(cfg, data, seeds, "ga", desc="GA episodes"))
    # Each round trains on exactly this config's shards so far, never on leftovers of another run;
    # the manifest (and the data hash in the model's metadata) describes those shards.
    files = [shard_name("ga", s) for s in seeds]
    write_manifest(cfg, data, files)
    ckpt, onnx_path = run / "planner.pt", run / "planner.onnx"
    _train(cfg, data, run, files=files)
    for rnd in range(1, cfg.dagger.rounds + 1):
        _export(cfg, ckpt, onnx_path, data, "dynamo", 18)
        base = cfg.dagger.seed_base + rnd * 10_000
        dagger_seeds = list(range(base, base + cfg.dagger.episodes))
        made += len(generate(cfg, data, dagger_seeds, f"dagger{rnd}", str(onnx_path), desc=f"DAgger round {rnd}"))
        files += [shard_name(f"dagger{rnd}", s) for s in dagger_seeds]
        write_manifest(cfg, data, files)
        _train(cfg, data, run, init=ckpt, files=files)
    _export(cfg, ckpt, onnx_path, data, "dynamo", 18)
    if not _verify(cfg, ckpt, onnx_path, data):
        return 1
    _evaluate(cfg, str(onnx_path), cfg.evaluate.episodes, cfg.evaluate.seed_base,
                        str(run / "evaluation.json"), str(run / "evaluation.png"), cfg.evaluate.workers,
                        ("onnx", "ga", "naive"))
    from .profile import profile
    from .train import load_model

    prof = profile(str(onnx_path), load_model(ckpt, _spec(cfg)), _spec(cfg), 500)
    (run / "profile.json").write_text(json.dumps(prof, indent=1))
    elapsed = time.time() - t0
    (run / "pipeline.json").write_text(json.dumps({"minutes": elapsed / 60, "config": args.config,
                                                   "episodes_made": made, "episodes_reused": len(files) - made}))
    _card(cfg, run, args.install)
    print(f"pipeline finished in {elapsed / 60:.1f} min")
    return 0


def _card(cfg: Config, run: Path, install: bool) -> None:
    """MODEL_CARD.md from a run directory's manifest, history, evaluation and profile; optionally install."""
    from .inspect_model import inspect
    from .model_card import write_model_card

    data = Path(cfg.dataset.out_dir)
    meta = json.loads((run / "pipeline.json").read_text()) if (run / "pipeline.json").exists() else {}
    write_model_card(run / "MODEL_CARD.md", cfg, json.loads((data / "manifest.json").read_text()),
                     json.loads((run / "history.json").read_text()), json.loads((run / "evaluation.json").read_text()),
                     inspect(str(run / "planner.onnx")), json.loads((run / "profile.json").read_text()),
                     60 * meta.get("minutes", float("nan")), meta.get("config"), meta.get("episodes_reused", 0))
    if install:
        models = REPO / "models"
        for name in ("planner.onnx", "planner.pt", "MODEL_CARD.md", "evaluation.png", "loss.png"):
            shutil.copy(run / name, models / name)
        print(f"installed the model into {models}")


def cmd_model_card(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    _card(cfg, Path(args.run or cfg.run_dir), args.install)
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plan-ga-train", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("worlds", parents=[common], help="generate seeded worlds and draw them")
    s.add_argument("--count", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="worlds.png")
    s.set_defaults(func=cmd_worlds)

    s = sub.add_parser("ga", parents=[common], help="closed-loop success and time per plan of the GA expert")
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--seed", type=int, default=100_000)
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=cmd_ga)

    s = sub.add_parser("dataset", parents=[common], help="GA episodes (or a DAgger round) as .npz shards")
    s.add_argument("--out", default=None)
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--dagger-model", default=None, help="ONNX model that drives while the GA labels")
    s.add_argument("--round", type=int, default=1)
    s.set_defaults(func=cmd_dataset)

    s = sub.add_parser("train", parents=[common], help="train the network on a dataset")
    s.add_argument("--data", default=None)
    s.add_argument("--out", default=None)
    s.add_argument("--init", default=None, help="state dict to fine-tune from")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", parents=[common], help="export a checkpoint to ONNX with metadata")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--data", default=None, help="dataset dir whose content hash goes into the metadata")
    s.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo")
    s.add_argument("--opset", type=int, default=18)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("verify", parents=[common], help="PyTorch vs ONNX Runtime parity (max |Δ| < 1e-5)")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--data", default=None)
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("inspect", parents=[common], help="inputs/outputs, op histogram, parameters, metadata")
    s.add_argument("--model", required=True)
    s.add_argument("--json", action="store_true")
    s.add_argument("--netron", action="store_true", help="serve the model in Netron on localhost")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("profile", parents=[common], help="ONNX Runtime vs PyTorch latency, tick budget")
    s.add_argument("--model", required=True)
    s.add_argument("--checkpoint", default=None)
    s.add_argument("--runs", type=int, default=1000)
    s.add_argument("--json", default=None)
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("evaluate", parents=[common], help="closed-loop evaluation on held-out worlds")
    s.add_argument("--model", default=str(REPO / "models" / "planner.onnx"))
    s.add_argument("--episodes", type=int, default=200)
    s.add_argument("--seed", type=int, default=100_000)
    s.add_argument("--json", default=None)
    s.add_argument("--png", default=None)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--controllers", default="onnx,ga,naive")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("model-card", parents=[common], help="write MODEL_CARD.md for a run directory")
    s.add_argument("--run", default=None, help="run directory (default: the config's run_dir)")
    s.add_argument("--install", action="store_true", help="copy the model, card and pictures into models/")
    s.set_defaults(func=cmd_model_card)

    s = sub.add_parser("pipeline", parents=[common], help="the whole pipeline (make train)")
    s.add_argument("--install", action="store_true", help="copy the results into models/")
    s.set_defaults(func=cmd_pipeline)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"checkpoint error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
