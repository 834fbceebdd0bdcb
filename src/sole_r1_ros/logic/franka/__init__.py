"""Franka bridge logic (no rclpy): target poses from gated deltas, binary gripper, franka_msgs robot modes."""
from sole_r1_ros.logic.franka.bridge import (BridgeStep, FrankaBridgeConfig, FrankaBridgeLogic, GripperAction,
                                             GripperConfig, GripperHysteresis, TargetPose, compute_target_pose)
from sole_r1_ros.logic.franka.robot_mode import STOP_MODES, RobotMode, parse_robot_mode

__all__ = ["BridgeStep", "FrankaBridgeConfig", "FrankaBridgeLogic", "GripperAction", "GripperConfig",
           "GripperHysteresis", "RobotMode", "STOP_MODES", "TargetPose", "compute_target_pose", "parse_robot_mode"]
