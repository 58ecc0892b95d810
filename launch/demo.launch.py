"""Simulator + planner on a ROS 2 install: ros2 launch plan_ga_ros demo.launch.py."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "plan_ga_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("episodes", default_value="10", description="Held-out worlds to drive."),
        DeclareLaunchArgument("seed", default_value="100000", description="First held-out world seed."),
        Node(package=PACKAGE, executable="sim_node", name="plan_ga_sim", output="screen",
             parameters=[{"use_sim_time": use_sim_time,
                          "episodes": ParameterValue(LaunchConfiguration("episodes"), value_type=int),
                          "seed": ParameterValue(LaunchConfiguration("seed"), value_type=int)}]),
        Node(package=PACKAGE, executable="planner_node", name="plan_ga_planner", output="screen",
             parameters=[os.path.join(share, "config", "planner.yaml"), {"use_sim_time": use_sim_time}]),
    ])
