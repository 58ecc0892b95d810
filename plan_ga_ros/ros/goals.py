"""Goals and global paths in any frame: ``/goal_pose`` and ``/plan`` into the planning session.

A goal or path whose frame differs from the odometry frame (Nav2's global plan and RViz goals are
in ``map``; the local costmap and odometry in ``odom``) is transformed with tf2, like Nav2's
controller server: the latest transform may be at most ``transform_tolerance`` old (a static one
never ages). The received poses are kept in their own frame and placed again before every tick, so
the path follows a moving ``map → odom`` without losing its pruning. A missing or stale transform
stops the robot with the reason (``session.reject("transform", …)``) until it is back.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.event_handler import SubscriptionEventCallbacks

from .. import parameters, path
from ..path import MAX_PATH_POSES
from ..session import PlannerSession
from . import conversions as conv

try:  # part of every ROS 2 install; absent from the PyPI wheels unless built (../shared/ros2-src)
    from rclpy.clock import JumpThreshold
    from rclpy.duration import Duration
    from rclpy.time import Time
    from tf2_ros import Buffer, TransformException, TransformListener

    TF2_ERROR = ""
except ImportError as exc:  # pragma: no cover - depends on the install
    TF2_ERROR = f"tf2_ros is not importable ({exc})"

PLAN_PUBLISH_PERIOD = 0.5  # s (wall): the pruned plan is republished at most this often while it changes
CARROT_EPSILON = 1e-3  # m, rad: a carrot that moved less is not republished


@dataclass
class _Source:
    """A goal or path as received: poses [N, 3] in ``frame`` ('' = the odometry frame)."""

    poses: np.ndarray
    frame: str
    received: float  # node-clock time of receipt (goal_timeout counts from it)
    is_path: bool
    placed_frame: str = ""  # the frame the session holds these poses in (after a transform)


def poses_from_path(msg: Path) -> np.ndarray:
    """[N, 3] poses (x, y, yaw) of a nav_msgs/Path; ValueError if empty, too long or not finite."""
    n = len(msg.poses)
    if n == 0:
        raise ValueError("empty path (0 poses)")
    if n > MAX_PATH_POSES:
        raise ValueError(f"path has {n} poses (at most {MAX_PATH_POSES})")
    raw = np.array([(p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y,
                     p.orientation.z, p.orientation.w) for p in (ps.pose for ps in msg.poses)], dtype=np.float64)
    bad = ~np.isfinite(raw).all(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"pose {k} of {n} is not finite: position {raw[k, :3].tolist()}, "
                         f"orientation {raw[k, 3:].tolist()}")
    qx, qy, qz, qw = raw[:, 3:].T
    norm = np.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if (norm < 1e-6).any():
        raise ValueError(f"pose {int(np.argmax(norm < 1e-6))} of {n} has a zero-length quaternion")
    qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
    yaw = np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    return np.column_stack([raw[:, 0], raw[:, 1], yaw])


def apply_planar(poses: np.ndarray, tx: float, ty: float, yaw: float) -> np.ndarray:
    """Poses [N, 3] moved by the planar transform (tx, ty, yaw): rotate, then translate."""
    c, s = math.cos(yaw), math.sin(yaw)
    out = np.empty_like(poses)
    out[:, 0] = tx + c * poses[:, 0] - s * poses[:, 1]
    out[:, 1] = ty + s * poses[:, 0] + c * poses[:, 1]
    out[:, 2] = np.arctan2(np.sin(poses[:, 2] + yaw), np.cos(poses[:, 2] + yaw))
    return out


class GoalInputs:
    """Subscribes ``/goal_pose`` and ``/plan``, places them in the odometry frame for ``session``, and
    publishes the carrot (``~/carrot``) and the pruned path (``~/pruned_plan``) for RViz.

    ``lock`` guards ``session``; every method takes it when it touches the session (so a plain Lock must
    not be held by the caller; a re-entrant one may be). ``before_tick``/``after_tick`` run on the
    planning thread, the subscriptions on the executor's.
    """

    def __init__(self, node: Any, session: PlannerSession, lock: Any, goal_qos: Any,
                 path_qos: Any) -> None:
        self._node, self._session, self._lock = node, session, lock
        self._log = node.get_logger()
        self._mutex = threading.Lock()  # guards the fields below (callbacks vs the planning thread)
        self._source: _Source | None = None
        self._tf_status = "not needed"
        self._tf_error = ""  # the reason while a transform is refused
        self._logged: dict[str, str] = {}  # last message logged per topic, so each change is logged once
        self._buffer = self._listener = self._jump_handle = None
        self._tolerance = float(parameters.default("transform_tolerance"))  # s; before_tick updates it
        self._plan_buffer = conv.PathBuffer()
        self._carrot_msg = PoseStamped()
        self._last_carrot: np.ndarray | None = None
        self._last_carrot_wall = 0.0
        self._plan_key: tuple | None = None
        self._generation = 0  # counts goals and paths received
        self._last_plan_wall = 0.0
        self._subs = [
            node.create_subscription(PoseStamped, "/goal_pose", self._on_goal, goal_qos,
                                     event_callbacks=self._qos_events("/goal_pose")),
            node.create_subscription(Path, "/plan", self._on_path, path_qos, event_callbacks=self._qos_events("/plan")),
        ]
        self._carrot_pub = node.create_publisher(PoseStamped, "~/carrot", 1)
        self._plan_pub = node.create_publisher(Path, "~/pruned_plan", 1)

    def _qos_events(self, topic: str) -> SubscriptionEventCallbacks:
        def incompatible(event: Any) -> None:
            policy = getattr(event.last_policy_kind, "name", str(event.last_policy_kind))
            self._log.error(f"incompatible QoS on subscription {topic}: a publisher offers an incompatible "
                            f"{policy} policy (total {event.total_count}); set the qos.* parameters to match it")
        return SubscriptionEventCallbacks(incompatible_qos=incompatible)

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def _on_goal(self, msg: PoseStamped) -> None:
        try:
            pose = conv.pose_from_msg(msg.pose)
        except ValueError as exc:
            self._refuse("goal", str(exc))
            return
        self._receive(_Source(pose[None], msg.header.frame_id, self._now(), False))

    def _on_path(self, msg: Path) -> None:
        try:
            poses = poses_from_path(msg)
        except ValueError as exc:
            self._refuse("path", str(exc))
            return
        frame = msg.header.frame_id or msg.poses[0].header.frame_id
        self._receive(_Source(poses, frame, self._now(), True))

    def _refuse(self, kind: str, reason: str) -> None:
        with self._mutex:
            self._source = None
            with self._lock:
                self._session.reject(kind, reason)  # forgets the goal or path: the robot stops
        self._log.debug(f"{kind} rejected: {reason}")  # the node logs the stop it causes, once

    def _receive(self, source: _Source) -> None:
        kind = "path" if source.is_path else "goal"
        with self._mutex:
            previous, self._source = self._source, source
            self._generation += 1
            with self._lock:
                target = self._session.odometry_frame
            self._place(source, target, self._now(), self._tolerance, first=True)
            accepted = self._source is source
        frame = source.frame or "<odometry frame>"
        what = (f"path of {len(source.poses)} poses" if source.is_path
                else "goal ({:.2f}, {:.2f}, {:.2f})".format(*source.poses[0]))
        self._log.debug(f"new {what} in '{frame}'")
        changed = previous is None or previous.is_path != source.is_path or previous.frame != source.frame
        if accepted and changed:
            self._log.info(f"following a {kind} in '{frame}'")  # on change only, not per goal

    # ------------------------------------------------------------------ placement
    def _place(self, source: _Source, target: str, now: float, tolerance: float, first: bool) -> None:
        """Put ``source`` into the session, in ``target`` (the odometry frame) when it can be transformed.
        A new goal goes in even without its transform (refused by the session until it comes); a goal
        already placed keeps its last placement while the transform is missing. Called with ``_mutex``."""
        poses, frame, error, status = source.poses, source.frame, None, "not needed"
        if frame and target and frame != target:
            if TF2_ERROR:
                status = f"{TF2_ERROR}: frames other than the odometry frame are refused"
                self._log_change("tf2", f"{TF2_ERROR}: goals and paths in '{frame}' (not the odometry frame "
                                 f"'{target}') are refused", warn=True)
            else:
                poses, error = self._transform(source, target, now, tolerance)
                frame, status = (target, "ok") if error is None else (frame, f"no transform: {error[1]}")
        with self._lock:
            if error is not None:
                self._session.reject("transform", error[1])
            else:
                self._session.accept("transform")
            if first or (error is None and frame != source.placed_frame):  # new, or placed in a new frame
                setter = self._session.set_path if source.is_path else self._session.set_goal
                problem = setter(poses if source.is_path else poses[0], source.received, frame)
                if problem is not None:
                    self._source = None
                    self._log.debug(f"{'path' if source.is_path else 'goal'} rejected: {problem}")
                    return
                source.placed_frame = frame
            elif error is None:
                self._session.update_goal_poses(poses)
        self._set_tf_status(error, status, f"'{source.frame}' → '{target}'")

    def _transform(self, source: _Source, target: str, now: float, tolerance: float
                   ) -> tuple[np.ndarray, tuple[str, str] | None]:
        """(poses in ``target``, None), or (the original poses, (kind, why the transform is refused))."""
        self._ensure_listener()
        pair = f"'{source.frame}' → '{target}'"
        try:
            tf = self._buffer.lookup_transform(target, source.frame, Time())
        except TransformException as exc:
            return source.poses, ("missing", f"{pair}: {str(exc).strip()[:200]}")
        stamp = conv.stamp_to_sec(tf.header.stamp)
        age = now - stamp
        if stamp > 0.0 and age > tolerance:  # stamp 0: a static transform, which never ages
            return source.poses, ("stale", f"{pair} is {age:.2f} s old (transform_tolerance "
                                           f"{tolerance:.2f} s)")
        t, q = tf.transform.translation, tf.transform.rotation
        try:
            yaw = conv.yaw_from_quaternion(q)
            if not (math.isfinite(t.x) and math.isfinite(t.y)):
                raise ValueError(f"translation is not finite: {[t.x, t.y]}")
        except ValueError as exc:
            return source.poses, ("invalid", f"{pair} is invalid: {exc}")
        return apply_planar(source.poses, t.x, t.y, yaw), None

    def _ensure_listener(self) -> None:
        """The tf2 listener, made on first need: a node whose goals are all in the odometry frame never
        deserialises /tf. Its subscriptions run on the node's own executor (no extra thread)."""
        if self._listener is not None:
            return
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, self._node, spin_thread=False)
        # Clear the buffer when the clock jumps back (a simulation reset), as Buffer(node=…) would,
        # without the tf2_frames service that comes with it.
        threshold = JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1), on_clock_change=True)
        self._jump_handle = self._node.get_clock().create_jump_callback(
            threshold, post_callback=lambda _jump: self._buffer.clear())

    def _set_tf_status(self, error: tuple[str, str] | None, status: str, pair: str) -> None:
        """Keep the status for diagnostics; log each change of state once at DEBUG (the node logs the
        stop a refused transform causes)."""
        if error is None and self._tf_error:
            self._log.debug(f"transform {pair} available")
        elif error is not None and error[0] != self._tf_error:
            self._log.debug(f"transform refused: {error[1]}")
        self._tf_error = "" if error is None else error[0]
        self._tf_status = status

    def before_tick(self, now: float, transform_tolerance: float) -> None:
        """Re-place a goal or path held in another frame with the latest transform (every tick)."""
        with self._mutex:
            self._tolerance = float(transform_tolerance)
            source = self._source
            if source is None:
                return
            with self._lock:
                target = self._session.odometry_frame
                held = self._session.has_goal
                forgotten = self._session.goal_pose is None
            if forgotten:  # the session dropped it (deactivate, cleanup, a refusal): so do we
                self._source = None
                return
            if source.frame and source.frame == target == source.placed_frame and self._tf_error:
                # The odometry frame came back to the goal's own frame: no transform is needed any more.
                with self._lock:
                    self._session.accept("transform")
                self._set_tf_status(None, "not needed (goal in the odometry frame)", f"{source.frame}")
                return
            if not source.frame or not target or (source.frame == target == source.placed_frame) or not held:
                return
            if TF2_ERROR and source.placed_frame == source.frame:
                if target != source.frame:  # the session refuses the frame itself; said once in the log
                    self._log_change("tf2", f"{TF2_ERROR}: goals and paths in '{source.frame}' (not the "
                                     f"odometry frame '{target}') are refused", warn=True)
                return
            self._place(source, target, now, transform_tolerance, first=False)

    # ------------------------------------------------------------------ outputs
    def after_tick(self, decision: Any, frame: str, now: float) -> None:
        """Publish the carrot when it moved and the pruned path when it changed (at most every
        PLAN_PUBLISH_PERIOD s), each only while someone listens.

        In path mode the published carrot is the point ``carrot_distance`` along the pruned path (what
        the user set, as Nav2 RPP's lookahead point); the model's goal (``decision.carrot``) is that
        point pushed out along its bearing to the clip distance. With a single goal it is the goal."""
        if decision.carrot is None:
            return  # the tick stopped before choosing a goal for the model
        want_carrot = self._carrot_pub.get_subscription_count() > 0
        want_plan = self._plan_pub.get_subscription_count() > 0
        if not (want_carrot or want_plan):
            return
        with self._lock:
            rest = self._session.remaining_path
            rest = None if rest is None else rest.copy()
            config = self._session.config
        with self._mutex:
            generation = self._generation
        wall = time.monotonic()
        if want_carrot:
            carrot = np.asarray(decision.carrot, dtype=np.float64)
            if rest is not None and len(rest):
                carrot, _ = path.carrot(rest, 0, min(config.carrot_distance, config.goal_clip_distance))
            moved = self._last_carrot is None or np.abs(carrot - self._last_carrot).max() > CARROT_EPSILON
            if moved or wall - self._last_carrot_wall > 1.0:
                msg = self._carrot_msg
                msg.header.stamp = conv.sec_to_stamp(now)
                msg.header.frame_id = frame
                msg.pose.position.x, msg.pose.position.y = float(carrot[0]), float(carrot[1])
                msg.pose.orientation = conv.quaternion_from_yaw(float(carrot[2]))
                self._carrot_pub.publish(msg)
                self._last_carrot, self._last_carrot_wall = carrot, wall
        if not want_plan or rest is None or len(rest) == 0:
            return
        key = (generation, len(rest), *np.round(rest[[0, -1]], 3).ravel().tolist(), frame)
        if key == self._plan_key:
            return
        new_path = self._plan_key is None or self._plan_key[0] != generation
        if not new_path and wall - self._last_plan_wall < PLAN_PUBLISH_PERIOD:
            return  # pruning progress or a moving frame: throttled; a new path goes out at once
        self._plan_pub.publish(self._plan_buffer.fill(rest, frame, now, 0.0))
        self._plan_key, self._last_plan_wall = key, wall

    # ------------------------------------------------------------------ state
    def diagnostics(self) -> dict[str, str]:
        """Goal mode, frame, transform status and the path's remaining poses."""
        with self._mutex:
            source, tf_status = self._source, self._tf_status
        with self._lock:
            rest = self._session.remaining_path
            n_rest = 0 if rest is None else len(rest)
        if source is None:
            return {"goal_mode": "none"}
        out = {"goal_mode": "path" if source.is_path else "goal",
               "goal_frame": source.frame[:256] or "<odometry frame>",
               "goal_transform": tf_status[:300]}
        if source.is_path:
            out["path_poses"] = str(len(source.poses))
            out["path_poses_remaining"] = str(n_rest)
        return out

    def _log_change(self, topic: str, message: str, warn: bool) -> None:
        """Log ``message`` once per change for ``topic`` (a flood of bad goals logs one line)."""
        if self._logged.get(topic) == message:
            return
        self._logged[topic] = message
        if warn:  # rclpy pins one severity per call site: two calls, not one with a chosen method
            self._log.warning(message)
        else:
            self._log.info(message)

    def destroy(self) -> None:
        """Release subscriptions, publishers and the tf2 listener."""
        if self._listener is not None:
            self._listener.unregister()
            self._jump_handle.unregister()
            self._listener = self._buffer = self._jump_handle = None
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._node.destroy_publisher(self._carrot_pub)
        self._node.destroy_publisher(self._plan_pub)
        self._subs = []
        with self._mutex:
            self._source = None
