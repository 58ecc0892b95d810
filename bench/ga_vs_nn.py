"""Time per plan, GA expert vs the network (ONNX Runtime, one thread), on the same inputs.

Each planner is timed over all inputs in its own loop, as it runs in a planner process (the
headline figure). Interleaving the two on every input is also reported: the GA's large arrays
then evict the network's 1-7 MB of weights from the cache, which no deployment does.
The GA, its worlds and the planner settings are those of ``make train``'s config: the expert the
shipped model learnt from, on held-out worlds. The inputs are the feeds a ``PlannerSession`` builds at
the start of each episode, and the GA is called exactly as the session's fallback calls it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import MODEL, REPO, save, stats

from plan_ga_ros.policy import OnnxPolicy
from plan_ga_ros.session import PlannerSession
from plan_ga_ros.sim.world import local_costmap
from plan_ga_training.config import load_config, planner_config
from plan_ga_training.evaluate import held_out

CONFIG = REPO / "training" / "configs" / "robust.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--plans", type=int, default=200)
    args = p.parse_args()
    policy = OnnxPolicy(str(MODEL))
    spec = policy.spec
    train_cfg = load_config(CONFIG)
    cfg = planner_config(train_cfg, spec, "onnx")
    expert = PlannerSession(cfg, spec, None, train_cfg.ga, seed=0)  # the GA exactly as the dataset calls it
    cases = []  # the model's inputs at the start of held-out episodes, as the session builds them
    base = train_cfg.evaluate.seed_base
    for seed in range(base, base + args.plans):
        sc = held_out(train_cfg, seed).scenario  # the evaluation's own held-out episode
        world, start, goal = sc.world, sc.start, sc.goal
        session = PlannerSession(cfg, spec, policy.run)
        session.set_costmap(local_costmap(world, start), 0.0)
        session.set_odometry(start, np.zeros(3), 0.0)
        session.set_goal(goal, 0.0)
        d = session.tick(0.0)
        if d.feed is not None:
            cases.append(d.feed)

    def ga_plan(feed: dict) -> None:
        expert.ga_plan(feed, warm_start=False)  # a full search; warm starts would make it another planner per input

    def nn_plan(feed: dict) -> None:
        policy.run(feed)

    def timed(fn, feed) -> float:
        t = time.perf_counter()
        fn(feed)
        return (time.perf_counter() - t) * 1e3

    for case in cases[:10]:  # warm-up
        ga_plan(case)
        nn_plan(case)
    ga_ms = [timed(ga_plan, c) for c in cases]
    nn_ms = [timed(nn_plan, c) for c in cases for _ in range(5)]
    cold_ga, cold_nn = [], []
    for case in cases:
        cold_ga.append(timed(ga_plan, case))
        cold_nn.append(timed(nn_plan, case))
    r = {"ga": stats(ga_ms), "network": stats(nn_ms), "interleaved": {"ga": stats(cold_ga), "network": stats(cold_nn)}}
    r["speedup_p50"] = r["ga"]["p50_ms"] / r["network"]["p50_ms"]
    r["interleaved"]["speedup_p50"] = r["interleaved"]["ga"]["p50_ms"] / r["interleaved"]["network"]["p50_ms"]
    print(f"GA {r['ga']['p50_ms']:.2f}/{r['ga']['p99_ms']:.2f} ms, network {r['network']['p50_ms']:.3f}/"
          f"{r['network']['p99_ms']:.3f} ms (p50/p99): the network plans {r['speedup_p50']:.0f}x faster "
          f"({r['interleaved']['speedup_p50']:.0f}x when the two are interleaved and the cache is cold)")
    save("ga_vs_nn", r)


if __name__ == "__main__":
    main()
