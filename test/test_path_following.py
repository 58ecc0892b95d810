"""Following a global path (nav_msgs/Path on /plan) over real DDS, in the odometry frame and through tf2."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path as FsPath

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Path
from rclpy.qos import QoSProfile, ReliabilityPolicy
from test_node import moving, stopped

from plan_ga_ros.ros import conversions as conv

REPO = FsPath(__file__).resolve().parents[1]
FREE = np.zeros((160, 160), np.int8)  # 8 m x 8 m at 0.05 m around the origin
ORIGIN = (-4.0, -4.0, 0.0)
CARROT = 1.0  # carrot_distance in these tests (m)
HAS_TF2 = importlib.util.find_spec("tf2_ros") is not None
NO_TF2 = ("tf2_ros is not importable here (source .venv/ros_overlay/env.bash after building "
          "../shared/ros2-src, or use a ROS 2 install)")


def l_path(n1: int = 41, n2: int = 31) -> np.ndarray:
    """(0, 0) → (2, 0) → (2, 1.5), a pose every 5 cm, each heading along the path."""
    a = np.column_stack([np.linspace(0, 2, n1), np.zeros(n1), np.zeros(n1)])
    b = np.column_stack([np.full(n2 - 1, 2.0), np.linspace(0, 1.5, n2)[1:], np.full(n2 - 1, np.pi / 2)])
    return np.vstack([a, b])


def path_msg(poses: np.ndarray, frame: str = "odom") -> Path:
    msg = Path()
    msg.header.frame_id = frame
    for x, y, yaw in np.asarray(poses, dtype=float):
        ps = PoseStamped()
        ps.header.frame_id = frame
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        ps.pose.orientation = conv.quaternion_from_yaw(float(yaw))
        msg.poses.append(ps)
    return msg


def poses_of(msg: Path) -> np.ndarray:
    return np.array([[p.pose.position.x, p.pose.position.y, conv.yaw_from_quaternion(p.pose.orientation)]
                     for p in msg.poses])


def pose_of(msg: PoseStamped) -> np.ndarray:
    return np.array([msg.pose.position.x, msg.pose.position.y, conv.yaw_from_quaternion(msg.pose.orientation)])


def distance_to_polyline(xy: np.ndarray, poses: np.ndarray) -> float:
    a, b = poses[:-1, :2], poses[1:, :2]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", xy - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
    return float(np.hypot(*(a + t[:, None] * ab - xy).T).min())


def transformed(poses: np.ndarray, tx: float, ty: float, yaw: float) -> np.ndarray:
    """Poses given in ``map`` expressed in ``odom``, where the map → odom transform is (tx, ty, yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    dx, dy = poses[:, 0] - tx, poses[:, 1] - ty
    th = np.arctan2(np.sin(poses[:, 2] - yaw), np.cos(poses[:, 2] - yaw))
    return np.column_stack([c * dx + s * dy, -s * dx + c * dy, th])


class PathDriver:
    """The Harness plus a planner_server-like /plan publisher, the RViz topics and tf broadcasters."""

    def __init__(self, h) -> None:
        self.h = h
        node = h.node
        self.path_pub = node.create_publisher(Path, "/plan", QoSProfile(depth=1,
                                                                        reliability=ReliabilityPolicy.RELIABLE))
        h.received["carrot"], h.received["pruned_plan"] = [], []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(PoseStamped, "/plan_ga_planner/carrot", h._rec("carrot"), reliable)
        node.create_subscription(Path, "/plan_ga_planner/pruned_plan", h._rec("pruned_plan"), reliable)
        self.tf = self.static_tf = None

    def send_path(self, poses: np.ndarray | Path, frame: str = "odom") -> None:
        h = self.h
        assert h.wait_for(lambda: self.path_pub.get_subscription_count() > 0, 10.0), "the planner has no /plan"
        msg = poses if isinstance(poses, Path) else path_msg(poses, frame)
        msg.header.stamp = conv.sec_to_stamp(h.now())
        self.path_pub.publish(msg)

    def transform_msg(self, tx: float, ty: float, yaw: float, stamp: float | None) -> TransformStamped:
        t = TransformStamped()
        t.header.frame_id, t.child_frame_id = "map", "odom"
        t.header.stamp = conv.sec_to_stamp(self.h.now() if stamp is None else stamp)
        t.transform.translation.x, t.transform.translation.y = float(tx), float(ty)
        t.transform.rotation = conv.quaternion_from_yaw(yaw)
        return t

    def send_static(self, tx: float, ty: float, yaw: float) -> None:
        from tf2_ros import StaticTransformBroadcaster

        self.static_tf = self.static_tf or StaticTransformBroadcaster(self.h.node)
        self.static_tf.sendTransform(self.transform_msg(tx, ty, yaw, None))

    def send_tf(self, tx: float, ty: float, yaw: float, stamp: float | None = None) -> None:
        from tf2_ros import TransformBroadcaster

        self.tf = self.tf or TransformBroadcaster(self.h.node)
        self.tf.sendTransform(self.transform_msg(tx, ty, yaw, stamp))

    def last(self, key: str):
        msgs = self.h.messages(key)
        return msgs[-1].msg if msgs else None

    def wait_msg(self, key: str, predicate, timeout: float = 10.0, new: bool = True):
        """The first message of ``key`` (received from now on if ``new``) that satisfies ``predicate``."""
        start = len(self.h.messages(key)) if new else 0
        found = []

        def check() -> bool:
            found[:] = [r.msg for r in self.h.messages(key)[start:] if predicate(r.msg)]
            return bool(found)

        self.h.wait_for(check, timeout)
        return found[0] if found else None


@pytest.fixture
def driver(harness_factory, models):
    def make(**params) -> PathDriver:
        h = harness_factory({"model_path": models.go_to_goal, "planner": "onnx", "carrot_distance": CARROT,
                             **params})
        h.set_costmap(FREE, 0.05, ORIGIN)
        return PathDriver(h)

    return make


def reached(h, timeout: float) -> bool:
    return h.wait_for(lambda: "goal reached" in h.diag_values().get("stop_reason", ""), timeout)


def test_follows_a_path_pruning_it_with_the_carrot_on_it_to_its_end(driver):
    """Carrot at carrot_distance along the path, passed poses pruned, goal reached at the path's end."""
    d = driver()
    h = d.h
    path = l_path()
    d.send_path(path)
    carrot = d.wait_msg("carrot", lambda m: True, new=False)
    assert carrot is not None, "no carrot published"
    assert carrot.header.frame_id == "odom"
    np.testing.assert_allclose(pose_of(carrot), [CARROT, 0.0, 0.0], atol=1e-6)  # robot at rest at (0, 0)
    first = d.wait_msg("pruned_plan", lambda m: True, new=False)
    assert first is not None and len(first.poses) == len(path)
    np.testing.assert_allclose(poses_of(first), path, atol=1e-6)

    h.state.integrate_cmd = True
    assert reached(h, 40.0), h.diag_values()
    assert h.wait_for(lambda: stopped(h), 2.0)
    pose = h.state.pose.copy()
    assert np.hypot(*(pose[:2] - path[-1, :2])) <= 0.15 + 0.02, pose
    # Pruning: the published remainder only shrinks, down to the last few poses near the end.
    plans = [poses_of(r.msg) for r in h.messages("pruned_plan")]
    lengths = [len(p) for p in plans]
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < len(path) // 4, lengths
    for p in plans:
        np.testing.assert_allclose(p, path[len(path) - len(p):], atol=1e-6)  # a suffix of the path
    # Every carrot lies on the path, never behind the previous one, carrot_distance ahead of the
    # remainder's first pose until the path's end is closer.
    carrots = np.array([pose_of(r.msg) for r in h.messages("carrot")])
    assert len(carrots) > 5
    assert max(distance_to_polyline(c[:2], path) for c in carrots) < 1e-6
    seg = np.hypot(*np.diff(path[:, :2], axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    along = [arc[int(np.argmin(np.hypot(*(path[:, :2] - c[:2]).T)))] for c in carrots]
    assert all(b >= a - 0.051 for a, b in zip(along, along[1:])), along
    np.testing.assert_allclose(carrots[-1], path[-1], atol=1e-6)


def test_a_new_path_replaces_the_old_one(driver):
    d = driver()
    h = d.h
    d.send_path(l_path())
    assert d.wait_msg("carrot", lambda m: True, new=False) is not None
    other = np.column_stack([np.zeros(31), np.linspace(0, -1.5, 31), np.full(31, -np.pi / 2)])
    d.send_path(other)
    plan = d.wait_msg("pruned_plan", lambda m: len(m.poses) == len(other))
    assert plan is not None, [len(r.msg.poses) for r in h.messages("pruned_plan")]
    np.testing.assert_allclose(poses_of(plan), other, atol=1e-6)
    carrot = d.wait_msg("carrot", lambda m: abs(m.pose.position.y + CARROT) < 1e-6)
    assert carrot is not None, [pose_of(r.msg) for r in h.messages("carrot")[-3:]]
    np.testing.assert_allclose(pose_of(carrot), [0.0, -CARROT, -np.pi / 2], atol=1e-6)
    assert h.wait_for(lambda: moving(h) and h.last_cmd()[2] < 0, 5.0), h.last_cmd()  # turning right, to it


@pytest.mark.parametrize("bad, reason", [
    (np.zeros((0, 3)), "empty path"),
    (np.array([[0.5, 0.0, 0.0], [np.nan, 0.2, 0.0], [1.5, 0.0, 0.0]]), "not finite"),
    (np.array([[0.5, 0.0, 0.0], [1.0, np.inf, 0.0]]), "not finite"),
])
def test_bad_paths_are_refused_and_stop_the_robot(driver, bad, reason):
    d = driver()
    h = d.h
    d.send_path(l_path())
    assert h.wait_for(lambda: moving(h), 10.0), "not moving on a good path"
    d.send_path(bad)
    assert h.wait_for(lambda: stopped(h), 2.0), h.last_cmd()
    v = h.wait_diag(lambda v: reason in v.get("stop_reason", ""), 5.0)
    assert "path rejected" in v.get("stop_reason", "") and reason in v["stop_reason"], v
    time.sleep(0.5)
    assert stopped(h)
    d.send_path(l_path())  # a good path again: planning resumes
    assert h.wait_for(lambda: moving(h), 10.0)


def test_a_goal_after_a_path_switches_back_to_a_single_goal(driver):
    d = driver(yaw_goal_tolerance=3.14)  # the test model steers to the goal's position only
    h = d.h
    d.send_path(l_path())
    assert d.wait_msg("carrot", lambda m: True, new=False) is not None
    v = h.wait_diag(lambda v: v.get("goal_mode") == "path", 5.0)
    assert v.get("goal_mode") == "path", v
    goal = np.array([1.0, -0.6, -0.5])
    h.send_goal(*goal)
    # The carrot is the goal itself now; the path is gone.
    carrot = d.wait_msg("carrot", lambda m: abs(m.pose.position.y - goal[1]) < 1e-6)
    assert carrot is not None, [pose_of(r.msg) for r in h.messages("carrot")[-3:]]
    np.testing.assert_allclose(pose_of(carrot), goal, atol=1e-6)
    v = h.wait_diag(lambda v: v.get("goal_mode") == "goal", 5.0)
    assert v.get("goal_mode") == "goal" and "path_poses_remaining" not in v, v
    h.state.integrate_cmd = True
    assert reached(h, 30.0), h.diag_values()
    assert np.hypot(*(h.state.pose[:2] - goal[:2])) <= 0.17, h.state.pose


# ---------------------------------------------------------------------------------------------- tf2
@pytest.mark.skipif(not HAS_TF2, reason=NO_TF2)
def test_a_path_in_map_with_a_static_transform_arrives_in_the_odometry_frame(driver):
    d = driver()
    h = d.h
    tf = (1.0, -0.5, 0.3)  # the pose of odom in map
    d.send_static(*tf)
    in_map = l_path()
    d.send_path(in_map, "map")
    expected = transformed(in_map, *tf)
    plan = d.wait_msg("pruned_plan", lambda m: True, new=False)
    assert plan is not None, h.diag_values()
    assert plan.header.frame_id == "odom"
    # The robot (at the odom origin) is nearest to the path pose at (1, 0) in map: pruned up to it.
    nearest = int(np.argmin(np.hypot(*expected[:, :2].T)))
    assert 15 <= nearest <= 25
    np.testing.assert_allclose(poses_of(plan), expected[nearest:], atol=1e-6)
    v = h.wait_diag(lambda v: v.get("goal_frame") == "map" and v.get("goal_transform") == "ok", 5.0)
    assert v.get("goal_transform") == "ok", v
    assert h.wait_for(lambda: moving(h), 10.0), h.diag_values()
    h.state.integrate_cmd = True
    assert reached(h, 40.0), h.diag_values()
    assert np.hypot(*(h.state.pose[:2] - expected[-1, :2])) <= 0.17, (h.state.pose, expected[-1])


@pytest.mark.skipif(not HAS_TF2, reason=NO_TF2)
def test_a_goal_in_map_without_a_transform_stops_the_robot_with_the_reason(driver):
    d = driver()
    h = d.h
    d.send_path(l_path())
    assert h.wait_for(lambda: moving(h), 10.0)
    h.send_goal(1.0, 0.0, 0.0, frame="map")  # no map → odom anywhere
    assert h.wait_for(lambda: stopped(h), 3.0), h.last_cmd()
    v = h.wait_diag(lambda v: "no transform" in v.get("stop_reason", ""), 5.0)
    assert "'map'" in v.get("stop_reason", "") and "'odom'" in v["stop_reason"], v
    d.send_static(0.0, 0.0, 0.0)  # once it exists the goal is followed
    assert h.wait_for(lambda: moving(h), 10.0), h.diag_values()


@pytest.mark.skipif(not HAS_TF2, reason=NO_TF2)
def test_a_path_in_map_follows_a_moving_transform_and_stops_when_it_goes_stale(driver):
    """map → odom drifts at 0.2 m/s (as localisation corrects odometry): the path is placed again every
    tick with a transform at most transform_tolerance old; when the transform stops coming for longer
    than that, the robot stops with the reason, and plans again once it is back."""
    tolerance, rate = 0.3, 0.2
    d = driver(transform_tolerance=tolerance)
    h = d.h
    t0 = h.now()
    in_map = l_path()
    d.send_tf(0.0, 0.0, 0.0, t0)
    d.send_path(in_map, "map")
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        d.send_tf(rate * (h.now() - t0), 0.0, 0.0)  # stamped now: tx grows with the stamp
        time.sleep(0.05)
    plans = [r.msg for r in h.messages("pruned_plan")]
    assert len(plans) >= 4, len(plans)  # republished as the frame moves (at most every 0.5 s)
    for plan in plans:
        # Placed with a transform stamped within transform_tolerance before the tick (and not after it).
        age = conv.stamp_to_sec(plan.header.stamp) - t0
        shift = in_map[-1, 0] - poses_of(plan)[-1, 0]
        assert rate * (age - tolerance) - 1e-3 <= shift <= rate * age + 1e-3, (age, shift)
    assert in_map[-1, 0] - poses_of(plans[-1])[-1, 0] > 0.5  # it really moved
    assert any(np.any(conv.twist_from_msg(r.msg) != 0) for r in h.messages("cmd_vel")), "never moved"
    # The transform stops: older than transform_tolerance → stopped, with the reason.
    assert h.wait_for(lambda: stopped(h), 3.0), h.last_cmd()
    v = h.wait_diag(lambda v: "transform_tolerance" in v.get("stop_reason", ""), 5.0)
    assert "no transform" in v.get("stop_reason", "") and "old" in v["stop_reason"], v
    assert "old" in v.get("goal_transform", ""), v

    def back() -> bool:
        d.send_tf(rate * (h.now() - t0), 0.0, 0.0)
        return moving(h)

    assert h.wait_for(back, 5.0), h.diag_values()  # the transform is back: planning resumes


def test_without_tf2_other_frames_are_refused_and_the_log_says_why(tmp_path, models):
    """The node without tf2_ros (the overlay's paths removed from the environment): a path in map
    is refused (frames disagree), the log says tf2_ros is missing, the robot never moves."""
    from harness import ExternalPlanner

    env = {k: v for k, v in os.environ.items()}
    for var in ("PYTHONPATH", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        if var in env:
            env[var] = os.pathsep.join(p for p in env[var].split(os.pathsep) if "ros_overlay" not in p)
    probe = subprocess.run([sys.executable, "-c", "import tf2_ros"], env=env, capture_output=True)
    if probe.returncode == 0:
        pytest.skip("tf2_ros comes with this ROS 2 install; it cannot be removed from the environment")
    exe = FsPath(sys.executable).with_name("planner_node")
    ext = ExternalPlanner([str(exe), "--ros-args", "-p", f"model_path:={models.go_to_goal}", "-p",
                           "planner:=onnx"], env)
    h = ext.harness
    try:
        d = PathDriver(h)
        h.set_costmap(FREE, 0.05, ORIGIN)
        d.send_path(l_path(), "map")
        v = h.wait_diag(lambda v: "frame" in v.get("stop_reason", ""), 15.0)
        time.sleep(0.5)
        never_moved = not any(np.any(conv.twist_from_msg(r.msg) != 0) for r in h.messages("cmd_vel"))
    finally:
        log = ext.close()
    assert "'map'" in v.get("stop_reason", ""), (v, log)
    assert never_moved
    assert "tf2_ros is not importable" in log, log


# ------------------------------------------------------------------------------------ a long route
def test_follows_a_long_path_through_a_cluttered_world_in_the_simulator(harness_factory):
    """The simulator node in its own process (a robot base, a Nav2-like rolling costmap, a global path on
    /plan from Dijkstra on the inflated world) and the planner with the shipped model, over DDS: one
    8–15 m route through clutter, followed to its end without a collision."""
    import json

    from rclpy.qos import DurabilityPolicy
    from std_msgs.msg import String

    model = REPO / "models" / "planner.onnx"
    if not model.exists():
        pytest.skip("no shipped model (models/planner.onnx)")
    h = harness_factory({"model_path": str(model)})
    h.state.send_odom = False  # the simulator is the robot here
    results: list[dict] = []
    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    h.node.create_subscription(String, "/plan_ga_sim/episode_result", lambda m: results.append(json.loads(m.data)),
                               latched)
    exe = FsPath(sys.executable).with_name("sim_node")
    # Seed 100004: an 11.7 m route through 25–60 scattered obstacles (the offline session drives it in
    # 25 s); a generous time limit, since other processes may share the two cores.
    sim = subprocess.Popen([str(exe), "--ros-args", "-p", "episodes:=0", "-p", "route_episodes:=1", "-p",
                            "seed:=100004", "-p", "episode_timeout:=90.0", "-p",
                            "wait_for_subscriber:=plan_ga_planner"],
                           env=dict(os.environ, ROS_DOMAIN_ID=str(h.domain)), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        h.wait_for(lambda: bool(results) or sim.poll() is not None, 200.0)
    finally:
        sim.terminate()
        log = sim.communicate(timeout=20)[0]
    assert results, "the route did not finish within 200 s:\n" + log
    r = results[0]
    assert r["followed_path"] and r["route_length"] >= 8.0 and r["kind"] == "long_route:clutter", r
    summary = {k: r[k] for k in ("outcome", "kind", "time", "route_length", "path_length", "min_clearance")}
    print(f"long route: {summary}")
    assert r["outcome"] == "success", summary
    assert r["min_clearance"] >= 0.0, summary
