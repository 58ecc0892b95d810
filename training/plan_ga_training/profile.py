"""Latency of ONNX Runtime vs PyTorch eager at batch 1 on one thread, and the per-tick budget."""

from __future__ import annotations

import time

import numpy as np
import torch

from plan_ga_ros.contract import INPUT_NAMES, ModelSpec
from plan_ga_ros.planner import PlannerConfig, RobotSnapshot, plan_step
from plan_ga_ros.policy import OnnxPolicy, SessionConfig
from plan_ga_ros.sim.world import WorldConfig, local_costmap

from .episodes import make_episode


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean())}


@torch.no_grad()
def profile(onnx_path: str, model: torch.nn.Module | None, spec: ModelSpec, runs: int = 1000,
            warmup: int = 50) -> dict:
    """Interleaved timing (same inputs, same moment) so machine noise hits both alike."""
    torch.set_num_threads(1)
    policy = OnnxPolicy(onnx_path, SessionConfig(intra_op_num_threads=1, warmup_runs=warmup))
    world, start, goal = make_episode(123_456, WorldConfig())
    grid = local_costmap(world, start)
    robot = RobotSnapshot(start, np.zeros(3), np.zeros(3))
    cfg = PlannerConfig(limits=spec.limits, robot_radius=spec.robot_radius, goal_clip_distance=spec.goal_clip_distance)
    from plan_ga_ros.planner import build_inputs

    feed = build_inputs(grid, robot, goal, spec, cfg)
    tensors = [torch.from_numpy(feed[n]) for n in INPUT_NAMES]
    if model is not None:
        model = model.eval()
        for _ in range(warmup):
            model(*tensors)
    ort_ms, torch_ms, tick_ms = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        policy.run(feed)
        t1 = time.perf_counter()
        ort_ms.append((t1 - t0) * 1e3)
        if model is not None:
            model(*tensors)
            torch_ms.append((time.perf_counter() - t1) * 1e3)
        t2 = time.perf_counter()
        plan_step(policy.run, spec, cfg, grid, robot, goal, np.zeros(3))
        tick_ms.append((time.perf_counter() - t2) * 1e3)
    out = {"onnxruntime": _stats(ort_ms), "tick": _stats(tick_ms), "runs": runs, "threads": 1, "batch": 1}
    if torch_ms:
        out["pytorch"] = _stats(torch_ms)
        out["speedup_p50"] = out["pytorch"]["p50_ms"] / out["onnxruntime"]["p50_ms"]
    out["budget"] = {f"{hz}Hz": {"period_ms": 1000.0 / hz, "tick_p99_ms": out["tick"]["p99_ms"],
                                 "fraction": out["tick"]["p99_ms"] / (1000.0 / hz),
                                 "fits": out["tick"]["p99_ms"] < 1000.0 / hz} for hz in (10, 20)}
    return out


def report(r: dict) -> str:
    lines = [f"batch 1, {r['threads']} thread, {r['runs']} interleaved runs after warm-up",
             f"{'':<22}{'p50 ms':>10}{'p99 ms':>10}",
             f"{'ONNX Runtime':<22}{r['onnxruntime']['p50_ms']:>10.3f}{r['onnxruntime']['p99_ms']:>10.3f}"]
    if "pytorch" in r:
        lines.append(f"{'PyTorch eager':<22}{r['pytorch']['p50_ms']:>10.3f}{r['pytorch']['p99_ms']:>10.3f}")
        lines.append(f"speedup (p50): {r['speedup_p50']:.1f}x")
    lines.append(f"{'full tick (6 m map)':<22}{r['tick']['p50_ms']:>10.3f}{r['tick']['p99_ms']:>10.3f}")
    for hz, b in r["budget"].items():
        verdict = "fits" if b["fits"] else "DOES NOT FIT"
        lines.append(f"{hz}: period {b['period_ms']:.0f} ms, tick p99 uses {100 * b['fraction']:.2f}% — {verdict}")
    return "\n".join(lines)
