"""Simulator + planner on a ROS 2 install: ros2 launch plan_ga_ros demo.launch.py [use_sim_time:=true].

The simulator drives ``episodes`` held-out worlds and ``routes`` long routes along a global path
(/plan); with ``use_sim_time:=true`` it publishes /clock and both nodes run on it. The launch
ends when the simulator has finished its episodes (or exits for any reason): the planner then
gets SIGINT and stops the robot. The params file's values are kept except ``use_sim_time``, which
the demo sets for both nodes, and ``model_path`` when given.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "plan_ga_ros"
PLANNER = "plan_ga_planner"
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _nodes(context, *_args, **_kwargs) -> list:
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    if arg("use_sim_time").lower() not in BOOLEANS:
        raise ValueError(f"use_sim_time must be true or false, got {arg('use_sim_time')!r}")
    sim_time = BOOLEANS[arg("use_sim_time").lower()]
    sim = Node(package=PACKAGE, executable="sim_node", name="plan_ga_sim", output="screen",
               parameters=[{"publish_clock": sim_time, "episodes": int(arg("episodes")),
                            "route_episodes": int(arg("routes")), "seed": int(arg("seed")),
                            "episode_timeout": float(arg("episode_timeout")), "wait_for_subscriber": PLANNER}])
    overrides = {"use_sim_time": sim_time, **({"model_path": arg("model_path")} if arg("model_path") else {})}
    planner = Node(package=PACKAGE, executable="planner_node", name=PLANNER, output="screen",
                   parameters=[arg("params_file"), overrides])
    # The demo is over when the simulator is: end the launch (the planner gets SIGINT, stops the robot).
    done = RegisterEventHandler(OnProcessExit(target_action=sim, on_exit=[Shutdown(reason="the simulator ended")]))
    return [sim, planner, done]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true: the simulator publishes /clock and both nodes run on it."),
        DeclareLaunchArgument("episodes", default_value="7", description="Held-out worlds to drive."),
        DeclareLaunchArgument("routes", default_value="3", description="Long routes (8–15 m) driven after them."),
        DeclareLaunchArgument("seed", default_value="100000", description="First held-out world seed."),
        DeclareLaunchArgument("episode_timeout", default_value="40.0", description="Seconds per episode "
                              "(long routes get 15 s + 3 s per metre)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "planner.yaml"),
                              description="Parameter file for plan_ga_planner."),
        DeclareLaunchArgument("model_path", default_value="", description="ONNX model; empty keeps the params "
                              "file's value."),
        OpaqueFunction(function=_nodes),
    ])
