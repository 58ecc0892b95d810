"""Real rclpy over DDS on loopback: a driver node that publishes like a Nav2 stack and listens."""

from __future__ import annotations

import array
import itertools
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32MultiArray

from plan_ga_ros.ros import conversions as conv

EXECUTOR = SingleThreadedExecutor
_domain_counter = itertools.count(int(os.environ.get("ROS_DOMAIN_ID", "30")) * 7)


def fresh_domain() -> int:
    """A DDS domain of its own for one test's nodes, cycling through 50..219 (FastDDS takes ids up to
    232; ROS_DOMAIN_ID itself stays below 100 in this project's runs)."""
    return next(_domain_counter) % 170 + 50


def grid_msg(data: np.ndarray, resolution: float, origin: tuple[float, float, float] = (0, 0, 0),
             frame: str = "odom") -> OccupancyGrid:
    """An OccupancyGrid from an int8 [H, W] array."""
    msg = OccupancyGrid()
    msg.header.frame_id = frame
    msg.info.resolution = float(resolution)
    msg.info.height, msg.info.width = (int(v) for v in data.shape)
    msg.info.origin.position.x, msg.info.origin.position.y = float(origin[0]), float(origin[1])
    msg.info.origin.orientation = conv.quaternion_from_yaw(origin[2])
    msg.data = array.array("b", np.ascontiguousarray(data, dtype=np.int8).tobytes())
    return msg


@dataclass
class Received:
    msg: Any
    t: float  # wall time of receipt


class SimClock:
    """Simulated time for /clock: runs with the wall clock from ``start``; can stop (a dead bridge) and jump."""

    def __init__(self, start: float = 100.0) -> None:
        self._base, self._wall0, self.running = start, time.monotonic(), True
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._base + (time.monotonic() - self._wall0 if self.running else 0.0)

    def stop(self) -> None:
        with self._lock:
            self._base, self.running = self._base + time.monotonic() - self._wall0, False

    def start(self) -> None:
        with self._lock:
            self._wall0, self.running = time.monotonic(), True

    def jump_to(self, t: float) -> None:
        with self._lock:
            self._base, self._wall0 = t, time.monotonic()


@dataclass
class Driver:
    """What the driver publishes each period; tests mutate these fields."""

    pose: np.ndarray = field(default_factory=lambda: np.zeros(3))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    odom_frame: str = "odom"
    send_odom: bool = True
    send_costmap: bool = True
    integrate_cmd: bool = False  # move the robot by the received cmd_vel (a perfect base)
    costmap: OccupancyGrid | None = None
    odom_override: Callable[[Odometry], None] | None = None


