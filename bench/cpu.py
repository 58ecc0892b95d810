"""CPU of the planner node at 20 Hz against a do-nothing rclpy node with the same inputs and outputs.

Both run side by side in one run, as separate processes on DDS over loopback (a per-run
ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), fed by one driver process (this one) like the
demo: /odom at 50 Hz and a free 6 m, 0.05 m costmap at 5 Hz around a robot driving at 0.3 m/s along x
towards a goal it never reaches, so the planner plans on every tick.

- planner: ``python -m plan_ga_ros.ros.planner_node``, the shipped model, default parameters
  (20 Hz, ``planner: hybrid``, timer-driven).
- baseline (``--baseline-node``): a plain rclpy ``Node`` subscribing /local_costmap/costmap, /odom,
  /goal_pose and /plan with the planner's default QoS (the callbacks only keep the message), and
  publishing /cmd_vel, ~/trajectory and ~/local_plan at 20 Hz (one timer) and /diagnostics every
  second, with constant messages of the planner's sizes (a 21-pose Path, a 20×3 trajectory), built
  once. It has the default parameter services; the planner has its own parameter and lifecycle services.
- fairness: this process subscribes to the same outputs of both (/cmd_vel, both trajectories, both
  local plans, /diagnostics), so both serialise and send everything they publish. Neither has a
  subscriber on the planner-only ~/carrot and ~/pruned_plan.

CPU is user + system time of each process (psutil) over ``--window`` seconds, ``--windows`` times in a
row with both processes running throughout (each window measures both over the same interval);
reported: medians over the windows and the median of the per-window ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

import psutil
from common import MODEL, REPO, loopback_env, save

loopback_env()

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import PoseStamped, Twist  # noqa: E402
from nav_msgs.msg import OccupancyGrid, Odometry, Path  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Float32MultiArray, Header, String  # noqa: E402

SPEED = 0.3  # m/s along x
RATE = 20.0  # Hz: the planner's default planning_frequency
OUTPUTS = ("trajectory", "local_plan")


def _qos(role: str) -> QoSProfile:
    sys.path.insert(0, str(REPO))
    from plan_ga_ros.parameters import defaults
    from plan_ga_ros.ros.params import qos_profile

    return qos_profile(defaults(), role)


class Baseline(Node):
    """Does nothing but take the planner's inputs and publish outputs of its sizes at its rates."""

    def __init__(self) -> None:
        super().__init__("cpu_baseline")
        self.last: dict[str, object] = {}
        for msg_type, topic, role in ((OccupancyGrid, "/local_costmap/costmap", "costmap"), (Odometry, "/odom", "odom"),
                                      (PoseStamped, "/goal_pose", "goal"), (Path, "/plan", "path")):
            self.create_subscription(msg_type, topic, lambda m, t=topic: self.last.__setitem__(t, m), _qos(role))
        self.cmd_pub = self.create_publisher(Twist, "/cmd_vel", _qos("cmd_vel"))
        self.traj_pub = self.create_publisher(Float32MultiArray, "~/trajectory", _qos("trajectory"))
        self.plan_pub = self.create_publisher(Path, "~/local_plan", _qos("local_plan"))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_publisher(PoseStamped, "~/carrot", 1)
        self.create_publisher(Path, "~/pruned_plan", 1)
        self.create_publisher(String, "~/status", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                                             durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.cmd = Twist()
        self.traj = Float32MultiArray(data=[0.0] * 60)
        self.plan = Path(header=Header(frame_id="odom"), poses=[PoseStamped(header=Header(frame_id="odom"))
                                                                 for _ in range(21)])
        self.diag = DiagnosticArray(status=[DiagnosticStatus(name="cpu_baseline", values=[
            KeyValue(key=f"key_{i}", value="0.000") for i in range(40)])])
        self.n = 0
        self.create_timer(1.0 / RATE, self.tick)

    def tick(self) -> None:
        self.cmd_pub.publish(self.cmd)
        self.traj_pub.publish(self.traj)
        self.plan_pub.publish(self.plan)
        self.n += 1
        if self.n % int(RATE) == 0:
            self.diag_pub.publish(self.diag)


class Driver(Node):
    """Feeds both nodes like the demo and listens to the same outputs of both."""

    def __init__(self) -> None:
        super().__init__("cpu_driver")
        self.costmap_pub = self.create_publisher(OccupancyGrid, "/local_costmap/costmap", _qos("costmap"))
        self.odom_pub = self.create_publisher(Odometry, "/odom", _qos("odom"))
        self.goal_pub = self.create_publisher(PoseStamped, "/goal_pose", _qos("goal"))
        self.counts: dict[str, int] = {}
        topics = [("/cmd_vel", Twist, "cmd_vel"), ("/diagnostics", DiagnosticArray, None)]
        for node in ("plan_ga_planner", "cpu_baseline"):
            topics += [(f"/{node}/trajectory", Float32MultiArray, "trajectory"),
                       (f"/{node}/local_plan", Path, "local_plan")]
        for topic, msg_type, role in topics:
            self.counts[topic] = 0
            self.create_subscription(msg_type, topic, lambda _m, t=topic: self._count(t),
                                     _qos(role) if role else 10)
        self.t0 = time.monotonic()
        self.grid = bytes(120 * 120)
        self.create_timer(1.0 / 50.0, self.publish_odom)
        self.create_timer(0.2, self.publish_costmap)

    def _count(self, topic: str) -> None:
        self.counts[topic] += 1

    def x(self) -> float:
        return SPEED * (time.monotonic() - self.t0)

    def publish_costmap(self) -> None:
        msg = OccupancyGrid()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "odom"
        msg.info.resolution, msg.info.width, msg.info.height = 0.05, 120, 120
        msg.info.origin.position.x, msg.info.origin.position.y = self.x() - 3.0, -3.0
        msg.info.origin.orientation.w = 1.0
        msg.data = self.grid
        self.costmap_pub.publish(msg)

    def publish_odom(self) -> None:
        msg = Odometry()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        msg.pose.pose.position.x = self.x()
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = SPEED
        self.odom_pub.publish(msg)

    def send_goal(self) -> None:
        msg = PoseStamped()
        msg.header.frame_id = "odom"
        msg.pose.position.x = 1e6
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)


