"""Bring up franka_ros2 for sole_r1 (robot, gripper, state broadcaster, target controller), before real_franka:
ros2 launch sole_r1 franka_bringup.launch.py robot_ip:=172.16.0.2 [target_controller:=crisp|franka_example]"""
from sole_r1_ros.runner.franka_bringup import franka_bringup_description


def generate_launch_description():
    """Arguments and actions come from sole_r1_ros.runner.franka_bringup (docs/real_robot.md, section 5)."""
    return franka_bringup_description()
