"""ROS messages ↔ numpy (every function validates what it reads and raises ValueError), and waiting until a
last message is delivered."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Quaternion, Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.duration import Duration
from rclpy.qos import ReliabilityPolicy
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension

from ..tensors import Grid

ACK_TIMEOUT = 1.0  # s: on the way out, how long a last message waits for its subscribers' acknowledgement


def wait_acknowledged(publisher, what: str, logger) -> None:
    """Before the process exits: wait until the reliable subscribers of ``publisher`` have acknowledged what
    it published last (``what``: its name in the warning), at most ``ACK_TIMEOUT`` s. A message published
    right before the exit is otherwise lost."""
    if publisher.qos_profile.reliability != ReliabilityPolicy.RELIABLE:
        return
    if not publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT)):
        logger.warning(f"{what} was not acknowledged within {ACK_TIMEOUT} s")


def stamp_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    sec = math.floor(t)
    # A fraction that rounds up to 1e9 ns carries into the seconds: 4.9999999999 is 5 s 0 ns, not 4 s 0 ns
    # (a clock that jumps back by a second).
    carry, nanosec = divmod(int(round((t - sec) * 1e9)), 1_000_000_000)
    return Time(sec=int(sec) + carry, nanosec=nanosec)


def yaw_from_quaternion(q: Quaternion) -> float:
    """Yaw of a quaternion; raises ValueError on non-finite or zero-length quaternions.

    Scalar math, not numpy: it runs for every odometry message (50-100 Hz).
    """
    x, y, z, w = q.x, q.y, q.z, q.w
    norm = math.hypot(x, y, z, w)  # inf if any is inf, nan if any is nan; no overflow
    if not math.isfinite(norm):
        raise ValueError(f"quaternion is not finite: {[x, y, z, w]}")
    if norm < 1e-6:
        raise ValueError("quaternion has zero length")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> Quaternion:
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def grid_from_msg(msg: OccupancyGrid, max_cells: int) -> Grid:
    """A validated Grid view of an OccupancyGrid (no copy of the cell data)."""
    info = msg.info
    o = info.origin
    origin = (o.position.x, o.position.y, yaw_from_quaternion(o.orientation))
    data = np.frombuffer(msg.data, dtype=np.int8) if len(msg.data) else np.zeros(0, np.int8)
    return Grid.from_flat(data, int(info.width), int(info.height), float(info.resolution), origin,
                          msg.header.frame_id, max_cells=max_cells)


def pose_from_msg(pose) -> np.ndarray:
    """[x, y, yaw] from a geometry_msgs/Pose; raises ValueError on non-finite values."""
    p = pose.position
    if not (math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(p.z)):
        raise ValueError(f"position is not finite: {[p.x, p.y, p.z]}")
    return np.array([p.x, p.y, yaw_from_quaternion(pose.orientation)])


def odometry_from_msg(msg: Odometry) -> tuple[np.ndarray, np.ndarray]:
    """(pose [x, y, yaw] in the odom frame, body twist [v_x, v_y, ω]); ValueError if not finite.
    (Whether the numbers are plausible is the session's call.)"""
    pose = pose_from_msg(msg.pose.pose)
    t = msg.twist.twist
    used = (t.linear.x, t.linear.y, t.angular.z)
    if not all(math.isfinite(v) for v in (*used, t.linear.z, t.angular.x, t.angular.y)):
        raise ValueError(f"odometry twist is not finite: {[*used, t.linear.z, t.angular.x, t.angular.y]}")
    return pose, np.array(used, dtype=np.float64)


def goal_from_msg(msg: PoseStamped) -> np.ndarray:
    return pose_from_msg(msg.pose)


def trajectory_msg(controls: np.ndarray) -> Float32MultiArray:
    """Float32MultiArray with layout [steps, controls], step-major."""
    steps, k = controls.shape
    msg = Float32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label="steps", size=steps, stride=steps * k),
        MultiArrayDimension(label="controls", size=k, stride=k),
    ]
    msg.data = np.asarray(controls, dtype=np.float32).ravel().tolist()
    return msg


class PathBuffer:
    """A nav_msgs/Path refilled in place every tick.

    Building 21 PoseStamped messages per tick costs ~6x more than setting the numbers of
    existing ones (measured); rclpy serialises on publish, so reusing the message is safe.
    """

    def __init__(self) -> None:
        self.msg = Path()

    def fill(self, poses: np.ndarray, frame_id: str, start: float, dt: float) -> Path:
        poses = np.asarray(poses, dtype=np.float64)
        msg = self.msg
        if len(msg.poses) != len(poses):
            msg.poses = [PoseStamped() for _ in range(len(poses))]
        msg.header.stamp = sec_to_stamp(start)
        msg.header.frame_id = frame_id
        half = 0.5 * poses[:, 2]
        xs, ys = poses[:, 0].tolist(), poses[:, 1].tolist()
        qz, qw = np.sin(half).tolist(), np.cos(half).tolist()
        for k, ps in enumerate(msg.poses):  # 21 poses, not cells
            ps.header.stamp = sec_to_stamp(start + k * dt)
            ps.header.frame_id = frame_id
            pose = ps.pose
            pose.position.x, pose.position.y = xs[k], ys[k]
            pose.orientation.z, pose.orientation.w = qz[k], qw[k]
        return msg


def twist_msg(command: Sequence[float]) -> Twist:
    t = Twist()
    t.linear.x, t.linear.y, t.angular.z = (float(v) for v in command)
    return t


def twist_stamped_msg(command: Sequence[float], frame_id: str, stamp: float) -> TwistStamped:
    return TwistStamped(header=Header(stamp=sec_to_stamp(stamp), frame_id=frame_id), twist=twist_msg(command))


def twist_from_msg(msg: Twist | TwistStamped) -> np.ndarray:
    t = msg.twist if isinstance(msg, TwistStamped) else msg
    return np.array([t.linear.x, t.linear.y, t.angular.z], dtype=np.float64)


def diagnostic_status(name: str, hardware_id: str, level: int | bytes, message: str, values: dict
                      ) -> DiagnosticStatus:
    """A DiagnosticStatus; ``level`` as an int (0 OK, 1 WARN, 2 ERROR, 3 STALE) or its byte."""
    return DiagnosticStatus(
        level=level if isinstance(level, bytes) else bytes([int(level)]), name=name, hardware_id=hardware_id,
        message=message,
        values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()],
    )
