"""plan_ga_demo: the simulator and the planner as two processes over DDS on loopback.

Drives N held-out worlds and M long routes (8–15 m), each along a global path the simulator plans
on its inflated world (/plan), prints progress and a result table, and writes into OUT_DIR:
demo.json (every episode, the summary), demo.png (worlds, global paths, driven paths, carrots and
where the GA fallback drove; needs matplotlib) and demo_bag/ (a rosbag2 in MCAP storage of the
run: costmap, odometry, goal and path, commands, the planner's outputs and diagnostics). Exits
non-zero if the planner node failed or episodes did not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PLANNER = "plan_ga_planner"
MONITOR = "plan_ga_demo_monitor"  # the demo's recorder: episodes start once it listens too
DIAG_PERIOD = 0.25  # s: the planner's diagnostics_period in the demo, fine enough to place the fallback

# Recorded topics: name → (rosbag2 type, subscription durability is transient_local).
RECORDED: dict[str, tuple[str, bool]] = {
    "/local_costmap/costmap": ("nav_msgs/msg/OccupancyGrid", True),
    "/odom": ("nav_msgs/msg/Odometry", False),
    "/goal_pose": ("geometry_msgs/msg/PoseStamped", False),
    "/plan": ("nav_msgs/msg/Path", True),
    "/cmd_vel": ("geometry_msgs/msg/Twist", False),
    f"/{PLANNER}/trajectory": ("std_msgs/msg/Float32MultiArray", False),
    f"/{PLANNER}/local_plan": ("nav_msgs/msg/Path", False),
    f"/{PLANNER}/carrot": ("geometry_msgs/msg/PoseStamped", False),
    f"/{PLANNER}/pruned_plan": ("nav_msgs/msg/Path", False),
    f"/{PLANNER}/status": ("std_msgs/msg/String", True),
    "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", False),
    "/plan_ga_sim/episode_result": ("std_msgs/msg/String", True),
}


def share_file(*parts: str) -> str:
    """A file of the installed package's share directory, else of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("plan_ga_ros"), *parts)
        if path.exists():
            return str(path)
    except Exception:  # not installed through ament: use the source tree
        pass
    return str(PACKAGE_ROOT.joinpath(*parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="plan_ga_demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=7, help="held-out worlds of the original generator")
    p.add_argument("--routes", type=int, default=3, help="long routes (8–15 m) driven after them")
    p.add_argument("--seed", type=int, default=100_000, help="first held-out world (training uses < 100000)")
    p.add_argument("--route-seed", type=int, default=-1, help="first long-route seed (default: --seed)")
    p.add_argument("--model", default="", help="ONNX model (default: the package's models/planner.onnx)")
    p.add_argument("--frequency", type=float, default=20.0, help="planning_frequency of the planner (Hz)")
    p.add_argument("--episode-timeout", type=float, default=40.0, help="s; long routes get 15 s + 3 s per metre")
    p.add_argument("--goal-only", action="store_true", help="send bare goals on /goal_pose instead of paths")
    p.add_argument("--no-bag", action="store_true", help="do not record demo_bag/")
    p.add_argument("--out-dir", default="demo_out")
    args = p.parse_args(argv)
    if args.episodes < 0 or args.routes < 0 or args.episodes + args.routes == 0:
        p.error("--episodes and --routes must be >= 0 and not both 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # DDS stays on this machine
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = args.episodes + args.routes
    print(f"plan_ga demo: {args.episodes} held-out worlds from seed {args.seed} and {args.routes} long routes, "
          f"planner at {args.frequency:g} Hz, ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (loopback only); "
          f"logs in {out}/", flush=True)

    sim_cmd = [sys.executable, "-m", "plan_ga_ros.sim.sim_node", "--ros-args", "-p", f"episodes:={args.episodes}",
               "-p", f"route_episodes:={args.routes}", "-p", f"seed:={args.seed}", "-p",
               f"route_seed:={args.route_seed}", "-p", f"episode_timeout:={args.episode_timeout}",
               "-p", f"follow_path:={'false' if args.goal_only else 'true'}",
               "-p", f"wait_for_subscriber:={PLANNER},{MONITOR}"]
    planner_cmd = [sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args", "--params-file",
                   share_file("config", "planner.yaml"), "-p", f"planning_frequency:={args.frequency}",
                   "-p", f"diagnostics_period:={DIAG_PERIOD}"]
    if args.model:
        planner_cmd += ["-p", f"model_path:={os.path.abspath(args.model)}"]
    bag_path = out / "demo_bag"
    if not args.no_bag and bag_path.exists():
        if not (bag_path / "metadata.yaml").exists() and any(bag_path.iterdir()):
            print(f"{bag_path} exists and is not a bag: not overwriting it", file=sys.stderr)
            return 1
        shutil.rmtree(bag_path)
    logs = {name: open(out / f"{name}.log", "w") for name in ("planner", "sim")}
    planner = subprocess.Popen(planner_cmd, stdout=logs["planner"], stderr=subprocess.STDOUT)
    sim = subprocess.Popen(sim_cmd, stdout=logs["sim"], stderr=subprocess.STDOUT)
    try:
        run = _monitor(args, total, planner, sim, None if args.no_bag else bag_path)
    finally:
        for proc in (sim, planner):
            if proc.poll() is None:
                proc.send_signal(2)  # SIGINT: both nodes stop the robot and exit cleanly
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for f in logs.values():
            f.close()
    results = run.episodes()
    summary = _summary(results, run.stats)
    print()
    print(_table(results, summary))
    (out / "demo.json").write_text(json.dumps({"summary": summary, "episodes": results, "planner": run.stats},
                                              indent=1))
    written = [out / "demo.json"]
    if results:
        problem = draw_picture(results, out / "demo.png")
        if problem:
            print(f"\n{problem}", file=sys.stderr)
        else:
            written.insert(0, out / "demo.png")
    if run.bag_counts:
        written.append(bag_path)
        topics = ", ".join(f"{t} {n}" for t, n in run.bag_counts.items())
        print(f"\nrecorded {bag_path}/ (rosbag2, MCAP): {topics}")
    print("wrote " + ", ".join(str(p) for p in written))
    if run.planner_failed:
        print(f"\nthe planner node failed: see {out / 'planner.log'}", file=sys.stderr)
        return 1
    if len(results) < total:
        print(f"\nonly {len(results)}/{total} episodes finished", file=sys.stderr)
        return 1
    return 0


@dataclass
class Run:
    """What the monitor saw: episode results, the robot's trace, carrots and the planner's diagnostics."""

    results: list[dict] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)  # receive time of each result
    odom: list[tuple[float, float, float]] = field(default_factory=list)
    carrots: list[tuple[float, float, float]] = field(default_factory=list)
    diag: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    status: list[tuple[float, str]] = field(default_factory=list)  # (receive time, planner in use or '')
    stats: dict[str, float] = field(default_factory=dict)
    planner_failed: bool = False
    bag_counts: dict[str, int] = field(default_factory=dict)

    def episodes(self) -> list[dict]:
        """Results with each episode's trace split into network and fallback stretches and its carrots."""
        out = []
        fallback_times = _fallback_times(self.status, self.diag)
        odom = np.array(self.odom).reshape(-1, 3)
        carrots = np.array(self.carrots).reshape(-1, 3)
        for k, r in enumerate(self.results):
            lo = self.ends[k - 1] if k else -np.inf
            hi = self.ends[k]
            trace = odom[(odom[:, 0] > lo) & (odom[:, 0] <= hi)]
            ga = np.zeros(len(trace), dtype=bool)
            for a, b in fallback_times:
                ga |= (trace[:, 0] > a) & (trace[:, 0] <= b)
            moving = np.concatenate([[False], np.hypot(*np.diff(trace[:, 1:], axis=0).T) > 1e-4]) \
                if len(trace) else np.zeros(0, bool)
            c = carrots[(carrots[:, 0] > lo) & (carrots[:, 0] <= hi)]
            r = dict(r)
            r["fallback_share"] = float(ga[moving].mean()) if moving.any() else 0.0
            r["trace"] = trace[::5, 1:].round(3).tolist()
            r["trace_fallback"] = ga[::5].tolist()
            r["carrots"] = c[::10, 1:].round(3).tolist()
            out.append(r)
        return out


def _fallback_times(status: list[tuple[float, str]], diag: list[tuple[float, dict[str, str]]]
                    ) -> list[tuple[float, float]]:
    """Intervals (receive times) in which the GA fallback drove: from each ``~/status`` change to the GA
    until the next change; without status messages, from the diagnostics' fallback tick counter."""
    if status:
        ends = [t for t, _ in status[1:]] + [np.inf]
        return [(t, end) for (t, planner), end in zip(status, ends) if planner == "ga"]
    out = []
    for (t0, d0), (t1, d1) in zip(diag[:-1], diag[1:]):
        try:
            grew = float(d1.get("fallback_ticks", 0)) > float(d0.get("fallback_ticks", 0))
        except ValueError:
            grew = False
        if grew or d1.get("planner_in_use") == "ga":
            out.append((t0, t1))
    return out


def _monitor(args: argparse.Namespace, total: int, planner: subprocess.Popen, sim: subprocess.Popen,
             bag_path: Path | None) -> Run:
    import rclpy
    from rclpy.node import Node

    from . import bag

    run = Run()
    rclpy.init()
    node = Node(MONITOR)
    diag: dict[str, str] = {}
    samples: list[dict[str, float]] = []

    def now() -> float:
        return node.get_clock().now().nanoseconds * 1e-9

    def on_result(r: dict) -> None:
        r.update({k: float(diag[k]) for k in ("achieved_rate_hz", "total_ms_p50", "total_ms_p99") if k in diag})
        run.results.append(r)
        run.ends.append(now())
        extra = (f", planner {r.get('achieved_rate_hz', 0):.1f} Hz, tick p50 {r.get('total_ms_p50', 0):.2f} ms"
                 f" p99 {r.get('total_ms_p99', 0):.2f} ms")
        route = f" along a {r['route_length']:.1f} m route" if r.get("followed_path") else ""
        print(f"[{len(run.results)}/{total}] seed {r['seed']} ({r['kind']}): {r['outcome']} in {r['time']:.1f} s"
              f"{route}, driven {r['path_length']:.1f} m, min clearance {r['min_clearance']:.2f} m{extra}", flush=True)

    def on_diag(msg: Any) -> None:
        for st in msg.status:
            if PLANNER in st.name:
                diag.clear()
                diag.update({kv.key: kv.value for kv in st.values})
                run.diag.append((now(), dict(diag)))
                try:
                    samples.append({k: float(diag[k]) for k in ("achieved_rate_hz", "total_ms_p50", "total_ms_p99",
                                                                 "inference_ms_p50") if k in diag})
                except ValueError:
                    pass

    def on_message(topic: str, msgtype: str, data: bytes) -> None:
        if topic == "/odom":
            m = bag.deserialize(data, msgtype)
            run.odom.append((now(), m.pose.pose.position.x, m.pose.pose.position.y))
        elif topic == f"/{PLANNER}/carrot":
            m = bag.deserialize(data, msgtype)
            run.carrots.append((now(), m.pose.position.x, m.pose.position.y))
        elif topic == f"/{PLANNER}/status":
            try:
                run.status.append((now(), str(json.loads(bag.deserialize(data, msgtype).data).get("planner", ""))))
            except (ValueError, AttributeError):
                pass
        elif topic == "/diagnostics":
            on_diag(bag.deserialize(data, msgtype))
        elif topic == "/plan_ga_sim/episode_result":
            on_result(json.loads(bag.deserialize(data, msgtype).data))

    recorder = bag.Recorder(node, RECORDED, bag_path, on_message)
    budget = args.episodes * (args.episode_timeout + 15) + args.routes * max(args.episode_timeout + 15, 75) + 30
    deadline = time.monotonic() + budget
    try:
        while len(run.results) < total and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
            if planner.poll() is not None:
                run.planner_failed = True
                break
            if diag.get("lifecycle_state") in ("configure failed", "unconfigured") and diag.get("load_error"):
                print(f"planner has no model: {diag['load_error']}", file=sys.stderr)
                run.planner_failed = True
                break
            if sim.poll() is not None and len(run.results) < total:
                end = time.monotonic() + 2.0  # the last latched results may still be in flight
                while time.monotonic() < end and len(run.results) < total:
                    rclpy.spin_once(node, timeout_sec=0.1)
                break
    except KeyboardInterrupt:
        pass
    finally:
        run.bag_counts = recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    planning = [s for s in samples if s.get("achieved_rate_hz", 0) > 0]
    keys = ("achieved_rate_hz", "total_ms_p50", "total_ms_p99", "inference_ms_p50")
    run.stats = {k: float(np.median(v)) for k in keys if (v := [s[k] for s in planning if k in s])}
    return run


def _summary(results: list[dict], stats: dict) -> dict:
    ok = [r for r in results if r["success"]]
    n = max(len(results), 1)
    routes = [r for r in results if r.get("family") == "long_route"]
    return {
        "episodes": len(results), "success_rate": len(ok) / n, "successes": len(ok),
        "collisions": sum(r["outcome"] == "collision" for r in results),
        "timeouts": sum(r["outcome"] == "timeout" for r in results),
        "routes": len(routes), "route_successes": sum(r["success"] for r in routes),
        "mean_time_to_goal_s": float(np.mean([r["time"] for r in ok])) if ok else None,
        "mean_path_length_m": float(np.mean([r["path_length"] for r in ok])) if ok else None,
        "min_clearance_m": float(min(r["min_clearance"] for r in results)) if results else None,
        "fallback_share": float(np.mean([r.get("fallback_share", 0.0) for r in results])) if results else 0.0,
        **{f"planner_{k}": v for k, v in stats.items()},
    }


def _table(results: list[dict], s: dict) -> str:
    head = (f"{'seed':>7} {'world':<18} {'outcome':<9} {'time s':>7} {'route m':>7} {'driven m':>8} {'clear m':>7} "
            f"{'GA %':>5} {'rate Hz':>7} {'p50 ms':>6} {'p99 ms':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['seed']:>7} {r['kind']:<18} {r['outcome']:<9} {r['time']:>7.1f} "
                     f"{r.get('route_length', 0):>7.2f} {r['path_length']:>8.2f} {r['min_clearance']:>7.2f} "
                     f"{100 * r.get('fallback_share', 0):>5.0f} {r.get('achieved_rate_hz', 0):>7.1f} "
                     f"{r.get('total_ms_p50', 0):>6.2f} {r.get('total_ms_p99', 0):>6.2f}")
    lines.append("-" * len(head))
    t = "—" if s["mean_time_to_goal_s"] is None else f"{s['mean_time_to_goal_s']:.1f} s"
    clear = "—" if s["min_clearance_m"] is None else f"{s['min_clearance_m']:.2f} m"
    lines.append(f"success {s['success_rate']:.0%} ({s['successes']}/{s['episodes']}; long routes "
                 f"{s['route_successes']}/{s['routes']}), collisions {s['collisions']}, timeouts {s['timeouts']}, "
                 f"mean time to goal {t}, min clearance {clear}, GA fallback drove {s['fallback_share']:.0%}")
    if "planner_achieved_rate_hz" in s:
        inference = f", inference p50 {s['planner_inference_ms_p50']:.3f} ms" if "planner_inference_ms_p50" in s else ""
        lines.append(f"planner: {s['planner_achieved_rate_hz']:.1f} Hz, tick p50 {s.get('planner_total_ms_p50', 0):.2f}"
                     f" ms, p99 {s.get('planner_total_ms_p99', 0):.2f} ms{inference}")
    return "\n".join(lines)


def draw_picture(results: list[dict], path: Path) -> str | None:
    """Draw demo.png; None when done, else why not (matplotlib is a demo and training dependency, not the node's)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return (f"{path.name} not drawn: matplotlib is not installed (a demo and training dependency, not the "
                "node's: pip install matplotlib)")
    _draw(results, path)
    return None


def _draw(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .world import WorldConfig, make_scenario

    cols = min(5, len(results))
    rows = int(np.ceil(len(results) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows + 0.5), squeeze=False, layout="constrained")
    colour = {"success": "tab:green", "collision": "tab:red", "timeout": "tab:orange"}
    for ax, r in zip(axes.ravel(), results):
        family = r.get("family")
        s = make_scenario(r["seed"], WorldConfig(), family if family == "long_route" else None)
        world, start, goal = s.world, s.start, s.goal
        h, w = world.costs.shape
        ax.imshow(world.costs, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=[0, w * world.resolution, 0, h * world.resolution])
        route = np.asarray(r.get("route") or np.zeros((0, 2))).reshape(-1, 2)
        if len(route):
            ax.plot(route[:, 0], route[:, 1], "--", color="tab:blue", lw=1.0, label="global path")
        trace = np.asarray(r.get("trace") or r["path"]).reshape(-1, 2)
        ga = np.asarray(r.get("trace_fallback") or [False] * len(trace), dtype=bool)
        ax.plot(trace[:, 0], trace[:, 1], color=colour[r["outcome"]], lw=2, label="driven")
        if ga.any():
            ax.plot(np.where(ga, trace[:, 0], np.nan), np.where(ga, trace[:, 1], np.nan), color="tab:purple", lw=3,
                    label="GA fallback")
        carrots = np.asarray(r.get("carrots") or np.zeros((0, 2))).reshape(-1, 2)
        if len(carrots):
            ax.plot(carrots[:, 0], carrots[:, 1], ".", color="tab:cyan", ms=3, label="carrot (model's goal)")
        ax.plot(*start[:2], "o", color="tab:blue", ms=7)
        ax.arrow(goal[0], goal[1], 0.4 * np.cos(goal[2]), 0.4 * np.sin(goal[2]), color="tab:red", width=0.04)
        ax.plot(*goal[:2], "*", color="tab:red", ms=13)
        pts = np.vstack([start[None, :2], goal[None, :2], route, trace])
        lo, hi = pts.min(axis=0) - 1.0, pts.max(axis=0) + 1.0
        half = 0.5 * (hi - lo).max()
        mid = 0.5 * (lo + hi)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_aspect("equal")
        ga_note = f", GA {100 * r.get('fallback_share', 0):.0f}%" if r.get("fallback_share") else ""
        ax.set_title(f"{r['seed']} {r['kind']}: {r['outcome']} ({r['time']:.1f} s{ga_note})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(results):]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.ravel():
        for hnd, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(hnd)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("plan_ga_ros demo: inflated costmaps, the global path, the driven path (green = reached),\n"
                 "where the GA fallback drove, the model's goal (carrot) each tick, start ● goal ★", fontsize=9)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