def run_baseline() -> None:
    rclpy.init()
    node = Baseline()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def cpu(ps: psutil.Process) -> float:
    t = ps.cpu_times()
    return t.user + t.system


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=float, default=10.0, help="seconds per measurement window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--quick", action="store_true", help="3 windows of 5 s")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--planner-root", default=str(REPO),
                   help="directory holding the plan_ga_ros package to run (e.g. an older version, for before/after)")
    p.add_argument("--baseline-node", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.baseline_node:
        return run_baseline()
    if args.quick:
        args.window, args.windows, args.warmup = 5.0, 3, 3.0
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    planner_env = dict(env, PYTHONPATH=args.planner_root + os.pathsep + env["PYTHONPATH"])
    planner = subprocess.Popen([sys.executable, "-m", "plan_ga_ros.ros.planner_node", "--ros-args",
                                "-p", f"model_path:={args.model}", "-p", f"planning_frequency:={RATE}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=planner_env,
                               cwd=args.planner_root)
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline-node"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    rclpy.init()
    node = Driver()
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    load0 = os.getloadavg()
    try:
        end = time.monotonic() + 30
        while node.goal_pub.get_subscription_count() < 2 and time.monotonic() < end:
            time.sleep(0.05)
        end = time.monotonic() + 30
        while node.counts["/plan_ga_planner/local_plan"] < 10 and time.monotonic() < end:
            node.send_goal()
            time.sleep(0.5)
        if node.counts["/plan_ga_planner/local_plan"] < 10:
            raise SystemExit("the planner does not plan: no local_plan within 30 s")
        time.sleep(args.warmup)
        procs = {"planner": psutil.Process(planner.pid), "baseline": psutil.Process(baseline.pid)}
        windows = []
        for _ in range(args.windows):
            c0 = {k: cpu(ps) for k, ps in procs.items()}
            n0, t0 = dict(node.counts), time.monotonic()
            time.sleep(args.window)
            c1 = {k: cpu(ps) for k, ps in procs.items()}
            n1, t1 = dict(node.counts), time.monotonic()
            w = {k: (c1[k] - c0[k]) / (t1 - t0) for k in procs}
            w["ratio"] = w["planner"] / w["baseline"]
            w["planner_plans_hz"] = (n1["/plan_ga_planner/local_plan"] - n0["/plan_ga_planner/local_plan"]) / (t1 - t0)
            w["baseline_plans_hz"] = (n1["/cpu_baseline/local_plan"] - n0["/cpu_baseline/local_plan"]) / (t1 - t0)
            windows.append(w)
            print(f"window: planner {100 * w['planner']:.1f}% baseline {100 * w['baseline']:.1f}% of a core, "
                  f"ratio {w['ratio']:.2f}, local_plan {w['planner_plans_hz']:.1f} / {w['baseline_plans_hz']:.1f} Hz",
                  flush=True)
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for proc in (planner, baseline):
            proc.terminate()
        for proc in (planner, baseline):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    med = {k: statistics.median(w[k] for w in windows) for k in windows[0]}
    out = {"window_s": args.window, "windows": windows, "planner_cpu": med["planner"], "baseline_cpu": med["baseline"],
           "ratio": med["ratio"], "planner_plans_hz": med["planner_plans_hz"],
           "load_average": [round(load0[0], 2), round(os.getloadavg()[0], 2)]}
    print(f"median over {len(windows)} × {args.window:g} s: planner {100 * med['planner']:.1f}% of a core, baseline "
          f"{100 * med['baseline']:.1f}%, ratio {med['ratio']:.2f}× (median of per-window ratios); load average "
          f"{out['load_average'][0]:.2f} → {out['load_average'][1]:.2f}")
    if not args.no_save:
        save("cpu", out)


if __name__ == "__main__":
    main()
