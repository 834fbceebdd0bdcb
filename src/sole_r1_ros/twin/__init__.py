"""MuJoCo twin of a Franka + Franka Hand (no rclpy): scene, Cartesian impedance controller, robot modes, cameras."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")   # headless rendering; must be set before any submodule imports mujoco

from sole_r1_ros.twin.controller import CartesianImpedanceController, ImpedanceConfig  # noqa: E402
from sole_r1_ros.twin.scene import SceneConfig, build_scene_xml  # noqa: E402
from sole_r1_ros.twin.twin import FrankaTwin, GripperGoal, TwinConfig  # noqa: E402

__all__ = ["CartesianImpedanceController", "FrankaTwin", "GripperGoal", "ImpedanceConfig", "SceneConfig", "TwinConfig",
           "build_scene_xml"]
