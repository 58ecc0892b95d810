"""The model interface shared by the node and the training package.

Names, shapes and dtypes of the ONNX inputs and output, the metadata schema stored in the
ONNX file's ``metadata_props`` and the checks the node runs when it loads a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SCHEMA_VERSION = 1
METADATA_KEY = "plan_ga_ros"

COSTMAP_INPUT = "costmap_input"
STATE_INPUT = "robot_state_input"
GOAL_INPUT = "goal_relative_input"
METADATA_INPUT = "costmap_metadata_input"
OUTPUT = "output"
INPUT_NAMES: tuple[str, ...] = (COSTMAP_INPUT, STATE_INPUT, GOAL_INPUT, METADATA_INPUT)

WINDOW_CELLS = 50
STEPS = 20
CONTROLS: tuple[str, ...] = ("v_x", "v_y", "omega")
STATE_FIELDS: tuple[str, ...] = ("x", "y", "theta", "v_x", "v_y", "omega", "a_x", "a_y", "alpha")
KINEMATICS = ("diff_drive", "omni")

# Sane ranges of a model's geometry, checked at load: metadata outside them could shrink the
# collision check to nothing (a 1 µs step, one step, a 0.1 mm cell) or exhaust memory.
SANE_RANGES: dict[str, tuple[float, float]] = {
    "window_cells": (16, 256),
    "resolution": (0.02, 0.5),
    "dt": (0.05, 0.5),
    "steps": (5, 100),
    "goal_clip_distance": (0.1, 10.0),
    "robot_radius": (0.01, 2.0),
    "inflation_decay": (0.0, 100.0),
}
MIN_HORIZON_S = 1.0  # steps × dt: a plan must cover at least this long


class ContractError(ValueError):
    """A model or its metadata does not obey the interface."""


@dataclass(frozen=True)
class Limits:
    """Velocity (m/s, rad/s) and acceleration (m/s², rad/s²) limits, robot frame."""

    min_v_x: float = 0.0
    max_v_x: float = 0.5
    max_v_y: float = 0.0
    max_omega: float = 1.5
    max_a_x: float = 1.0
    max_a_y: float = 0.0
    max_alpha: float = 3.0

    def __post_init__(self) -> None:
        if not self.min_v_x <= self.max_v_x:
            raise ContractError(f"min_v_x {self.min_v_x} > max_v_x {self.max_v_x}")
        for name in ("max_v_y", "max_omega", "max_a_x", "max_a_y", "max_alpha"):
            if not getattr(self, name) >= 0.0:
                raise ContractError(f"limit {name} must be >= 0, got {getattr(self, name)}")

    @property
    def velocity_low(self) -> tuple[float, float, float]:
        return (self.min_v_x, -self.max_v_y, -self.max_omega)

    @property
    def velocity_high(self) -> tuple[float, float, float]:
        return (self.max_v_x, self.max_v_y, self.max_omega)

    @property
    def acceleration(self) -> tuple[float, float, float]:
        return (self.max_a_x, self.max_a_y, self.max_alpha)


@dataclass(frozen=True)
class ModelSpec:
    """Everything a consumer needs to know about a model; stored as JSON in the ONNX file."""

    window_cells: int = WINDOW_CELLS
    resolution: float = 0.1
    dt: float = 0.1
    steps: int = STEPS
    controls: tuple[str, ...] = CONTROLS
    limits: Limits = field(default_factory=Limits)
    kinematics: str = "diff_drive"
    goal_clip_distance: float = 2.0
    inflation_decay: float = 3.0
    robot_radius: float = 0.2
    training_data_hash: str = ""
    git_commit: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.kinematics not in KINEMATICS:
            raise ContractError(f"kinematics must be one of {KINEMATICS}, got {self.kinematics!r}")
        for name, (lo, hi) in SANE_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ContractError(f"{name}={value!r} is outside its sane range [{lo}, {hi}]")
        if self.steps * self.dt < MIN_HORIZON_S - 1e-9:
            raise ContractError(f"steps × dt = {self.steps * self.dt:.3f} s is shorter than {MIN_HORIZON_S} s")
        if self.goal_clip_distance > 0.5 * self.window_cells * self.resolution + 1e-9:
            raise ContractError(f"goal_clip_distance {self.goal_clip_distance} m lies outside the "
                                f"{self.window_cells * self.resolution:.2f} m window")
        for name in ("min_v_x", "max_v_x", "max_v_y", "max_omega", "max_a_x", "max_a_y", "max_alpha"):
            if not abs(getattr(self.limits, name)) <= 50.0:
                raise ContractError(f"limit {name}={getattr(self.limits, name)!r} is outside [-50, 50]")
        if tuple(self.controls) != CONTROLS:
            raise ContractError(f"controls must be {CONTROLS}, got {tuple(self.controls)}")

    @property
    def output_size(self) -> int:
        return self.steps * len(self.controls)

    def to_json(self) -> str:
        d = asdict(self)
        d["controls"] = list(self.controls)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"metadata under '{METADATA_KEY}' is not valid JSON: {exc}") from exc
        if not isinstance(d, dict):
            raise ContractError(f"metadata under '{METADATA_KEY}' must be a JSON object")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ContractError(
                f"model metadata schema_version {version!r} is not supported "
                f"(this node reads version {SCHEMA_VERSION}); re-export the model"
            )
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        try:
            kwargs["limits"] = Limits(**d.get("limits", {}))
            kwargs["controls"] = tuple(d.get("controls", CONTROLS))
            return cls(**kwargs)
        except TypeError as exc:
            raise ContractError(f"model metadata has unexpected fields: {exc}") from exc

    def with_overrides(self, **kwargs: Any) -> ModelSpec:
        return replace(self, **kwargs)


def input_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes (batch axis excluded) of the four inputs."""
    n = spec.window_cells
    return {
        COSTMAP_INPUT: (1, n, n),
        STATE_INPUT: (len(STATE_FIELDS),),
        GOAL_INPUT: (3,),
        METADATA_INPUT: (2,),
    }


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None or str for symbolic dims) and element type name of a graph value."""

    name: str
    shape: Sequence[Any]
    dtype: str


def check_io(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo], spec: ModelSpec) -> None:
    """Raise ContractError unless the graph's inputs/outputs match the contract for ``spec``."""
    by_name = {t.name: t for t in inputs}
    missing = [n for n in INPUT_NAMES if n not in by_name]
    extra = [t.name for t in inputs if t.name not in INPUT_NAMES]
    if missing or extra:
        raise ContractError(
            f"model inputs {[t.name for t in inputs]} do not match the contract "
            f"{list(INPUT_NAMES)} (missing {missing}, unexpected {extra})"
        )
    expected = input_shapes(spec)
    for name in INPUT_NAMES:
        _check_tensor(by_name[name], expected[name])
    out = [t for t in outputs if t.name == OUTPUT]
    if not out:
        raise ContractError(f"model has no output named '{OUTPUT}' (has {[t.name for t in outputs]})")
    _check_tensor(out[0], (spec.output_size,))


def _check_tensor(info: TensorInfo, per_sample: tuple[int, ...]) -> None:
    if info.dtype not in ("tensor(float)", "float32", "float"):
        raise ContractError(f"'{info.name}' has dtype {info.dtype}, expected float32")
    shape = list(info.shape)
    if len(shape) != 1 + len(per_sample):
        raise ContractError(
            f"'{info.name}' has rank {len(shape)} {shape}, expected [B, {', '.join(map(str, per_sample))}]"
        )
    for got, want in zip(shape[1:], per_sample):
        if isinstance(got, int) and got != want:
            raise ContractError(f"'{info.name}' has shape {shape}, expected [B, {', '.join(map(str, per_sample))}]")


def spec_from_metadata(props: Mapping[str, str]) -> ModelSpec | None:
    """The ModelSpec stored in ``metadata_props``; None if the model carries none."""
    if METADATA_KEY not in props:
        return None
    return ModelSpec.from_json(props[METADATA_KEY])
