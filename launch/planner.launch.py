"""Launch the plan_ga_ros planner on a ROS 2 install: ros2 launch plan_ga_ros planner.launch.py.

The params file's values are kept: ``model_path``, ``use_sim_time`` and ``log_level`` override
them only when given (their defaults are empty). Topic arguments remap the node's inputs/outputs.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "plan_ga_ros"
NODE_NAME = "plan_ga_planner"
TOPICS = {  # launch argument: the node's default topic name
    "costmap_topic": "/local_costmap/costmap",
    "odom_topic": "/odom",
    "goal_topic": "/goal_pose",
    "path_topic": "/plan",
    "cmd_vel_topic": "/cmd_vel",
}
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _planner(context, *_args, **_kwargs) -> list:
    """The node, with an override only for each argument that was given a value."""
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    overrides = {}
    if arg("model_path"):
        overrides["model_path"] = arg("model_path")
    if arg("use_sim_time"):
        if arg("use_sim_time").lower() not in BOOLEANS:
            raise ValueError(f"use_sim_time must be true or false, got {arg('use_sim_time')!r}")
        overrides["use_sim_time"] = BOOLEANS[arg("use_sim_time").lower()]
    parameters = [arg("params_file")] + ([overrides] if overrides else [])
    # The node's own logger only: rcl's and rmw's loggers keep their level.
    ros_arguments = ["--log-level", f"{NODE_NAME}:={arg('log_level')}"] if arg("log_level") else []
    return [Node(
        package=PACKAGE,
        executable="planner_node",
        name=NODE_NAME,
        output="screen",
        parameters=parameters,
        remappings=[(default, arg(name)) for name, default in TOPICS.items() if arg(name) != default],
        ros_arguments=ros_arguments,
    )]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "planner.yaml"),
                              description="Parameter file for plan_ga_planner; its values are kept unless "
                                          "an argument below overrides them."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="ONNX model; empty keeps the params file's value (whose empty "
                                          "value means the package's models/planner.onnx)."),
        DeclareLaunchArgument("use_sim_time", default_value="",
                              description="true or false: use /clock time; empty keeps the params file's value."),
        DeclareLaunchArgument("log_level", default_value="",
                              description="Level of the node's logger (debug, info, warn, error); empty: info."),
        *[DeclareLaunchArgument(name, default_value=default, description=f"Remap {default}.")
          for name, default in TOPICS.items()],
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_planner)])
