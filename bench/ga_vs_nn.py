"""Time per plan, GA expert vs the network (ONNX Runtime, one thread), on the same inputs.

Each planner is timed over all inputs in its own loop, as it runs in a planner process (the
headline figure). Interleaving the two on every input is also reported: the GA's large arrays
then evict the network's 1-7 MB of weights from the cache, which no deployment does.
"""

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

    def ga_plan(feed: dict) -> None:
        ga.reset()  # a full GA search; warm starts would make it a different planner per input
        ga.plan(feed[COSTMAP_INPUT][0, 0], np.zeros(3), feed[GOAL_INPUT][0].astype(float), spec.goal_clip_distance)

    def timed(fn, feed) -> float:
        t = time.perf_counter()
        fn(feed)
        return (time.perf_counter() - t) * 1e3

    for feed in feeds[:10]:  # warm-up
        ga_plan(feed)
        policy.run(feed)
    ga_ms = [timed(ga_plan, f) for f in feeds]
    nn_ms = [timed(policy.run, f) for f in feeds for _ in range(5)]
    cold_ga, cold_nn = [], []
    for feed in feeds:
        cold_ga.append(timed(ga_plan, feed))
        cold_nn.append(timed(policy.run, feed))
    r = {"ga": stats(ga_ms), "network": stats(nn_ms), "interleaved": {"ga": stats(cold_ga), "network": stats(cold_nn)}}
    r["speedup_p50"] = r["ga"]["p50_ms"] / r["network"]["p50_ms"]
    r["interleaved"]["speedup_p50"] = r["interleaved"]["ga"]["p50_ms"] / r["interleaved"]["network"]["p50_ms"]
    print(f"GA {r['ga']['p50_ms']:.2f}/{r['ga']['p99_ms']:.2f} ms, network {r['network']['p50_ms']:.3f}/"
          f"{r['network']['p99_ms']:.3f} ms (p50/p99): the network plans {r['speedup_p50']:.0f}x faster "
          f"({r['interleaved']['speedup_p50']:.0f}x when the two are interleaved and the cache is cold)")
    save("ga_vs_nn", r)


if __name__ == "__main__":
    main()
