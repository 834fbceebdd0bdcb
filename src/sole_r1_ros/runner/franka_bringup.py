"""The franka_ros2 side of the real robot as one launch description (launch/franka_bringup.launch.py).

It includes franka_bringup's franka.launch.py (franka_ros2 v3.4: ros2_control_node with franka_hardware,
robot_state_publisher, joint_state_broadcaster, franka_robot_state_broadcaster -- on real hardware only -- and
franka_gripper) with config/franka/controllers.yaml, then spawns the chosen target controller ACTIVE: crisp's demos
spawn theirs `--inactive`, and an inactive controller ignores every target (the arm would never move). Only this
module and launch_support import `launch`/`launch_ros`.
"""
from __future__ import annotations

from sole_r1_config.paths import config_dir
from sole_r1_ros.ros.franka_interfaces import DEFAULT_TARGET_CONTROLLER, TARGET_CONTROLLERS

# (name, default or None when required, description)
ARGUMENTS = (
    ("robot_ip", None, "Franka control box address, e.g. 172.16.0.2 (anything with use_fake_hardware:=true)"),
    ("target_controller", DEFAULT_TARGET_CONTROLLER,
     f"controller tracking sole_r1's target pose: {', '.join(TARGET_CONTROLLERS)} (must match the graph's)"),
    ("robot_type", "fr3", "franka_ros2 robot_type (fr3; fer for a Panda needs its own controllers_yaml)"),
    ("namespace", "", "ROS namespace of the robot (the sole_r1 graph must get the same namespace:=)"),
    ("use_fake_hardware", "false", "franka_ros2's fake hardware (no robot state broadcaster, no motion)"),
    ("controllers_yaml", "", "ros2_control controllers file (empty: sole_r1's config/franka/controllers.yaml)"),
)


def franka_bringup_description():
    """LaunchDescription: the arguments above, then franka_bringup + the target controller spawner."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, description=text, **({} if default is None else
                                                                   {"default_value": default}))
                for name, default, text in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_bringup)])


def _bringup(context):
    """OpaqueFunction body: the franka.launch.py include and the active spawner of the chosen controller."""
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    if value["target_controller"] not in TARGET_CONTROLLERS:
        raise ValueError(f"target_controller:={value['target_controller']} is not one of {list(TARGET_CONTROLLERS)}")
    controller = TARGET_CONTROLLERS[value["target_controller"]]
    controllers_yaml = value["controllers_yaml"] or str(config_dir() / "franka" / "controllers.yaml")
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("franka_bringup"), "launch",
                                                            "franka.launch.py"])),
        launch_arguments={"robot_ip": value["robot_ip"], "robot_type": value["robot_type"],
                          "namespace": value["namespace"], "use_fake_hardware": value["use_fake_hardware"],
                          "load_gripper": "true", "load_franka_robot_state_broadcaster": "true",
                          "controllers_yaml": controllers_yaml}.items())
    spawner = Node(package="controller_manager", executable="spawner", namespace=value["namespace"] or None,
                   arguments=[controller.controller_name, "--controller-manager-timeout", "60"], output="screen")
    return [franka, spawner]