class Harness:
    """A context on its own DDS domain, a planner node, and a driver node with topics of a Nav2 stack."""

    def __init__(self, params: dict[str, Any] | None, odom_rate: float = 50.0, costmap_rate: float = 5.0,
                 sim_time: bool = False) -> None:
        from geometry_msgs.msg import TwistStamped
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import String

        from plan_ga_ros.ros.planner_node import PlannerNode

        self.sim = SimClock() if sim_time else None
        if sim_time and params is not None:
            params = {**params, "use_sim_time": True}

        self.spin_error = ""
        self.odom_sent = 0
        self._last_odom_t = time.monotonic()
        self.domain = int(os.environ["ROS_DOMAIN_ID"]) if params is None else fresh_domain()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain)
        self.planner = None  # params=None: the planner runs in another process
        if params is not None:
            overrides = [Parameter(k, value=v) for k, v in params.items()]
            self.planner = PlannerNode(context=self.context, parameter_overrides=overrides)
        self.node = Node("nav2_like_driver", context=self.context)
        self.state = Driver()
        self.lock = threading.Lock()
        self.received: dict[str, list[Received]] = {k: [] for k in ("trajectory", "local_plan", "cmd_vel", "diag",
                                                                    "status")}
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.costmap_pub = self.node.create_publisher(OccupancyGrid, "/local_costmap/costmap", latched)
        self.odom_pub = self.node.create_publisher(Odometry, "/odom", 10)  # reliable, as most bases
        self.goal_pub = self.node.create_publisher(PoseStamped, "/goal_pose", 1)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Float32MultiArray, "/plan_ga_planner/trajectory",
                                      self._rec("trajectory"), reliable)
        self.node.create_subscription(Path, "/plan_ga_planner/local_plan", self._rec("local_plan"), reliable)
        cmd_type = TwistStamped if (params or {}).get("use_twist_stamped") else Twist
        self.node.create_subscription(cmd_type, "/cmd_vel", self._on_cmd, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._rec("diag"), 50)
        every_status = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, "/plan_ga_planner/status", self._rec("status"), every_status)
        if self.sim is not None:
            self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
            self.node.create_timer(0.01, self._publish_clock)
        self._closing = False
        if odom_rate > 100.0:  # faster than the executor's timers go on a busy machine: a thread of its own
            threading.Thread(target=self._odom_loop, args=(1.0 / odom_rate,), daemon=True).start()
        else:
            self.node.create_timer(1.0 / odom_rate, self._publish_odom)
        self.node.create_timer(1.0 / costmap_rate, self._publish_costmap)
        self.executor = EXECUTOR(context=self.context)
        if self.planner is not None:
            self.executor.add_node(self.planner)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._spin_safe, daemon=True)
        self._spin.start()

    def _spin_safe(self) -> None:
        try:
            self.executor.spin()
        except Exception as exc:  # a callback raised: record it so the test fails loudly
            import traceback

            self.spin_error = "".join(traceback.format_exception(exc))
            print(self.spin_error, flush=True)

    # -- recording
    def _rec(self, key: str) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                self.received[key].append(Received(msg, time.monotonic()))
        return cb

    def _on_cmd(self, msg: Twist) -> None:
        self._rec("cmd_vel")(msg)
        if self.state.integrate_cmd:
            self.state.velocity = conv.twist_from_msg(msg)

    def now(self) -> float:
        """The time the driver stamps with: simulated under sim_time, else the ROS clock."""
        if self.sim is not None:
            return self.sim.now()
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _publish_clock(self) -> None:
        from rosgraph_msgs.msg import Clock

        if self.sim.running:
            self.clock_pub.publish(Clock(clock=conv.sec_to_stamp(self.sim.now())))

    def _odom_loop(self, period: float) -> None:
        due = time.monotonic()
        while not self._closing:
            self._publish_odom()
            due += period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                due = time.monotonic()  # behind: do not burst

    def _publish_odom(self) -> None:
        t = time.monotonic()
        dt, self._last_odom_t = t - self._last_odom_t, t
        s = self.state
        if s.integrate_cmd:
            from plan_ga_ros.kinematics import rollout
            s.pose = rollout(s.pose, s.velocity[None], min(dt, 0.1))[-1]
        if not s.send_odom:
            return
        msg = Odometry()
        msg.header.stamp = conv.sec_to_stamp(self.now())
        msg.header.frame_id, msg.child_frame_id = s.odom_frame, "base_link"
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(s.pose[0]), float(s.pose[1])
        msg.pose.pose.orientation = conv.quaternion_from_yaw(float(s.pose[2]))
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = float(s.velocity[0]), float(s.velocity[1])
        msg.twist.twist.angular.z = float(s.velocity[2])
        if s.odom_override:
            s.odom_override(msg)
        self.odom_pub.publish(msg)
        self.odom_sent += 1

    def _publish_costmap(self) -> None:
        if self.state.send_costmap and self.state.costmap is not None:
            self.state.costmap.header.stamp = conv.sec_to_stamp(self.now())
            self.costmap_pub.publish(self.state.costmap)

    def set_costmap(self, data: np.ndarray, resolution: float, origin=(0.0, 0.0, 0.0), frame: str = "odom") -> None:
        self.state.costmap = grid_msg(data, resolution, origin, frame)
        self._publish_costmap()

    def send_goal(self, x: float, y: float, yaw: float = 0.0, frame: str = "odom") -> None:
        """Publish a goal once the planner's subscription has matched (it is volatile, like RViz's)."""
        self.wait_for(lambda: self.goal_pub.get_subscription_count() > 0, 10.0)
        msg = PoseStamped()
        msg.header.stamp = conv.sec_to_stamp(self.now())
        msg.header.frame_id = frame
        msg.pose.position.x, msg.pose.position.y = float(x), float(y)
        msg.pose.orientation = conv.quaternion_from_yaw(yaw)
        self.goal_pub.publish(msg)

    # -- waiting
    def clear(self) -> None:
        with self.lock:
            for v in self.received.values():
                v.clear()

    def messages(self, key: str) -> list[Received]:
        with self.lock:
            return list(self.received[key])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_count(self, key: str, n: int, timeout: float = 10.0) -> list[Received]:
        self.wait_for(lambda: len(self.messages(key)) >= n, timeout)
        return self.messages(key)

    def last_cmd(self) -> np.ndarray | None:
        msgs = self.messages("cmd_vel")
        return conv.twist_from_msg(msgs[-1].msg) if msgs else None

    def diag_values(self) -> dict[str, str]:
        """Key/values (plus 'message' and 'level') of the latest planner diagnostic."""
        for rec in reversed(self.messages("diag")):
            for st in rec.msg.status:
                if "plan_ga_planner" in st.name:
                    d = {kv.key: kv.value for kv in st.values}
                    d["message"], d["level"] = st.message, int.from_bytes(st.level, "little") \
                        if isinstance(st.level, bytes) else int(st.level)
                    return d
        return {}

    def wait_diag(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        self.wait_for(lambda: bool(self.diag_values()) and predicate(self.diag_values()), timeout)
        return self.diag_values()

    def set_params(self, **params: Any) -> list:
        return self.planner.set_parameters([Parameter(k, value=v) for k, v in params.items()])

    def call_set_parameters(self, params: list[tuple[str, Any]], atomic: bool = False, timeout: float = 10.0):
        """Set parameters through the node's services, as `ros2 param set` and tools do: the list of
        SetParametersResult (one per parameter), or one result when ``atomic``."""
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, "plan_ga_planner")
        assert client.wait_for_services(timeout_sec=timeout), "parameter services not available"
        plist = [Parameter(k, value=v) for k, v in params]
        future = client.set_parameters_atomically(plist) if atomic else client.set_parameters(plist)
        assert self.wait_for(future.done, timeout), "no answer from the parameter service"
        response = future.result()
        return response.result if atomic else list(response.results)

    def call_get_parameter(self, name: str, timeout: float = 5.0) -> Any:
        """A parameter's value through the service (None if the service does not answer in time)."""
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, "plan_ga_planner")
        if not client.wait_for_services(timeout_sec=timeout):
            return None
        future = client.get_parameters([name])
        if not self.wait_for(future.done, timeout):
            return None
        return parameter_value_to_python(future.result().values[0])

    def statuses(self) -> list[dict]:
        import json

        return [json.loads(r.msg.data) for r in self.messages("status")]

    def close(self) -> None:
        self._closing = True
        try:
            self.executor.shutdown(timeout_sec=2.0)
            self._spin.join(timeout=5.0)  # no thread inside rclpy while the context goes down
        finally:
            if self.planner is not None:
                self.planner.destroy_node()
            self.node.destroy_node()
            rclpy.try_shutdown(context=self.context)




class ExternalPlanner:
    """The planner as a separate process (an executable and --ros-args), with a Harness driving it."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, **harness_kw: Any) -> None:
        self.domain = str(fresh_domain())
        self._saved = os.environ["ROS_DOMAIN_ID"]
        os.environ["ROS_DOMAIN_ID"] = self.domain
        # Its own process group, as a program started from a terminal: tests send it a terminal's Ctrl-C.
        self.proc = subprocess.Popen(command, env={**(env or os.environ), "ROS_DOMAIN_ID": self.domain},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        try:
            self.harness = Harness(None, **harness_kw)
        finally:
            os.environ["ROS_DOMAIN_ID"] = self._saved
        self.log = ""

    def close(self) -> str:
        self.harness.close()
        self.proc.terminate()
        try:
            self.log = self.proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.log = self.proc.communicate()[0]
        return self.log
