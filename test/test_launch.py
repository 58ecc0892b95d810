"""A real `ros2 launch plan_ga_ros planner.launch.py` of the colcon-installed package, driven over DDS.

Runs where launch_ros is importable (a ROS 2 install, or the overlay that ../shared/ros2-src builds
onto .venv); elsewhere it skips and says why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx_models as om
import pytest
from geometry_msgs.msg import PoseStamped
from harness import fresh_domain
from test_package import build_install, installed_env, launch_env

NODE = "/plan_ga_planner"
FREE = np.zeros((120, 120), np.int8)
ORIGIN = (-3.0, -3.0, 0.0)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The environment of a shell where the package is installed and `ros2 launch` works."""
    base, why = launch_env()
    if base is None:
        pytest.skip(why)
    if shutil.which("ros2", path=base.get("PATH")) is None:
        pytest.skip("launch_ros imports but there is no `ros2` command on PATH")
    return installed_env(build_install(tmp_path_factory), base)


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


class Launched:
    """`ros2 launch` in a session of its own (so signals go to its whole process group), on a DDS
    domain of its own, with a Harness driving the planner it starts."""

    def __init__(self, env: dict[str, str], log: Path, *launch_args: str) -> None:
        from harness import Harness

        self.domain = str(fresh_domain())
        self.log_path = log
        self._log = open(log, "w")
        cmd = ["ros2", "launch", "plan_ga_ros", "planner.launch.py", *launch_args]
        self.proc = subprocess.Popen(cmd, env={**env, "ROS_DOMAIN_ID": self.domain,
                                               "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"},
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = self.proc.pid
        saved = os.environ["ROS_DOMAIN_ID"]
        os.environ["ROS_DOMAIN_ID"] = self.domain
        try:
            self.harness = Harness(None)
        finally:
            os.environ["ROS_DOMAIN_ID"] = saved

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def parameters(self, *names: str, timeout: float = 20.0) -> dict[str, Any]:
        """The planner's parameter values, asked through its get_parameters service."""
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        client = self.harness.node.create_client(GetParameters, f"{NODE}/get_parameters")
        try:
            assert client.wait_for_service(timeout_sec=timeout), "the planner's parameter service never appeared:\n" \
                + self.output()
            future = client.call_async(GetParameters.Request(names=list(names)))
            assert self.harness.wait_for(future.done, timeout), "no answer from get_parameters"
            return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}
        finally:
            self.harness.node.destroy_client(client)

    def interrupt(self, timeout: float = 20.0) -> int | None:
        """Ctrl-C in a terminal: SIGINT to the launch's whole process group; its exit code."""
        os.killpg(self.pgid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        self.harness.close()
        if self.proc.poll() is None:
            self.interrupt(10.0)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _group_members(self.pgid):
                break
            os.killpg(self.pgid, sig)
            time.sleep(1.0)
        self.proc.wait(5.0)
        self._log.close()


@pytest.fixture
def launched(env, tmp_path):
    made: list[Launched] = []

    def start(*launch_args: str) -> Launched:
        run = Launched(env, tmp_path / f"launch{len(made)}.log", *launch_args)
        made.append(run)
        return run

    yield start
    for run in made:
        run.close()


def _params_file(path: Path, model: str) -> str:
    path.write_text("plan_ga_planner:\n  ros__parameters:\n"
                    f"    model_path: '{model}'\n    use_sim_time: true\n    planning_frequency: 10.0\n")
    return str(path)


def test_params_file_values_are_kept(launched, tmp_path):
    """No argument given: model_path and use_sim_time come from the params file (the launch file's
    defaults no longer override them)."""
    model = om.go_to_goal(str(tmp_path / "from_params_file.onnx"))
    run = launched(f"params_file:={_params_file(tmp_path / 'p.yaml', model)}")
    values = run.parameters("model_path", "use_sim_time", "planning_frequency")
    assert values == {"model_path": model, "use_sim_time": True, "planning_frequency": 10.0}, run.output()


def test_arguments_take_effect(launched, tmp_path):
    """Given arguments override the params file (and only those); topics are remapped; log_level sets
    the node's logger, not rcl's."""
    model = om.go_to_goal(str(tmp_path / "from_params_file.onnx"))
    other = om.go_to_goal(str(tmp_path / "from_argument.onnx"))
    run = launched(f"params_file:={_params_file(tmp_path / 'p.yaml', model)}", f"model_path:={other}",
                   "use_sim_time:=false", "path_topic:=/my_plan", "goal_topic:=/my_goal", "log_level:=debug")
    values = run.parameters("model_path", "use_sim_time", "planning_frequency")
    assert values == {"model_path": other, "use_sim_time": False, "planning_frequency": 10.0}, run.output()
    node = run.harness.node

    def subscribed(topic: str) -> bool:
        return any(i.node_name == "plan_ga_planner" for i in node.get_subscriptions_info_by_topic(topic))

    assert run.harness.wait_for(lambda: subscribed("/my_plan") and subscribed("/my_goal"), 10.0), run.output()
    assert not subscribed("/plan") and not subscribed("/goal_pose")
    goal_pub = node.create_publisher(PoseStamped, "/my_goal", 1)
    assert run.harness.wait_for(lambda: goal_pub.get_subscription_count() > 0, 10.0)
    goal = PoseStamped()
    goal.header.frame_id = "odom"
    goal.pose.position.x, goal.pose.orientation.w = 1.0, 1.0
    goal_pub.publish(goal)  # each goal is logged at DEBUG

    def goal_logged() -> bool:
        return any("[DEBUG]" in line and "[plan_ga_planner]: new goal" in line for line in run.output().splitlines())

    assert run.harness.wait_for(goal_logged, 10.0), run.output()
    out = run.output()
    assert "[rcl]" not in out and "[rmw" not in out, "log_level changed rcl's/rmw's loggers too:\n" + out[-3000:]


def test_ctrl_c_delivers_a_zero_command_and_leaves_no_process(launched, tmp_path):
    """SIGINT to the launch's process group (a terminal's Ctrl-C) while the robot is commanded to move:
    the last /cmd_vel received is zero, every process exits, no traceback."""
    run = launched(f"model_path:={om.go_to_goal(str(tmp_path / 'go.onnx'))}")
    h = run.harness
    h.set_costmap(FREE, 0.05, ORIGIN)
    assert h.wait_for(lambda: h.goal_pub.get_subscription_count() > 0, 30.0), run.output()
    h.send_goal(1.5, 0.5)

    def moving() -> bool:
        cmd = h.last_cmd()
        return cmd is not None and bool(np.any(cmd != 0))

    assert h.wait_for(moving, 20.0), "the planner never commanded motion:\n" + run.output()
    code = run.interrupt()
    time.sleep(0.5)  # the zero command in flight
    out = run.output()
    assert code is not None, "ros2 launch did not exit within 20 s of SIGINT:\n" + out
    assert not _group_members(run.pgid), "processes left behind:\n" + out
    last = h.last_cmd()
    assert last is not None and not np.any(last != 0), f"last command {last} is not zero:\n{out}"
    assert "Traceback" not in out, out
