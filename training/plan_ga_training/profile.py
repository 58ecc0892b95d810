"""Latency of ONNX Runtime vs PyTorch eager at batch 1 on one thread, and the per-tick budget.

The tick is the node's: ``PlannerSession.tick`` (gates, tensors, inference, safety layer) on a held-out
world's 6 m local costmap, with fresh odometry each tick, as the node runs it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from plan_ga_ros.contract import INPUT_NAMES
from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.policy import OnnxPolicy, SessionConfig
from plan_ga_ros.session import PlannerSession
from plan_ga_ros.sim.world import WorldConfig, local_costmap, make_episode

BUDGET_RATES_HZ = (10, 20)


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean())}


@torch.no_grad()
def profile(onnx_path: str, model: torch.nn.Module | None, runs: int = 1000, warmup: int = 50) -> dict:
    """Interleaved timing (same inputs, same moment) so machine noise hits both alike."""
    torch.set_num_threads(1)
    policy = OnnxPolicy(onnx_path, SessionConfig(intra_op_num_threads=1, warmup_runs=warmup))
    spec = policy.spec
    world, start, goal = make_episode(123_456, WorldConfig())
    session = PlannerSession(PlannerConfig.from_params({"planner": "onnx"}, spec), spec, policy.run)
    grid = local_costmap(world, start)
    session.set_costmap(grid, 0.0)
    session.set_goal(goal, 0.0)
    session.set_odometry(start, np.zeros(3), 0.0)
    d = session.tick(0.0)
    if d.feed is None:
        raise RuntimeError(f"the profiling tick built no inputs: {d.message}")
    tensors = [torch.from_numpy(d.feed[n]) for n in INPUT_NAMES]
    if model is not None:
        model = model.eval()
        for _ in range(warmup):
            model(*tensors)
    ort_ms, torch_ms, tick_ms = [], [], []
    period = session.config.control_period
    for i in range(runs):
        t0 = time.perf_counter()
        policy.run(d.feed)
        t1 = time.perf_counter()
        ort_ms.append((t1 - t0) * 1e3)
        if model is not None:
            model(*tensors)
            torch_ms.append((time.perf_counter() - t1) * 1e3)
        now = (i + 1) * period
        session.set_odometry(start, np.zeros(3), now)  # the robot holds still: every tick plans the same
        session.set_costmap(grid, now)
        t2 = time.perf_counter()
        session.tick(now)
        tick_ms.append((time.perf_counter() - t2) * 1e3)
    out = {"onnxruntime": _stats(ort_ms), "tick": _stats(tick_ms), "runs": runs, "threads": 1, "batch": 1}
    if torch_ms:
        out["pytorch"] = _stats(torch_ms)
        out["speedup_p50"] = out["pytorch"]["p50_ms"] / out["onnxruntime"]["p50_ms"]
    out["budget"] = {f"{hz}Hz": {"period_ms": 1000.0 / hz, "tick_p99_ms": out["tick"]["p99_ms"],
                                 "fraction": out["tick"]["p99_ms"] / (1000.0 / hz),
                                 "fits": out["tick"]["p99_ms"] < 1000.0 / hz} for hz in BUDGET_RATES_HZ}
    return out


def report(r: dict) -> str:
    lines = [f"batch 1, {r['threads']} thread, {r['runs']} interleaved runs after warm-up",
             f"{'':<22}{'p50 ms':>10}{'p99 ms':>10}",
             f"{'ONNX Runtime':<22}{r['onnxruntime']['p50_ms']:>10.3f}{r['onnxruntime']['p99_ms']:>10.3f}"]
    if "pytorch" in r:
        lines.append(f"{'PyTorch eager':<22}{r['pytorch']['p50_ms']:>10.3f}{r['pytorch']['p99_ms']:>10.3f}")
        lines.append(f"speedup (p50): {r['speedup_p50']:.1f}x")
    lines.append(f"{'session tick (6 m map)':<22}{r['tick']['p50_ms']:>10.3f}{r['tick']['p99_ms']:>10.3f}")
    for hz, b in r["budget"].items():
        verdict = "fits" if b["fits"] else "DOES NOT FIT"
        lines.append(f"{hz}: period {b['period_ms']:.0f} ms, tick p99 uses {100 * b['fraction']:.2f}% — {verdict}")
    return "\n".join(lines)
