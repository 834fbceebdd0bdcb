"""MuJoCo Franka Panda + Franka Hand scene and its 1 kHz Cartesian impedance controller (no rclpy).

The emulation of franka_ros2 around them (robot modes, gripper goals, cameras) is the real-robot twin in
`sole_r1_ros.logic.franka.twin`, which the `fake_franka` node serves over ROS.
"""
from sole_r1_sim.twin.controller import CartesianImpedanceController, ImpedanceConfig
from sole_r1_sim.twin.scene import SceneConfig, build_scene_xml

__all__ = ["CartesianImpedanceController", "ImpedanceConfig", "SceneConfig", "build_scene_xml"]
