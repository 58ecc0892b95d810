"""The README's demo, shortened: simulator + planner as separate processes over DDS on loopback, and the
demo launch file on simulated time."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx_models as om
import pytest
from harness import fresh_domain

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "planner.onnx"
OUTCOMES = {"success", "collision", "timeout"}


def run_demo(tmp_path, *extra):
    env = dict(os.environ, ROS_DOMAIN_ID=str(fresh_domain()))
    exe = Path(sys.executable).with_name("plan_ga_demo")
    return subprocess.run([str(exe), "--out-dir", str(tmp_path), *extra], env=env, capture_output=True, text=True,
                          timeout=300)


def _table_rows(stdout: str) -> dict[int, list[str]]:
    """The result table's rows by seed: seed, world, outcome, time, route, driven, clearance, GA %, ..."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) >= 8 and re.fullmatch(r"\d{6,}", cells[0]) and cells[2] in OUTCOMES:
            rows[int(cells[0])] = cells
    return rows


@pytest.mark.slow
@pytest.mark.dds
def test_demo_two_short_worlds(tmp_path):
    model = []
    if not SHIPPED.exists():  # before the trained model ships: an obstacle-blind test model
        model = ["--model", om.go_to_goal(str(tmp_path / "go_to_goal.onnx"))]
    out = run_demo(tmp_path, "--episodes", "2", "--routes", "0", "--episode-timeout", "25", *model)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "demo.json").read_text())
    episodes, summary = report["episodes"], report["summary"]
    assert [e["seed"] for e in episodes] == [100000, 100001]
    assert summary["episodes"] == 2
    # The summary is the episodes' outcomes, counted.
    outcomes = [e["outcome"] for e in episodes]
    assert set(outcomes) <= OUTCOMES
    assert summary["successes"] == outcomes.count("success") == round(summary["success_rate"] * 2)
    assert summary["collisions"] == outcomes.count("collision") == 0, episodes
    assert summary["timeouts"] == outcomes.count("timeout")
    for e in episodes:
        assert e["success"] == (e["outcome"] == "success")
        # Each episode followed a global path the simulator planned, and the robot drove.
        assert e["followed_path"] and e["route_length"] > 0.5 and len(e["route"]) >= 2, e["kind"]
        assert e["path_length"] > 0.3, e
        assert e["min_clearance"] >= 0.0, e
        assert len(e["trace"]) > 10 and len(e["trace_fallback"]) == len(e["trace"])
        if e["success"]:
            assert e["time"] <= e["time_limit"]
            # The trace ends at the goal (within the tolerance, and the robot stopped there).
            end = e["trace"][-1]
            assert abs(end[0] - e["goal"][0]) < 0.3 and abs(end[1] - e["goal"][1]) < 0.3, (end, e["goal"])
    # The table printed what demo.json holds.
    rows = _table_rows(out.stdout)
    assert set(rows) == {100000, 100001}, out.stdout
    for e in episodes:
        row = rows[e["seed"]]
        assert row[2] == e["outcome"] and float(row[3]) == pytest.approx(e["time"], abs=0.06), (row, e)
    assert f"success {summary['success_rate']:.0%} ({summary['successes']}/2" in out.stdout
    assert summary["planner_achieved_rate_hz"] > 5.0  # the planner ran (its exact rate depends on the machine)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "demo_bag" / "metadata.yaml").is_file()
    if not model:
        assert summary["success_rate"] >= 0.5, out.stdout


@pytest.mark.dds
def test_demo_fails_when_the_planner_has_no_model(tmp_path):
    out = run_demo(tmp_path, "--episodes", "1", "--routes", "0", "--model", str(tmp_path / "missing.onnx"))
    assert out.returncode == 1
    assert "no model" in out.stderr or "planner node failed" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.unit
