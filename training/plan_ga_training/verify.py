"""PyTorch vs ONNX Runtime parity on random and real inputs at batch 1 and 8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from plan_ga_ros.contract import INPUT_NAMES, ModelSpec
from plan_ga_ros.policy import OnnxPolicy, SessionConfig

from .export import example_inputs

TOLERANCE = 1e-5


@dataclass
class Check:
    name: str
    batch: int
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff) and self.max_abs_diff < TOLERANCE)


def feeds(spec: ModelSpec, real: dict[str, np.ndarray] | None, seed: int = 0) -> list[tuple[str, int, dict]]:
    """(name, batch, feed) for random inputs and, when given, real dataset samples at batch 1 and 8."""
    out = []
    for batch in (1, 8):
        rand = example_inputs(spec, batch)
        g = torch.Generator().manual_seed(seed + batch)
        rand = [t * 4 - 2 if i else t for i, t in enumerate(rand)]  # states/goals of both signs
        rand[0] = torch.rand(rand[0].shape, generator=g)
        out.append(("random", batch, {n: t.numpy().astype(np.float32) for n, t in zip(INPUT_NAMES, rand)}))
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
