"""PyTorch vs ONNX Runtime parity on random and real inputs at batch 1 and 8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from plan_ga_ros.contract import INPUT_NAMES, ModelSpec
from plan_ga_ros.policy import OnnxPolicy, SessionConfig

TOLERANCE = 1e-5


@dataclass
class Check:
    name: str
    batch: int
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff) and self.max_abs_diff < TOLERANCE)


def random_feed(spec: ModelSpec, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Random inputs across the contract's domain: sparse obstacles with inflation-like values, any pose,
    velocities and accelerations up to 1.2× the limits, goals inside the clip distance, plausible metadata.
    """
    rng = np.random.default_rng(seed)
    lim = spec.limits
    n = spec.window_cells
    costmap = np.where(rng.random((batch, 1, n, n)) < 0.15, rng.random((batch, 1, n, n)), 0.0)
    rates = np.array([max(lim.max_v_x, -lim.min_v_x), lim.max_v_y, lim.max_omega, *lim.acceleration]) * 1.2
    state = np.concatenate([rng.uniform(-50, 50, (batch, 2)), rng.uniform(-np.pi, np.pi, (batch, 1)),
                            rng.uniform(-1, 1, (batch, 6)) * rates], axis=1)
    goal = np.concatenate([rng.uniform(-1, 1, (batch, 2)) * spec.goal_clip_distance / np.sqrt(2),
                           rng.uniform(-np.pi, np.pi, (batch, 1))], axis=1)
    meta = np.stack([rng.uniform(1.0, 10.0, batch), np.full(batch, spec.resolution)], axis=1)
    return {n_: a.astype(np.float32) for n_, a in zip(INPUT_NAMES, (costmap, state, goal, meta))}


def feeds(spec: ModelSpec, real: dict[str, np.ndarray] | None, seed: int = 0) -> list[tuple[str, int, dict]]:
    """(name, batch, feed) for random inputs and, when given, real dataset samples at batch 1 and 8."""
    out = []
    for batch in (1, 8):
        out.append(("random", batch, random_feed(spec, batch, seed + batch)))
        if real is not None:
            idx = np.random.default_rng(seed + batch).choice(len(real["label"]), size=batch, replace=False)
            out.append(("dataset", batch, {n: real[k][idx].astype(np.float32) for n, k in
                                           zip(INPUT_NAMES, ("costmap", "state", "goal", "meta"))}))
    return out


@torch.no_grad()
def verify(model: torch.nn.Module, onnx_path: str, spec: ModelSpec,
           real: dict[str, np.ndarray] | None = None) -> list[Check]:
    policy = OnnxPolicy(onnx_path, SessionConfig(warmup_runs=1))
    model = model.eval()
    checks = []
    for name, batch, feed in feeds(spec, real):
        ref = model(*(torch.from_numpy(feed[n]) for n in INPUT_NAMES)).numpy()
        got = policy.run(feed)
        checks.append(Check(name, batch, float(np.max(np.abs(ref - got)))))
    return checks
