"""plan-ga-train: the offline package's single command-line entry point (argument parsing only; the work
is in ``pipeline.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import pipeline
from .compute import BACKENDS, JobError
from .config import CheckpointError, Config, ConfigError, load_config

REPO = pipeline.REPO


def _cfg(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.set + _compute(args))


def _compute(args: argparse.Namespace) -> list[str]:
    """--backend / --scheduler as config overrides (a scheduler address implies the dask backend)."""
    backend, scheduler = getattr(args, "backend", None), getattr(args, "scheduler", None)
    return ([f"compute.backend={backend or 'dask'}"] if backend or scheduler else []) + \
        ([f"compute.scheduler={scheduler}"] if scheduler else [])


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _controllers(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


# ---------------------------------------------------------------- subcommands
def cmd_worlds(args: argparse.Namespace) -> int:
    pipeline.draw_worlds(_cfg(args), args.count, args.seed, args.out)
    return 0


def cmd_ga(args: argparse.Namespace) -> int:
    pipeline.evaluate(_cfg(args), "", args.episodes, args.seed, None, None, args.workers, ("ga",), args.rate)
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    if args.dagger_model and pipeline.missing(args.dagger_model):
        return 1
    pipeline.make_dataset(cfg, Path(args.out or cfg.dataset.out_dir), args.episodes, args.workers, args.dagger_model,
                          args.round)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    pipeline.train_on(cfg, Path(args.data or cfg.dataset.out_dir), Path(args.out or cfg.run_dir), _path(args.init))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError

    try:
        pipeline.export(Path(args.checkpoint), Path(args.out), _path(args.data), args.exporter, args.opset)
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    return 0 if pipeline.verify(Path(args.checkpoint), Path(args.model), _path(args.data)) else 1


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_model import inspect, report, serve_netron

    info = inspect(args.model)
    print(json.dumps(info, indent=1) if args.json else report(info))
    if args.netron:
        serve_netron(args.model, args.port)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    if pipeline.missing(args.model):
        return 1
    pipeline.profile(args.model, args.checkpoint, args.runs, args.json)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    controllers = _controllers(args.controllers)
    if {"onnx", "hybrid"} & set(controllers) and pipeline.missing(args.model):
        return 1
    if args.suite == "robustness":
        from . import robustness

        return robustness.main(cfg, args)
    pipeline.evaluate(cfg, args.model, args.episodes, args.seed, args.json, args.png, args.workers, controllers,
                      args.rate)
    return 0


def cmd_model_card(args: argparse.Namespace) -> int:
    if args.card:
        pipeline.rate_section(Path(args.card), args.rate_eval)
        return 0
    cfg = _cfg(args)
    pipeline.model_card(cfg, Path(args.run or cfg.run_dir), args.install, args.rate_eval)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    return pipeline.run_pipeline(_cfg(args), args.config, args.install)


# ---------------------------------------------------------------- parser
RATE_HELP = "planning rate in Hz (default: the config's episode.planning_rate, the node's planning_frequency)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plan-ga-train", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    compute = argparse.ArgumentParser(add_help=False)  # on the subcommands that run episodes
    compute.add_argument("--backend", choices=BACKENDS, default=None,
                         help="where episodes run: local processes or a Dask cluster (default: compute.backend)")
    compute.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                         help="a running Dask scheduler (implies --backend dask); without one, --backend dask "
                              "starts a local cluster on 127.0.0.1")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("worlds", parents=[common], help="generate seeded worlds and draw them")
    s.add_argument("--count", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="worlds.png")
    s.set_defaults(func=cmd_worlds)

    s = sub.add_parser("ga", parents=[common, compute], help="closed-loop success and time per plan of the GA expert")
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--seed", type=int, default=100_000)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--rate", type=float, default=None, help=RATE_HELP)
    s.set_defaults(func=cmd_ga)

    s = sub.add_parser("dataset", parents=[common, compute], help="GA episodes (or a DAgger round) as .npz shards")
    s.add_argument("--out", default=None)
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--dagger-model", default=None, help="ONNX model that drives while the GA labels")
    s.add_argument("--round", type=int, default=1)
    s.set_defaults(func=cmd_dataset)

    s = sub.add_parser("train", parents=[common], help="train the network on a dataset")
    s.add_argument("--data", default=None)
    s.add_argument("--out", default=None)
    s.add_argument("--init", default=None, help="checkpoint (planner.pt) to fine-tune from")
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

    s = sub.add_parser("evaluate", parents=[common, compute], help="closed-loop evaluation on held-out worlds")
    s.add_argument("--model", default=str(REPO / "models" / "planner.onnx"))
    s.add_argument("--episodes", type=int, default=200)
    s.add_argument("--seed", type=int, default=100_000)
    s.add_argument("--json", default=None)
    s.add_argument("--png", default=None)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--controllers", default=",".join(pipeline.EVALUATED),
                   help="comma-separated: onnx (network alone), ga, naive, hybrid (network + GA fallback)")
    s.add_argument("--rate", type=float, default=None, help=RATE_HELP)
    from .robustness import add_arguments as robustness_arguments

    robustness_arguments(s)  # --suite robustness and its options
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("model-card", parents=[common], help="write MODEL_CARD.md for a run directory")
    s.add_argument("--run", default=None, help="run directory (default: the config's run_dir)")
    s.add_argument("--install", action="store_true", help="copy the model, card and pictures into models/")
    s.add_argument("--rate-eval", action="append", default=[], metavar="[HZ=]FILE",
                   help="an `evaluate --json` file at another planning rate for the rate table (repeatable)")
    s.add_argument("--card", default=None, help="only write the rate table of --rate-eval files into this card")
    s.set_defaults(func=cmd_model_card)

    s = sub.add_parser("pipeline", parents=[common, compute], help="the whole pipeline (make train)")
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
    except JobError as exc:  # an episode failed on a worker: its seed, the error, the worker's traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
