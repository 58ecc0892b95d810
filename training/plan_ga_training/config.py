"""Training configuration: plain dataclasses with defaults, loaded from YAML and validated.

YAML 1.1 reads ``1e-3`` as a string; every value is converted to its field's type here, so
numbers always parse as numbers and a typo in a key is an error, not a silent default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plan_ga_ros import parameters
from plan_ga_ros.contract import ContractError, ModelSpec
from plan_ga_ros.ga import GAConfig
from plan_ga_ros.planner import LIMIT_NAMES, PlannerConfig
from plan_ga_ros.sim.world import FAMILIES, WorldConfig

from .compute import BACKENDS, ComputeConfig
from .episodes import EpisodeConfig


@dataclass(frozen=True)
class DatasetConfig:
    episodes: int = 400
    seed_base: int = 0
    workers: int = 2
    out_dir: str = "training/runs/default/data"
    # Each episode draws what users configure (randomize.draw: inflation, cost scaling, costmap
    # resolution and size, unknown space, odometry noise and latency, planning rate); the node is told
    # the costmap's cost scaling factor as a user sets ``inflation_decay``.
    randomize: bool = False


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = 2
    episodes: int = 150
    seed_base: int = 20_000  # round r: seed_base + 10000 r; up to 7 rounds before the evaluation seeds
    # Rounds after the first draw each episode's world family in proportion to how far the network's
    # success on it (the previous round, where it drove) is below the GA's (the GA dataset), plus
    # this floor; 0 turns it off (families drawn as ``world.kinds``). See dataset.focus_weights.
    focus_floor: float = 0.0


@dataclass(frozen=True)
class PolishConfig:
    """A last fine-tune after the DAgger rounds, on the same shards, with the final approach weighted
    (``train.goal_weight``) and collisions charged over the whole plan (``train.collision_weight``): the
    last metre and plans that collide past the safety layer's horizon are where hybrid's GA takes over
    from the network most. A round of its own (``run/rounds/polish.*``), resumable like the others;
    ``epochs`` 0: none."""
    epochs: int = 0
    lr: float = 5e-4
    goal_weight: float = 0.0
    goal_weight_radius: float = 1.0
    collision_weight: float = 0.0  # train.collision_weight: a collision anywhere in the plan charged


@dataclass(frozen=True)
class ModelConfig:
    """PlannerNet's constructor arguments besides the spec (stored in every checkpoint)."""

    hidden: int = 256  # width of the costmap layer and of the head
    # Divides inflation_decay (Nav2's cost_scaling_factor, typically 1-10) before the goal encoder.
    decay_scale: float = 10.0
    # Plans proposed per input (1: one regressed plan). K > 1: winner-takes-all training and an in-graph
    # pick among the plans that keep clear of the window's high cost (model.PlannerNet).
    hypotheses: int = 1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    finetune_epochs: int = 0  # epochs of a round that starts from the last round's checkpoint; 0 = epochs
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    patience: int = 6
    lr_patience: int = 3
    lr_factor: float = 0.5
    first_step_weight: float = 3.0
    # With model.hypotheses > 1: the share of the imitation loss spread over all hypotheses (the rest goes
    # to the one closest to the label; keeps every hypothesis near the data), and the weight of the
    # scores' cross-entropy against that closest hypothesis.
    wta_spread: float = 0.05
    score_weight: float = 0.01
    # Charge window cost above the threshold under the predicted plan's centre over the
    # safety layer's lookahead (see losses.py); 0 turns it off.
    clearance_weight: float = 1.0
    clearance_threshold: float = 0.8
    clearance_lookahead_time: float = 1.0
    # Charge window cost above collision_threshold (next to the inscribed cost: a collision) under the whole
    # predicted plan, past the safety layer's horizon, where hybrid's comparison sees the plan collide.
    collision_weight: float = 0.0
    collision_threshold: float = 0.95
    # The final approach's samples (the model's goal within goal_weight_radius m) weigh 1 + goal_weight in
    # the imitation term (losses.goal_weights); 0 weighs every sample alike.
    goal_weight: float = 0.0
    goal_weight_radius: float = 1.0
    threads: int = 2


