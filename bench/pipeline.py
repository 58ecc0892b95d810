"""One planning tick split by stage, for source grids of 60×60, 200×200 and 1000×1000 cells at 0.05 m.

Stages: message → numpy (OccupancyGrid and Odometry), tensors, inference, safety and rollout,
message building (trajectory, path, command). Median/p99 over --ticks ticks.
"""

from __future__ import annotations

import argparse
import array
import time

import numpy as np
from common import MODEL, save, stats
from nav_msgs.msg import OccupancyGrid, Odometry

from plan_ga_ros.planner import PlannerConfig, RobotSnapshot, plan_step
from plan_ga_ros.policy import OnnxPolicy
from plan_ga_ros.ros import conversions as conv


def grid_message(cells: int, seed: int = 0) -> OccupancyGrid:
    rng = np.random.default_rng(seed)
    data = np.where(rng.random((cells, cells)) < 0.03, 100, 0).astype(np.int8)
    msg = OccupancyGrid()
    msg.header.frame_id = "odom"
    msg.info.resolution = 0.05
    msg.info.width = msg.info.height = cells
    msg.info.origin.position.x = msg.info.origin.position.y = -cells * 0.05 / 2
    msg.info.origin.orientation.w = 1.0
    msg.data = array.array("b", data.tobytes())
    return msg


def run(cells: int, ticks: int, policy: OnnxPolicy) -> dict:
    spec = policy.spec
    cfg = PlannerConfig(limits=spec.limits, goal_clip_distance=spec.goal_clip_distance)
    grid_msg = grid_message(cells)
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.orientation.w = 1.0
    odom.twist.twist.linear.x = 0.3
    goal = np.array([1.5, 0.5, 0.0])
    times: dict[str, list[float]] = {k: [] for k in ("convert", "tensors", "inference", "safety", "messages",
                                                      "total")}
    rng = np.random.default_rng(1)
    path_buffer = conv.PathBuffer()  # as the node does
    for _ in range(ticks):
        odom.pose.pose.position.x, odom.pose.pose.position.y = rng.uniform(-0.5, 0.5, 2)
        t0 = time.perf_counter()
        grid = conv.grid_from_msg(grid_msg, 100_000_000)
        pose, vel = conv.odometry_from_msg(odom)
        t1 = time.perf_counter()
        robot = RobotSnapshot(pose, vel, np.zeros(3))
        plan = plan_step(policy.run, spec, cfg, grid, robot, goal, vel)  # the node's own tick
        t2 = time.perf_counter()
        conv.trajectory_msg(plan.controls.astype(np.float32))
        path_buffer.fill(plan.path, "odom", 0.0, spec.dt)
        conv.twist_msg(plan.command)
        t5 = time.perf_counter()
        times["convert"].append((t1 - t0) * 1e3)
        for stage in ("tensors", "inference", "safety"):  # plan_step times its own stages
            times[stage].append(plan.timings_ms[stage])
        times["messages"].append((t5 - t2) * 1e3)
        times["total"].append((t5 - t0) * 1e3)
    return {k: stats(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ticks", type=int, default=2000)
    p.add_argument("--model", default=str(MODEL))
    args = p.parse_args()
    policy = OnnxPolicy(args.model)
    out = {}
    for cells in (60, 200, 1000):
        out[f"{cells}x{cells}"] = r = run(cells, args.ticks, policy)
        print(f"{cells:>5}x{cells:<5} " + "  ".join(f"{k} {v['p50_ms']:.3f}/{v['p99_ms']:.3f}" for k, v in r.items())
              + "  (p50/p99 ms)")
    save("pipeline", {"ticks": args.ticks, "grids": out})


if __name__ == "__main__":
    main()
