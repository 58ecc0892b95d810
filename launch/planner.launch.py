"""Launch the plan_ga_ros planner on a ROS 2 install: ros2 launch plan_ga_ros planner.launch.py."""

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
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "planner.yaml"),
                              description="Parameter file for plan_ga_planner."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="ONNX model; empty uses the package's models/planner.onnx."),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock time."),
        DeclareLaunchArgument("costmap_topic", default_value="/local_costmap/costmap"),
        DeclareLaunchArgument("odom_topic", default_value="/odom"),
        DeclareLaunchArgument("goal_topic", default_value="/goal_pose"),
        DeclareLaunchArgument("cmd_vel_topic", default_value="/cmd_vel"),
        DeclareLaunchArgument("log_level", default_value="info"),
    ]
    planner = Node(
        package=PACKAGE,
        executable="planner_node",
        name="plan_ga_planner",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
        remappings=[
            ("/local_costmap/costmap", LaunchConfiguration("costmap_topic")),
            ("/odom", LaunchConfiguration("odom_topic")),
            ("/goal_pose", LaunchConfiguration("goal_topic")),
            ("/cmd_vel", LaunchConfiguration("cmd_vel_topic")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription([*args, planner])
