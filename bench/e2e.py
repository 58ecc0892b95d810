"""Over DDS on loopback, a planner process fed like a robot: odometry-to-trajectory latency, achieved
rate and jitter at 10 and 20 Hz, the node's CPU share of one core, and the highest sustained rate.

Each odometry message carries a unique x (sequence × 1e-4 m), and the path's first pose is the
odometry pose the plan used, so every trajectory is matched to the exact message it came from.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time

import numpy as np
import psutil
from common import MODEL, loopback_env, save, stats

loopback_env()

import rclpy  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from nav_msgs.msg import OccupancyGrid, Odometry, Path  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402


class Driver(Node):
    def __init__(self, odom_rate: float) -> None:
        super().__init__("bench_driver")
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "/local_costmap/costmap", latched)
        self.odom_pub = self.create_publisher(Odometry, "/odom", 10)
        self.goal_pub = self.create_publisher(PoseStamped, "/goal_pose", 1)
        self.create_subscription(Path, "/plan_ga_planner/local_plan", self.on_path,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.seq = 0
        self.sent: dict[int, float] = {}
        self.arrivals: list[tuple[float, int]] = []
        self.create_timer(1.0 / odom_rate, self.publish_odom)
        self.create_timer(0.2, self.publish_costmap)
        self.lock = threading.Lock()

    def publish_costmap(self) -> None:
        msg = OccupancyGrid()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "odom"
        msg.info.resolution, msg.info.width, msg.info.height = 0.05, 120, 120
        msg.info.origin.position.x = msg.info.origin.position.y = -3.0
        msg.info.origin.orientation.w = 1.0
        msg.data = bytes(120 * 120)
        self.costmap_pub.publish(msg)

    def publish_odom(self) -> None:
        self.seq += 1
        msg = Odometry()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "odom"
        msg.pose.pose.position.x = self.seq * 1e-4
        msg.pose.pose.orientation.w = 1.0
        with self.lock:
            self.sent[self.seq] = time.perf_counter()
        self.odom_pub.publish(msg)

    def send_goal(self) -> None:
        msg = PoseStamped()
        msg.header.frame_id = "odom"
        msg.pose.position.x, msg.pose.position.y = 1e6 - 1, 0.0  # never reached: plan forever
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)

    def on_path(self, msg: Path) -> None:
        t = time.perf_counter()
        seq = int(round(msg.poses[0].pose.position.x / 1e-4))
        with self.lock:
            self.arrivals.append((t, seq))


@contextlib.contextmanager
def planner_and_driver(model: str, frequency: float, odom_rate: float, on_odometry: bool = False):
    """A planner process fed by a Driver node spinning in a thread; both torn down on exit."""
    import subprocess

    cmd = [sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args", "-p", f"model_path:={model}",
           "-p", f"planning_frequency:={frequency}", "-p", "costmap_timeout:=5.0",
           "-p", f"plan_on_odometry:={'true' if on_odometry else 'false'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    node = Driver(odom_rate)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        end = time.monotonic() + 20
        while node.goal_pub.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.05)
        node.send_goal()
        yield proc, node
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        proc.terminate()
        proc.wait(10)


def measure(frequency: float, seconds: float, odom_rate: float, model: str, on_odometry: bool = False) -> dict:
    with planner_and_driver(model, frequency, odom_rate, on_odometry) as (proc, node):
        end = time.monotonic() + 20
        while len(node.arrivals) < 10 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.0)  # warm-up
        ps = psutil.Process(proc.pid)
        cpu0, t0 = sum(ps.cpu_times()[:2]), time.perf_counter()
        with node.lock:
            node.arrivals.clear()
        time.sleep(seconds)
        cpu1, t1 = sum(ps.cpu_times()[:2]), time.perf_counter()
        with node.lock:
            arrivals, sent = list(node.arrivals), dict(node.sent)
    times = np.array([a[0] for a in arrivals])
    latency = [(t - sent[s]) * 1e3 for t, s in arrivals if s in sent]
    intervals = np.diff(times) * 1e3
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {"mode": "odometry" if on_odometry else "timer", "frequency_hz": frequency, "achieved_hz": rate,
            "rate_error": rate / frequency - 1.0,
            "jitter_ms_std": float(intervals.std()) if len(intervals) else None,
            "interval": stats(intervals) if len(intervals) else None,
            "odom_to_trajectory": stats(latency) if latency else None,
            "cpu_share_of_one_core": (cpu1 - cpu0) / (t1 - t0), "plans": len(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--odom-rate", type=float, default=50.0)
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--max-rates", default="50,100,200,400")
    args = p.parse_args()
    out = {}
    for hz, on_odom in ((10.0, False), (20.0, False), (20.0, True)):
        key = f"{hz:g}Hz" + ("_odometry" if on_odom else "")
        out[key] = r = measure(hz, args.seconds, args.odom_rate, args.model, on_odom)
        lat = r["odom_to_trajectory"]
        print(f"{key}: achieved {r['achieved_hz']:.2f} Hz ({100 * r['rate_error']:+.2f}%), jitter "
              f"{r['jitter_ms_std']:.2f} ms, odom→trajectory p50 {lat['p50_ms']:.2f} ms p99 {lat['p99_ms']:.2f} ms, "
              f"CPU {100 * r['cpu_share_of_one_core']:.1f}% of a core")
    sustained = {}
    for hz in (float(x) for x in args.max_rates.split(",")):
        r = measure(hz, max(args.seconds / 3, 5.0), max(args.odom_rate, hz), args.model)
        sustained[f"{hz:g}Hz"] = r
        print(f"asked {hz:g} Hz: achieved {r['achieved_hz']:.1f} Hz, CPU {100 * r['cpu_share_of_one_core']:.0f}%")
    ok = [r["frequency_hz"] for r in sustained.values() if r["achieved_hz"] >= 0.95 * r["frequency_hz"]]
    out["sustained"] = sustained
    out["highest_sustained_hz"] = max(ok) if ok else 0.0
    print(f"highest sustained planning rate (within 5%): {out['highest_sustained_hz']:.0f} Hz")
    save("e2e", out)


if __name__ == "__main__":
    main()
