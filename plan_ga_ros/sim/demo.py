"""plan_ga_demo: the simulator and the planner as two processes over DDS on loopback.

Drives N held-out worlds, prints progress and a result table, writes demo.png and demo.json,
and exits non-zero if the planner node failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _share_file(*parts: str) -> str:
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("plan_ga_ros"), *parts)
        if path.exists():
            return str(path)
    except Exception:  # not installed through ament: use the source tree
        pass
    return str(PACKAGE_ROOT.joinpath(*parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="plan_ga_demo", description=__doc__)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=100_000, help="first held-out world (training uses < 100000)")
    p.add_argument("--model", default="", help="ONNX model (default: the package's models/planner.onnx)")
    p.add_argument("--frequency", type=float, default=20.0, help="planning_frequency of the planner (Hz)")
    p.add_argument("--episode-timeout", type=float, default=40.0)
    p.add_argument("--out-dir", default="demo_out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # DDS stays on this machine
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"plan_ga demo: {args.episodes} held-out worlds from seed {args.seed}, planner at {args.frequency:g} Hz, "
          f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (loopback only); logs in {out}/")

    sim_cmd = [sys.executable, "-m", "plan_ga_ros.sim.sim_node", "--ros-args", "-p", f"episodes:={args.episodes}",
               "-p", f"seed:={args.seed}", "-p", f"episode_timeout:={args.episode_timeout}"]
    planner_cmd = [sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args", "--params-file",
                   _share_file("config", "planner.yaml"), "-p", f"planning_frequency:={args.frequency}"]
    if args.model:
        planner_cmd += ["-p", f"model_path:={os.path.abspath(args.model)}"]
    logs = {name: open(out / f"{name}.log", "w") for name in ("planner", "sim")}
    planner = subprocess.Popen(planner_cmd, stdout=logs["planner"], stderr=subprocess.STDOUT)
    sim = subprocess.Popen(sim_cmd, stdout=logs["sim"], stderr=subprocess.STDOUT)
    try:
        results, stats, planner_failed = _monitor(args, planner, sim)
    finally:
        for proc in (sim, planner):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for f in logs.values():
            f.close()
    summary = _summary(results, stats)
    print()
    print(_table(results, summary))
    (out / "demo.json").write_text(json.dumps({"summary": summary, "episodes": results, "planner": stats}, indent=1))
    if results:
        _draw(results, out / "demo.png")
        print(f"\nwrote {out / 'demo.png'} and {out / 'demo.json'}")
    if planner_failed:
        print(f"\nthe planner node failed: see {out / 'planner.log'}", file=sys.stderr)
        return 1
    if len(results) < args.episodes:
        print(f"\nonly {len(results)}/{args.episodes} episodes finished", file=sys.stderr)
        return 1
    return 0


def _monitor(args: argparse.Namespace, planner: subprocess.Popen, sim: subprocess.Popen):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    rclpy.init()
    node = Node("plan_ga_demo_monitor")
    results: list[dict] = []
    diag: dict[str, str] = {}
    samples: list[dict[str, float]] = []

    def on_result(msg: String) -> None:
        r = json.loads(msg.data)
        r.update({k: float(diag[k]) for k in ("achieved_rate_hz", "total_ms_p50", "total_ms_p99") if k in diag})
        results.append(r)
        extra = (f", planner {r.get('achieved_rate_hz', 0):.1f} Hz, tick p50 {r.get('total_ms_p50', 0):.2f} ms"
                 f" p99 {r.get('total_ms_p99', 0):.2f} ms")
        print(f"[{len(results)}/{args.episodes}] seed {r['seed']} ({r['kind']}): {r['outcome']} in {r['time']:.1f} s, "
              f"path {r['path_length']:.1f} m, min clearance {r['min_clearance']:.2f} m{extra}", flush=True)

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            if "plan_ga_planner" in st.name:
                diag.clear()
                diag.update({kv.key: kv.value for kv in st.values})
                try:
                    samples.append({k: float(diag[k]) for k in ("achieved_rate_hz", "total_ms_p50", "total_ms_p99",
                                                                 "inference_ms_p50") if k in diag})
                except ValueError:
                    pass

    latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, "/plan_ga_sim/episode_result", on_result, latched)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    deadline = time.monotonic() + args.episodes * (args.episode_timeout + 15) + 30
    planner_failed = False
    try:
        while len(results) < args.episodes and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
            if planner.poll() is not None:
                planner_failed = True
                break
            if diag.get("lifecycle_state") in ("configure failed", "unconfigured") and diag.get("load_error"):
                print(f"planner has no model: {diag['load_error']}", file=sys.stderr)
                planner_failed = True
                break
            if sim.poll() is not None and len(results) < args.episodes:
                end = time.monotonic() + 2.0  # the last latched results may still be in flight
                while time.monotonic() < end and len(results) < args.episodes:
                    rclpy.spin_once(node, timeout_sec=0.1)
                break
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    planning = [s for s in samples if s.get("achieved_rate_hz", 0) > 0]
    stats = {k: float(np.median([s[k] for s in planning if k in s])) for k in
             ("achieved_rate_hz", "total_ms_p50", "total_ms_p99", "inference_ms_p50")} if planning else {}
    return results, stats, planner_failed


def _summary(results: list[dict], stats: dict) -> dict:
    ok = [r for r in results if r["success"]]
    n = max(len(results), 1)
    return {
        "episodes": len(results), "success_rate": len(ok) / n,
        "collisions": sum(r["outcome"] == "collision" for r in results),
        "timeouts": sum(r["outcome"] == "timeout" for r in results),
        "mean_time_to_goal_s": float(np.mean([r["time"] for r in ok])) if ok else None,
        "mean_path_length_m": float(np.mean([r["path_length"] for r in ok])) if ok else None,
        "min_clearance_m": float(min(r["min_clearance"] for r in results)) if results else None,
        **{f"planner_{k}": v for k, v in stats.items()},
    }


def _table(results: list[dict], s: dict) -> str:
    head = f"{'seed':>7} {'world':<9} {'outcome':<9} {'time s':>7} {'path m':>7} {'clear m':>8} {'rate Hz':>8} " \
           f"{'p50 ms':>7} {'p99 ms':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['seed']:>7} {r['kind']:<9} {r['outcome']:<9} {r['time']:>7.1f} {r['path_length']:>7.2f} "
                     f"{r['min_clearance']:>8.2f} {r.get('achieved_rate_hz', 0):>8.1f} "
                     f"{r.get('total_ms_p50', 0):>7.2f} {r.get('total_ms_p99', 0):>7.2f}")
    lines.append("-" * len(head))
    t = "—" if s["mean_time_to_goal_s"] is None else f"{s['mean_time_to_goal_s']:.1f} s"
    lines.append(f"success {s['success_rate']:.0%} ({s['episodes']} episodes), collisions {s['collisions']}, "
                 f"timeouts {s['timeouts']}, mean time to goal {t}, min clearance {s['min_clearance_m']:.2f} m")
    if "planner_achieved_rate_hz" in s:
        lines.append(f"planner: {s['planner_achieved_rate_hz']:.1f} Hz, tick p50 {s['planner_total_ms_p50']:.2f} ms, "
                     f"p99 {s['planner_total_ms_p99']:.2f} ms, inference p50 {s['planner_inference_ms_p50']:.3f} ms")
    return "\n".join(lines)


def _draw(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .world import WorldConfig, make_episode

    cols = min(5, len(results))
    rows = int(np.ceil(len(results) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.8 * rows), squeeze=False)
    colour = {"success": "tab:green", "collision": "tab:red", "timeout": "tab:orange"}
    for ax, r in zip(axes.ravel(), results):
        world, start, goal = make_episode(r["seed"], WorldConfig())
        h, w = world.costs.shape
        ax.imshow(world.costs, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=[0, w * world.resolution, 0, h * world.resolution])
        p = np.asarray(r["path"])
        ax.plot(p[:, 0], p[:, 1], color=colour[r["outcome"]], lw=2)
        ax.plot(*start[:2], "o", color="tab:blue", ms=7)
        ax.arrow(goal[0], goal[1], 0.4 * np.cos(goal[2]), 0.4 * np.sin(goal[2]), color="tab:red", width=0.04)
        ax.plot(*goal[:2], "*", color="tab:red", ms=13)
        lo = np.minimum(start[:2], goal[:2]) - 2.0
        hi = np.maximum(start[:2], goal[:2]) + 2.0
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_title(f"{r['seed']} {r['kind']}: {r['outcome']} ({r['time']:.1f} s)", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(results):]:
        ax.axis("off")
    fig.suptitle("plan_ga_ros demo: inflated costmaps, driven paths (green = reached), start ● goal ★", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
