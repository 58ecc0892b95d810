"""plan_ga_sim: a 2D robot simulator that talks like a robot base plus a Nav2 local costmap.

It publishes /odom (odom → base_link), a rolling local costmap on /local_costmap/costmap
(reliable + transient_local, 0..100 with inflation) and each episode's goal on /goal_pose; it moves
the robot by /cmd_vel within the kinematics and acceleration limits, and reports each episode's
outcome (success, collision, timeout) as JSON on ~/episode_result.
"""

from __future__ import annotations

import array
import json
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from ..contract import Limits
from ..ros import conversions as conv
from ..safety import goal_check
from .world import RobotSim, WorldConfig, local_costmap, make_episode


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("plan_ga_sim", **kwargs)
        p = self.declare_parameter
        self.episodes = p("episodes", 10).value
        self.first_seed = p("seed", 100_000).value
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

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.odom_pub = self.create_publisher(Odometry, "/odom", 10)
        self.costmap_pub = self.create_publisher(OccupancyGrid, "/local_costmap/costmap", latched)
        self.goal_pub = self.create_publisher(PoseStamped, "/goal_pose", 1)
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
    def _next_episode(self) -> None:
        self.episode += 1
        if self.episode >= self.episodes:
            self.done, self.done_at = True, time.monotonic()
            self.get_logger().info("all episodes done")
            return
        self.seed = self.first_seed + self.episode
        self.world, start, self.goal = make_episode(self.seed, self.world_cfg)
        self.robot = RobotSim(start.copy(), self.limits, noise=self.noise, rng=np.random.default_rng(self.seed))
        self.start_time, self.goal_sent, self.xy_latched = self.sim_time, False, False
        self.path = [start[:2].copy()]
        self.min_clearance = float(self.world.clearance(start[:2]))
        self.cmd = np.zeros(3)
        self.get_logger().info(f"episode {self.episode + 1}/{self.episodes}: seed {self.seed} ({self.world.kind}), "
                               f"goal {np.hypot(*(self.goal - start)[:2]):.1f} m away")

    def _finish(self, outcome: str) -> None:
        path = np.asarray(self.path)
        result = {
            "episode": self.episode, "seed": self.seed, "kind": self.world.kind, "outcome": outcome,
            "success": outcome == "success", "time": round(self.sim_time - self.start_time, 3),
            "path_length": float(np.hypot(*np.diff(path, axis=0).T).sum()) if len(path) > 1 else 0.0,
            "min_clearance": self.min_clearance, "path": path[::5].round(3).tolist(),
            "start": self.path[0].tolist(), "goal": self.goal.tolist(),
        }
        self.result_pub.publish(String(data=json.dumps(result)))
        self.robot.velocity = np.zeros(3)  # the next episode starts at rest
        self._next_episode()

    # ------------------------------------------------------------------ callbacks
    def _on_cmd(self, msg: Twist) -> None:
        cmd = conv.twist_from_msg(msg)
        if np.isfinite(cmd).all():
            self.cmd, self.cmd_time = cmd, self.sim_time

    def _step(self) -> None:
        dt = 1.0 / self.physics_rate
        self.sim_time += dt
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=conv.sec_to_stamp(self.sim_time)))
        if self.done:
            return
        if not self.goal_sent and self.goal_pub.get_subscription_count() > 0:
            self._publish_goal()
        cmd = self.cmd if self.sim_time - self.cmd_time <= self.cmd_timeout else np.zeros(3)
        self.robot.step(cmd, dt)
        self.path.append(self.robot.pose[:2].copy())
        clearance = float(self.world.clearance(self.robot.pose[:2]))
        self.min_clearance = min(self.min_clearance, clearance)
        self._publish_odom()
        reached, self.xy_latched = goal_check(self.robot.pose, self.goal, self.xy_tol, self.yaw_tol,
                                              self.stateful, self.xy_latched)
        if clearance < 0.0:
            self._finish("collision")
        elif reached and np.abs(self.robot.velocity).max() < 0.05:
            self._finish("success")
        elif self.sim_time - self.start_time > self.episode_timeout:
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
        msg = PoseStamped()
        msg.header.stamp = conv.sec_to_stamp(self._stamp())
        msg.header.frame_id = "odom"
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


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = SimNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Keep serving the latched results for a moment after the last episode.
        while rclpy.ok() and not (node.done and time.monotonic() - node.done_at > 1.0):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
