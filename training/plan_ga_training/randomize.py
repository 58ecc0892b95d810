"""Domain randomisation of what users configure: each episode's costmap and robot settings, drawn from a seed.

A robot's costmap is set up by its user, not by this project: the inflation radius (0.3–1.2 m),
Nav2's cost_scaling_factor (1–10), the local costmap's resolution (0.025–0.1 m), size and update
rate, unknown space, odometry noise and latency, and the node's planning rate (10–20 Hz, the
node's default 20 Hz included). ``draw(seed)`` picks one such setting; the world-side part changes
``WorldConfig`` (the world itself stays the one of the seed: only its inflation and unknown patches
change), the episode-side part changes ``EpisodeConfig``. The draw has its own random stream, so it
never disturbs the world generator's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from plan_ga_ros import parameters
from plan_ga_ros.sim.world import Scenario, WorldConfig, make_scenario

from .episodes import EpisodeConfig

if TYPE_CHECKING:
    from .config import Config

STREAM = 0x5EED  # mixed into the seed: the draw's random stream is not the world's


@dataclass(frozen=True)
class Ranges:
    """Where each randomised setting is drawn from (uniform unless said otherwise)."""

    inflation_radius: tuple[float, float] = (0.3, 1.2)  # m
    cost_scaling_factor: tuple[float, float] = (1.0, 10.0)  # log-uniform (Nav2 inflation decay)
    costmap_resolution: tuple[float, float] = (0.025, 0.1)  # m, rounded to 5 mm
    costmap_size: tuple[float, float] = (3.0, 8.0)  # m: Nav2's default local costmap is 3 m
    costmap_rate: tuple[float, float] = (2.0, 10.0)  # Hz
    unknown_probability: float = 0.3  # share of episodes with unknown patches
    unknown_fraction: tuple[float, float] = (0.05, 0.3)  # of the free area, when there are any
    odom_noise: tuple[float, float] = (0.0, 0.03)  # m/s, rad/s: std on the reported twist
    odom_latency: tuple[float, float] = (0.0, 0.06)  # s
    velocity_noise: tuple[float, float] = (0.0, 0.05)  # relative slip of the base
    planning_rate: tuple[float, float] = (10.0, 20.0)  # Hz
    default_rate_probability: float = 0.3  # share planned exactly at the node's default rate


@dataclass(frozen=True)
class Draw:
    """One episode's settings as changes to the configs (field name → value)."""

    world: dict[str, Any]
    episode: dict[str, Any]
    # Node parameters a user sets to match such a costmap (inflation_decay = the cost scaling factor,
    # allow_unknown where the costmap has unknown space); not applied by ``apply``: whether the
    # model is told the decay is the training pipeline's choice.
    planner: dict[str, Any]

    def apply(self, world: WorldConfig, episode: EpisodeConfig) -> tuple[WorldConfig, EpisodeConfig]:
        """The configs with this draw's changes (fields a config does not have are left out)."""
        w = {k: v for k, v in self.world.items() if k in _names(WorldConfig)}
        e = {k: v for k, v in self.episode.items() if k in _names(EpisodeConfig)}
        return replace(world, **w), replace(episode, **e)


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def draw(seed: int, ranges: Ranges = Ranges()) -> Draw:
    """The randomised settings of episode ``seed`` (deterministic)."""
    rng = np.random.default_rng([int(seed), STREAM])
    radius = float(rng.uniform(*ranges.inflation_radius))
    decay = float(np.exp(rng.uniform(*np.log(ranges.cost_scaling_factor))))
    resolution = float(np.round(rng.uniform(*ranges.costmap_resolution) / 0.005) * 0.005)
    size = float(rng.uniform(*ranges.costmap_size))
    costmap_rate = float(rng.uniform(*ranges.costmap_rate))
    unknown = float(rng.uniform(*ranges.unknown_fraction)) if rng.random() < ranges.unknown_probability else 0.0
    odom_noise = float(rng.uniform(*ranges.odom_noise))
    latency = float(rng.uniform(*ranges.odom_latency))
    slip = float(rng.uniform(*ranges.velocity_noise))
    default_rate = float(parameters.default("planning_frequency"))
    rate = default_rate if rng.random() < ranges.default_rate_probability else float(rng.uniform(*ranges.planning_rate))
    return Draw(
        world={"inflation_radius": round(radius, 3), "decay_range": (decay, decay), "unknown_fraction": unknown},
        episode={"planning_rate": round(rate, 2), "costmap_rate": round(costmap_rate, 2),
                 "costmap_size": round(size, 2), "costmap_resolution": resolution, "odom_noise": odom_noise,
                 "odom_latency": latency, "velocity_noise": slip},
        planner={"inflation_decay": decay, "allow_unknown": unknown > 0.0},
    )


def randomized(world: WorldConfig, episode: EpisodeConfig, seed: int, ranges: Ranges = Ranges()
               ) -> tuple[WorldConfig, EpisodeConfig]:
    """``world`` and ``episode`` with episode ``seed``'s randomised settings."""
    return draw(seed, ranges).apply(world, episode)


@dataclass(frozen=True)
class Setting:
    """Everything one recorded episode is run with: its scenario (world, start, goal or path), the
    config with the episode's world and episode sections (time budget included) and the node
    parameters a user would set for that costmap."""

    scenario: Scenario
    cfg: Config
    planner: dict[str, Any]

    @property
    def goal(self) -> np.ndarray:
        """What the session is given: the path to follow (path families) or the goal pose."""
        return self.scenario.path if self.scenario.path is not None else self.scenario.goal

    def describe(self) -> dict[str, Any]:
        """The setting as JSON-ready values (stored with each shard)."""
        e = self.cfg.episode
        return {"family": self.scenario.family, "variant": self.scenario.variant,
                "inflation_radius": self.cfg.world.inflation_radius,
                "inflation_decay": float(self.scenario.world.inflation_decay),
                "planning_rate": e.planning_rate, "costmap_resolution": e.costmap_resolution,
                "costmap_size": e.costmap_size, "unknown_fraction": self.cfg.world.unknown_fraction,
                "route_length": round(self.scenario.route_length, 3), "max_time": e.max_time}


def setting(cfg: Config, seed: int, family: str = "", randomize: bool = False) -> Setting:
    """Episode ``seed``'s setting: ``family`` ("" = drawn from ``cfg.world.kinds``), with the draw's
    randomised costmap, odometry and planning rate when ``randomize``."""
    world, episode, planner = cfg.world, cfg.episode, {}
    if randomize:
        d = draw(seed)
        world, episode = d.apply(world, episode)
        planner = dict(d.planner)
    sc = make_scenario(seed, world, family or None)
    episode = replace(episode, max_time=sc.time_budget(episode.max_time))
    return Setting(sc, replace(cfg, world=world, episode=episode), planner)
