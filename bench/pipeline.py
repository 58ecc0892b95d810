"""One planning tick split by stage, for source grids of 60×60, 200×200 and 1000×1000 cells at 0.05 m.

Each tick is the node's: messages → numpy (OccupancyGrid and Odometry), ``PlannerSession.set_costmap``
(validation and max-pooling of fine grids, done when a costmap arrives), then ``PlannerSession.tick``
(gates, tensors, inference, safety and rollout) with ``planner: onnx`` (the network's tick; the GA
fallback is timed in ga_vs_nn.py), then the messages (trajectory, path, command). A costmap arrives
with every tick here (the worst case; Nav2 publishes it at a few Hz). Median/p99 over --ticks ticks.
"""

from __future__ import annotations

import argparse
import array
import time

import numpy as np
from common import MODEL, save, stats
from nav_msgs.msg import OccupancyGrid, Odometry

from plan_ga_ros.planner import PlannerConfig
from plan_ga_ros.policy import OnnxPolicy
from plan_ga_ros.ros import conversions as conv
from plan_ga_ros.session import PlannerSession

STAGES = ("convert", "costmap", "tensors", "inference", "safety", "tick", "messages", "total")


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
    session = PlannerSession(PlannerConfig.from_params({"planner": "onnx"}, spec), spec, policy.run)
    period = session.config.control_period
    grid_msg = grid_message(cells)
    odom = Odometry()
    odom.header.frame_id = "odom"
    odom.pose.pose.orientation.w = 1.0
    odom.twist.twist.linear.x = 0.3
    session.set_goal(np.array([1.5, 0.5, 0.0]), 0.0, "odom")
    times: dict[str, list[float]] = {k: [] for k in STAGES}
    rng = np.random.default_rng(1)
    path_buffer = conv.PathBuffer()  # as the node does
    executed = 0
    for i in range(ticks):
        now = i * period
        odom.pose.pose.position.x, odom.pose.pose.position.y = rng.uniform(-0.5, 0.5, 2)
        t0 = time.perf_counter()
        grid = conv.grid_from_msg(grid_msg, 100_000_000)
        pose, vel = conv.odometry_from_msg(odom)
        t1 = time.perf_counter()
        session.set_costmap(grid, now)
        t2 = time.perf_counter()
        session.set_odometry(pose, vel, now, "odom")
        d = session.tick(now)  # the node's own tick
        t3 = time.perf_counter()
        if d.executing:  # a rejected plan publishes only the zero command
            executed += 1
            conv.trajectory_msg(d.controls.astype(np.float32))
            path_buffer.fill(d.path, "odom", now, spec.dt)
        conv.twist_msg(d.command)
        t4 = time.perf_counter()
        times["convert"].append((t1 - t0) * 1e3)
        times["costmap"].append((t2 - t1) * 1e3)
        for stage in ("tensors", "inference", "safety"):  # the tick times its own stages
            times[stage].append(d.timings_ms.get(stage, 0.0))
        times["tick"].append((t3 - t2) * 1e3)
        times["messages"].append((t4 - t3) * 1e3)
        times["total"].append((t4 - t0) * 1e3)
    out = {k: stats(v) for k, v in times.items()}
    out["executed_share"] = executed / ticks
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ticks", type=int, default=2000)
    p.add_argument("--model", default=str(MODEL))
    args = p.parse_args()
    policy = OnnxPolicy(args.model)
    out = {}
    for cells in (60, 200, 1000):
        out[f"{cells}x{cells}"] = r = run(cells, args.ticks, policy)
        print(f"{cells:>5}x{cells:<5} " + "  ".join(f"{k} {r[k]['p50_ms']:.3f}/{r[k]['p99_ms']:.3f}" for k in STAGES)
              + f"  (p50/p99 ms; plans executed {r['executed_share']:.0%})")
    save("pipeline", {"ticks": args.ticks, "grids": out})


if __name__ == "__main__":
    main()
