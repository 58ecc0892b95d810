"""Time per plan, GA expert vs the network (ONNX Runtime, one thread), on the same inputs."""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import MODEL, save, stats

from plan_ga_ros.contract import COSTMAP_INPUT, GOAL_INPUT
from plan_ga_ros.planner import PlannerConfig, RobotSnapshot, build_inputs
from plan_ga_ros.policy import OnnxPolicy
from plan_ga_ros.world import local_costmap, make_episode
from plan_ga_training.ga import GAConfig, GAPlanner


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--plans", type=int, default=200)
    args = p.parse_args()
    policy = OnnxPolicy(str(MODEL))
    spec = policy.spec
    cfg = PlannerConfig(limits=spec.limits, goal_clip_distance=spec.goal_clip_distance)
    ga = GAPlanner(spec, spec.limits, spec.robot_radius, GAConfig(), seed=0)
    feeds = []
    for seed in range(100_000, 100_000 + args.plans):
        world, start, goal = make_episode(seed)
        feeds.append(build_inputs(local_costmap(world, start), RobotSnapshot(start, np.zeros(3), np.zeros(3)), goal,
                                  spec, cfg))
    ga_ms, nn_ms = [], []
    for feed in feeds:
        ga.reset()
        t = time.perf_counter()
        ga.plan(feed[COSTMAP_INPUT][0, 0], np.zeros(3), feed[GOAL_INPUT][0].astype(float), spec.goal_clip_distance)
        ga_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        policy.run(feed)
        nn_ms.append((time.perf_counter() - t) * 1e3)
    r = {"ga": stats(ga_ms), "network": stats(nn_ms)}
    r["speedup_p50"] = r["ga"]["p50_ms"] / r["network"]["p50_ms"]
    print(f"GA {r['ga']['p50_ms']:.2f}/{r['ga']['p99_ms']:.2f} ms, network {r['network']['p50_ms']:.3f}/"
          f"{r['network']['p99_ms']:.3f} ms (p50/p99): the network plans {r['speedup_p50']:.0f}x faster")
    save("ga_vs_nn", r)


if __name__ == "__main__":
    main()