def test_demo_picture_without_matplotlib_says_so(tmp_path):
    """matplotlib is a demo/training dependency, not the node's: without it the demo says so, no traceback."""
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from pathlib import Path\nfrom plan_ga_ros.sim import demo\n"
            f"print(demo.draw_picture([{{'seed': 100000}}], Path({str(tmp_path / 'demo.png')!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "matplotlib is not installed" in out.stdout
    assert not (tmp_path / "demo.png").exists()


@pytest.mark.slow
def test_demo_launch_on_sim_time_ends_by_itself(tmp_path_factory, tmp_path):
    """`ros2 launch plan_ga_ros demo.launch.py use_sim_time:=true`: the simulator publishes /clock, the
    planner on sim time drives the episode to its goal, and the launch ends when the simulator does."""
    from test_launch import _group_members
    from test_package import build_install, installed_env, launch_env

    base, why = launch_env()
    if base is None:
        pytest.skip(why)
    env = installed_env(build_install(tmp_path_factory), base)
    env.update(ROS_DOMAIN_ID=str(fresh_domain()),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    log = tmp_path / "launch.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(["ros2", "launch", "plan_ga_ros", "demo.launch.py", "use_sim_time:=true",
                                 "episodes:=1", "routes:=0", "episode_timeout:=30.0"], env=env, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                time.sleep(5)
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    if _group_members(proc.pid):
                        os.killpg(proc.pid, sig)
                        time.sleep(1)
                proc.wait(10)
    out = log.read_text()
    assert code is not None, "the demo launch did not end by itself within 150 s:\n" + out[-4000:]
    assert code == 0, out[-4000:]
    assert re.search(r"episode 1/1: success in [\d.]+ s", out), "the robot did not reach the goal on sim time:\n" + \
        out[-4000:]
    assert "all episodes done" in out
    assert "Traceback" not in out and "process has died" not in out, out[-4000:]  # both nodes exit cleanly
    assert not _group_members(proc.pid), "processes left behind:\n" + out[-4000:]



@pytest.mark.dds
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_simulator_stops_its_robot_and_exits_cleanly_on_a_signal(tmp_path, sig):
    """The simulator's robot is driving (a /cmd_vel of 0.3 m/s): SIGINT or SIGTERM brings it to rest (its
    last odometry says so) and the node exits with status 0 and no traceback."""
    import rclpy
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    domain = fresh_domain()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("sim_signal_test", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    odoms: list[Odometry] = []
    paths: list[PathMsg] = []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(Odometry, "/odom", odoms.append, 50)
    node.create_subscription(PathMsg, "/plan", paths.append, latched)  # the episode starts once /plan is heard
    cmd_pub = node.create_publisher(Twist, "/cmd_vel", 10)
    log = tmp_path / "sim.log"
    exe = Path(sys.executable).with_name("sim_node")
    with open(log, "w") as f:
        proc = subprocess.Popen([str(exe), "--ros-args", "-p", "episodes:=1", "-p", "episode_timeout:=60.0"],
                                env=dict(os.environ, ROS_DOMAIN_ID=str(domain)), stdout=f, stderr=subprocess.STDOUT)
    try:
        cmd = Twist()
        cmd.linear.x = 0.3
        end = time.monotonic() + 60.0
        while time.monotonic() < end and not (odoms and odoms[-1].twist.twist.linear.x > 0.2):
            if paths:
                cmd_pub.publish(cmd)
            executor.spin_once(timeout_sec=0.05)
        assert paths and odoms and odoms[-1].twist.twist.linear.x > 0.2, "the robot never drove:\n" + log.read_text()
        proc.send_signal(sig)
        code = proc.wait(timeout=20)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # the last odometry in flight
            executor.spin_once(timeout_sec=0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    out = log.read_text()
    assert code == 0, out
    assert "Traceback" not in out and "robot stopped" in out, out
    last = odoms[-1].twist.twist
    assert last.linear.x == 0.0 and last.angular.z == 0.0, f"the last odometry still moves: {last}"