@dataclass(frozen=True)
class EvaluateConfig:
    episodes: int = 200
    seed_base: int = 100_000
    workers: int = 2
    kinds: tuple[str, ...] = ()  # world families of the held-out evaluation; () = world.kinds


@dataclass(frozen=True)
class Config:
    seed: int = 0
    run_dir: str = "training/runs/default"
    inflation_decay: float = 3.0  # recorded in the model metadata; worlds vary it per world
    world: WorldConfig = field(default_factory=WorldConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    ga: GAConfig = field(default_factory=GAConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    polish: PolishConfig = field(default_factory=PolishConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)  # where episodes run: local processes or Dask


class ConfigError(ValueError):
    pass


def polish_config(cfg: Config) -> Config:
    """The config of the polish round: ``train`` with ``polish``'s epochs, learning rate, goal and collision
    weights."""
    p = cfg.polish
    train = dataclasses.replace(cfg.train, finetune_epochs=p.epochs, lr=p.lr, goal_weight=p.goal_weight,
                                goal_weight_radius=p.goal_weight_radius, collision_weight=p.collision_weight)
    return dataclasses.replace(cfg, train=train)


def model_spec(cfg: Config) -> ModelSpec:
    """The contract of the model this config trains (geometry and limits: the node's defaults)."""
    try:
        return ModelSpec(inflation_decay=cfg.inflation_decay, robot_radius=cfg.world.robot_radius)
    except ContractError as exc:
        raise ConfigError(str(exc)) from None


def planner_config(cfg: Config, spec: ModelSpec, planner: str = "onnx", overrides: dict[str, Any] | None = None
                   ) -> PlannerConfig:
    """The node's planning parameters (its defaults, ``parameters.defaults()``) for a model's limits and
    radius, at the episodes' planning rate, with ``planner`` as the session's mode and node parameters
    ``overrides`` (what a user sets for a randomised costmap)."""
    values = {**{k: float(getattr(spec.limits, k)) for k in LIMIT_NAMES}, "robot_radius": float(spec.robot_radius),
              "planning_frequency": float(cfg.episode.planning_rate), "planner": planner, **(overrides or {})}
    problems = parameters.validate(values)
    if problems:
        raise ConfigError("; ".join(problems))
    return PlannerConfig.from_params(values, spec)


class CheckpointError(ValueError):
    """A checkpoint that this version's PlannerNet cannot load (the CLI reports it, exit 1)."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, where) for a, v in zip(args, value))
    try:
        if tp is bool:
            if isinstance(value, str):
                return {"true": True, "false": False}[value.lower()]
            return bool(value)
        if tp is int:
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if tp is float:
            return float(value)
        if tp is str:
            return str(value)
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{where}: {value!r} is not a valid {tp.__name__}") from None
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Config from YAML (or defaults) with ``section.key=value`` overrides from the command line."""
    data: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    cfg = from_dict(Config, data)
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    dagger_end = cfg.dagger.seed_base + 10_000 * cfg.dagger.rounds + cfg.dagger.episodes  # last round's end
    checks = [
        (cfg.dataset.episodes > 0, "dataset.episodes must be > 0"),
        (cfg.dataset.workers >= 1, "dataset.workers must be >= 1"),
        (cfg.compute.backend in BACKENDS, f"compute.backend must be one of {', '.join(BACKENDS)}"),
        (not cfg.compute.scheduler or cfg.compute.backend == "dask", "compute.scheduler needs compute.backend: dask"),
        (0.0 < cfg.train.val_fraction < 0.5, "train.val_fraction must be in (0, 0.5)"),
        (cfg.train.lr > 0, "train.lr must be > 0"),
        (cfg.train.epochs >= 1 and cfg.train.finetune_epochs >= 0,
         "train.epochs must be >= 1 and train.finetune_epochs >= 0 (0: as many as train.epochs)"),
        (cfg.train.batch_size > 0, "train.batch_size must be > 0"),
        (cfg.ga.population > cfg.ga.elite, "ga.population must exceed ga.elite"),
        (cfg.train.clearance_weight >= 0, "train.clearance_weight must be >= 0"),
        (0.0 <= cfg.train.clearance_threshold < 1.0, "train.clearance_threshold must be in [0, 1)"),
        (cfg.train.clearance_lookahead_time > 0, "train.clearance_lookahead_time must be > 0"),
        (cfg.train.goal_weight >= 0, "train.goal_weight must be >= 0"),
        (cfg.train.collision_weight >= 0 and 0.0 <= cfg.train.collision_threshold < 1.0,
         "train.collision_weight must be >= 0 and train.collision_threshold in [0, 1)"),
        (cfg.train.goal_weight_radius > 0, "train.goal_weight_radius must be > 0"),
        (min(cfg.polish.epochs, cfg.polish.goal_weight, cfg.polish.collision_weight) >= 0 and cfg.polish.lr > 0
         and cfg.polish.goal_weight_radius > 0, "polish.epochs, polish.goal_weight and polish.collision_weight "
         "must be >= 0, polish.lr and polish.goal_weight_radius > 0"),
        (cfg.model.hidden > 0 and cfg.model.decay_scale > 0, "model.hidden and model.decay_scale must be > 0"),
        (1 <= cfg.model.hypotheses <= 16, "model.hypotheses must be in 1..16"),
        (0.0 <= cfg.train.wta_spread <= 1.0 and cfg.train.score_weight >= 0,
         "train.wta_spread must be in [0, 1] and train.score_weight >= 0"),
        (min(cfg.episode.physics_rate, cfg.episode.costmap_rate, cfg.episode.costmap_size,
             cfg.episode.costmap_resolution, cfg.episode.max_time) > 0,
         "episode rates, costmap size and resolution, and max_time must be > 0"),
        (cfg.episode.physics_rate >= cfg.episode.planning_rate,
         "episode.physics_rate must be at least episode.planning_rate"),
        (min(cfg.episode.velocity_noise, cfg.episode.odom_noise, cfg.episode.odom_latency) >= 0,
         "episode noise and latency must be >= 0"),
        (cfg.dagger.focus_floor >= 0, "dagger.focus_floor must be >= 0"),
        (bool(cfg.world.kinds) and set(cfg.world.kinds) | set(cfg.evaluate.kinds) <= set(FAMILIES),
         f"world.kinds and evaluate.kinds must be world families: {', '.join(FAMILIES)}"),
        (cfg.dagger.episodes <= 10_000, "dagger.episodes must be <= 10000 (each round owns 10000 seeds)"),
        (cfg.evaluate.seed_base >= dagger_end and cfg.dagger.seed_base >= cfg.dataset.seed_base + cfg.dataset.episodes,
         "seed ranges must be disjoint and in this order: dataset "
         f"[{cfg.dataset.seed_base}, {cfg.dataset.seed_base + cfg.dataset.episodes}) < DAgger "
         f"[{cfg.dagger.seed_base + 10_000}, {dagger_end}) (round r starts at dagger.seed_base + 10000 r) "
         f"< evaluate [{cfg.evaluate.seed_base}, ...)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    spec = model_spec(cfg)
    clip = spec.goal_clip_distance
    for where, radius in (("train", cfg.train.goal_weight_radius), ("polish", cfg.polish.goal_weight_radius)):
        if radius >= clip:  # every goal (clipped to clip) would count as the final approach: no weighting
            raise ConfigError(f"{where}.goal_weight_radius must be below the model's goal clip distance ({clip:g} m)")
    planner_config(cfg, spec)  # the node's parameter table checks the planning rate and limits


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
