"""plan_ga_sim: a 2D robot simulator that talks like a robot base, a Nav2 local costmap and a global planner.

It publishes /odom (odom frame), a rolling local costmap on /local_costmap/costmap (reliable +
transient_local, 0..100 with inflation) and, for each episode, a global path on /plan (Dijkstra on
the inflated world, as Nav2's planner_server would hand it on; ``follow_path``) or the bare goal on
/goal_pose. It moves the robot by /cmd_vel within the kinematics and acceleration limits, reports
each episode's outcome (success, collision, timeout) as JSON on ~/episode_result, and publishes
/clock when ``publish_clock`` is set (for nodes on ``use_sim_time``). An episode succeeds when the
robot is within the goal tolerances (stateful, like Nav2's goal checker) and at rest (|v| < 0.05).
The entry point with its signal handling is ``sim_node.main``.
"""

from __future__ import annotations

import array
import json
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from ..contract import Limits
from ..ros import conversions as conv
from ..safety import goal_check
from . import routes
from .world import RobotSim, Scenario, WorldConfig, local_costmap, make_scenario

AT_REST = 0.05  # m/s, rad/s: success needs the robot at rest within the goal tolerances
ROUTE_FAMILY = "long_route"


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("plan_ga_sim", **kwargs)
        p = self.declare_parameter
        self.episodes = p("episodes", 10).value
        self.route_episodes = p("route_episodes", 0).value  # long routes (8–15 m) after the others
        self.first_seed = p("seed", 100_000).value
        self.route_seed = p("route_seed", -1).value  # first long-route seed; -1 = ``seed``
        self.follow_path = p("follow_path", True).value
        # Node names (comma-separated) that must subscribe to the goal or path topic before an episode
        # starts; '' = any subscriber.
        self.wait_for = {n.strip() for n in p("wait_for_subscriber", "").value.split(",") if n.strip()}
        self.physics_rate = p("physics_rate", 50.0).value
        self.costmap_rate = p("costmap_rate", 5.0).value
        self.costmap_size = p("costmap_size", 6.0).value
        self.costmap_resolution = p("costmap_resolution", 0.05).value
        self.episode_timeout = p("episode_timeout", 40.0).value
        self.cmd_timeout = p("cmd_timeout", 0.5).value
        self.noise = p("velocity_noise", 0.0).value
        self.publish_clock = p("publish_clock", False).value
        self.xy_tol = p("xy_goal_tolerance", 0.15).value
        self.yaw_tol = p("yaw_goal_tolerance", 0.25).value
        self.stateful = p("stateful_goal_checker", True).value
        self.limits = Limits(max_v_x=p("max_v_x", 0.5).value, max_omega=p("max_omega", 1.5).value,
                             max_a_x=p("max_a_x", 1.0).value, max_alpha=p("max_alpha", 3.0).value)
        self.world_cfg = WorldConfig()
        self.total = self.episodes + self.route_episodes

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.odom_pub = self.create_publisher(Odometry, "/odom", 10)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "/local_costmap/costmap", latched)
        self.goal_pub = self.create_publisher(PoseStamped, "/goal_pose", 1)
        self.path_pub = self.create_publisher(Path, "/plan", latched)
        self.result_pub = self.create_publisher(String, "~/episode_result", QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        self.create_subscription(Twist, "/cmd_vel", self._on_cmd, 10)

        self.sim_time = 0.0
        self.episode = -1
        self.cmd, self.cmd_time = np.zeros(3), -1e9
        self.done = False
        self.done_at = 0.0  # monotonic time of the last episode's end
        self._next_episode()
        # Physics and sensors run on wall-clock timers: the simulator is the clock's source.
        self.create_timer(1.0 / self.physics_rate, self._step, clock=rclpy.clock.Clock())
        self.create_timer(1.0 / self.costmap_rate, self._publish_costmap, clock=rclpy.clock.Clock())

    # ------------------------------------------------------------------ episodes
    def _scenario(self, index: int) -> Scenario:
        if index < self.episodes:
            return make_scenario(self.first_seed + index, self.world_cfg)
        first = self.first_seed if self.route_seed < 0 else self.route_seed
        return make_scenario(first + index - self.episodes, self.world_cfg, ROUTE_FAMILY)

    def _next_episode(self) -> None:
        self.episode += 1
        if self.episode >= self.total:
            self.done, self.done_at = True, time.monotonic()
            self.get_logger().info("all episodes done")
            return
        s = self.scenario = self._scenario(self.episode)
        self.world, self.goal, self.seed = s.world, s.goal, s.seed
        self.route = s.route if s.route is not None else routes.grid_path(s.world.grid, s.start, s.goal)
        self.timeout = s.time_budget(self.episode_timeout)
        self.robot = RobotSim(s.start.copy(), self.limits, noise=self.noise, rng=np.random.default_rng(self.seed))
        self.start_time, self.goal_sent, self.xy_latched = self.sim_time, False, False
        self.trace = [s.start[:2].copy()]
        self.min_clearance = float(self.world.clearance(s.start[:2]))
        self.cmd = np.zeros(3)
        length = f", route {routes.path_length(self.route):.1f} m" if self.route is not None else ""
        self.get_logger().info(f"episode {self.episode + 1}/{self.total}: seed {self.seed} ({self._kind()}), "
                               f"goal {np.hypot(*(self.goal - s.start)[:2]):.1f} m away{length}")

    def _kind(self) -> str:
        s = self.scenario
        return s.family if not s.variant else f"{s.family}:{s.variant}"

    def _finish(self, outcome: str) -> None:
        trace = np.asarray(self.trace)
        route = self.route if self.route is not None else np.zeros((0, 3))
        result = {
            "episode": self.episode, "seed": self.seed, "kind": self._kind(), "family": self.scenario.family,
            "outcome": outcome, "success": outcome == "success", "time": round(self.sim_time - self.start_time, 3),
            "time_limit": round(self.timeout, 1),
            "path_length": float(np.hypot(*np.diff(trace, axis=0).T).sum()) if len(trace) > 1 else 0.0,
            "route_length": routes.path_length(route), "followed_path": bool(self.follow_path and len(route)),
            "min_clearance": self.min_clearance, "path": trace[::5].round(3).tolist(),
            "route": route[::4, :2].round(3).tolist(), "start": self.trace[0].tolist(), "goal": self.goal.tolist(),
        }
        self.result_pub.publish(String(data=json.dumps(result)))
        self.get_logger().info(f"episode {self.episode + 1}/{self.total}: {outcome} in {result['time']:.1f} s, "
                               f"driven {result['path_length']:.1f} m")
        self.robot.velocity = np.zeros(3)  # the next episode starts at rest
        self._next_episode()

    # ------------------------------------------------------------------ callbacks
    def _on_cmd(self, msg: Twist) -> None:
        cmd = conv.twist_from_msg(msg)
        if np.isfinite(cmd).all():
            self.cmd, self.cmd_time = cmd, self.sim_time

    def _planner_listening(self) -> bool:
        topic = "/plan" if self.follow_path and self.route is not None else "/goal_pose"
        if not self.wait_for:
            return self.count_subscribers(topic) > 0
        return self.wait_for <= {info.node_name for info in self.get_subscriptions_info_by_topic(topic)}

    def _step(self) -> None:
        dt = 1.0 / self.physics_rate
        self.sim_time += dt
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=conv.sec_to_stamp(self.sim_time)))
        if self.done:
            return
        if not self.goal_sent:
            if self._planner_listening():
                self._publish_goal()
                self.start_time = self.sim_time  # the episode's clock starts with its goal
            else:
                self.robot.step(np.zeros(3), dt)
                self._publish_odom()
                return
        cmd = self.cmd if self.sim_time - self.cmd_time <= self.cmd_timeout else np.zeros(3)
        self.robot.step(cmd, dt)
        self.trace.append(self.robot.pose[:2].copy())
        clearance = float(self.world.clearance(self.robot.pose[:2]))
        self.min_clearance = min(self.min_clearance, clearance)
        self._publish_odom()
        reached, self.xy_latched = goal_check(self.robot.pose, self.goal, self.xy_tol, self.yaw_tol,
                                              self.stateful, self.xy_latched)
        if clearance < 0.0:
            self._finish("collision")
        elif reached and np.abs(self.robot.velocity).max() < AT_REST:
            self._finish("success")
        elif self.sim_time - self.start_time > self.timeout:
            self._finish("timeout")

    def _stamp(self) -> float:
        return self.sim_time if self.publish_clock else self.get_clock().now().nanoseconds * 1e-9

    def _publish_odom(self) -> None:
        msg = Odometry()
        msg.header.stamp = conv.sec_to_stamp(self._stamp())
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        x, y, th = self.robot.pose
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(x), float(y)
        msg.pose.pose.orientation = conv.quaternion_from_yaw(float(th))
        v = self.robot.velocity
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.angular.z = (float(a) for a in v)
        self.odom_pub.publish(msg)

    def _publish_goal(self) -> None:
        stamp = conv.sec_to_stamp(self._stamp())
        if self.follow_path and self.route is not None:
            self.path_pub.publish(conv.PathBuffer().fill(self.route, "odom", self._stamp(), 0.0))
        else:
            msg = PoseStamped()
            msg.header.stamp, msg.header.frame_id = stamp, "odom"
            msg.pose.position.x, msg.pose.position.y = float(self.goal[0]), float(self.goal[1])
            msg.pose.orientation = conv.quaternion_from_yaw(float(self.goal[2]))
            self.goal_pub.publish(msg)
        self.goal_sent = True

    def _publish_costmap(self) -> None:
        if self.done:
            return
        grid = local_costmap(self.world, self.robot.pose, self.costmap_size, self.costmap_resolution)
        msg = OccupancyGrid()
        msg.header.stamp = conv.sec_to_stamp(self._stamp())
        msg.header.frame_id = "odom"
        msg.info.resolution = float(grid.resolution)
        msg.info.height, msg.info.width = (int(v) for v in grid.data.shape)
        msg.info.origin.position.x, msg.info.origin.position.y = grid.origin[0], grid.origin[1]
        msg.info.origin.orientation.w = 1.0
        msg.data = array.array("b", grid.data.tobytes())
        self.costmap_pub.publish(msg)

    def stop_robot(self) -> None:
        """Bring the simulated robot to rest and say so on /odom (shutdown), waiting until that last
        odometry is acknowledged: a message published just before the process exits is otherwise lost."""
        self.cmd = np.zeros(3)
        self.robot.velocity = np.zeros(3)
        self._publish_odom()
        conv.wait_acknowledged(self.odom_pub, "the resting odometry", self.get_logger())
