"""franka_msgs (franka_ros2), imported lazily with an error that says what to install.

franka_ros2 is a source-built ROS package: a machine with only the ROS 2 PyPI wheels does not have it. The
franka_bridge and fake_franka nodes import it through `load_franka_msgs()`, so everything else in sole_r1_ros
(and the graph runner resolving a real_franka graph) keeps working without it.
"""
from __future__ import annotations

import dataclasses

from sole_r1_config import ConfigError, param

INSTALL_HINT = (
    "franka_msgs is not importable: install franka_ros2 (https://github.com/frankarobotics/franka_ros2, v2.x or "
    "later) into your ROS 2 workspace and source it, or, for tests on a machine without it, build the test-only "
    "subset: `.venv/bin/python tests/fixtures/build_franka_msgs.py` and put the printed install's "
    "lib/python3.X/site-packages on PYTHONPATH and its lib/ on LD_LIBRARY_PATH (tests/fixtures/build_franka_msgs.py: "
    "franka_msgs_env())")


class FrankaMsgsMissing(ConfigError):
    """franka_msgs cannot be imported (a ConfigError, so run_node exits 2 with the message, no traceback)."""


@dataclasses.dataclass(frozen=True)
class FrankaMsgs:
    """The franka_msgs types the bridge and the twin use."""

    FrankaRobotState: type
    Move: type
    Grasp: type
    Homing: type
    ErrorRecovery: type


def load_franka_msgs() -> FrankaMsgs:
    """Import franka_msgs' robot state message and gripper / error-recovery actions, or raise FrankaMsgsMissing."""
    try:
        from franka_msgs.action import ErrorRecovery, Grasp, Homing, Move
        from franka_msgs.msg import FrankaRobotState
    except ImportError as exc:   # also the typesupport libraries missing from LD_LIBRARY_PATH
        raise FrankaMsgsMissing(f"{INSTALL_HINT} (import error: {exc})") from exc
    except Exception as exc:  # noqa: BLE001 -- rosidl raises its own types when a .so cannot load
        raise FrankaMsgsMissing(f"{INSTALL_HINT} (could not load franka_msgs: {exc})") from exc
    return FrankaMsgs(FrankaRobotState, Move, Grasp, Homing, ErrorRecovery)


# franka_ros2 (v2.x+) default names: one place for the defaults of franka_bridge AND fake_franka, so the twin
# always serves what the bridge expects. `config/real_franka.yaml` restates them for readers.
ROBOT_STATE_TOPIC = "/franka_robot_state_broadcaster/robot_state"   # franka_msgs/msg/FrankaRobotState
# crisp_controllers' CartesianImpedanceController subscribes `~/target_pose` (PoseStamped, base frame, QoS depth 1,
# reliable); loaded under the name cartesian_impedance_controller that is this topic.
TARGET_POSE_TOPIC = "/cartesian_impedance_controller/target_pose"  # geometry_msgs/PoseStamped
GRIPPER_JOINT_STATES_TOPIC = "/franka_gripper/joint_states"         # sensor_msgs/JointState (finger joints)
GRIPPER_MOVE_ACTION = "/franka_gripper/move"                        # franka_msgs/action/Move
GRIPPER_GRASP_ACTION = "/franka_gripper/grasp"                      # franka_msgs/action/Grasp
GRIPPER_HOMING_ACTION = "/franka_gripper/homing"                    # franka_msgs/action/Homing
ERROR_RECOVERY_ACTION = "/action_server/error_recovery"             # franka_msgs/action/ErrorRecovery


@dataclasses.dataclass
class FrankaInterfaceNames:
    """franka_ros2 topic and action names: parameters of franka_bridge (client) and fake_franka (server) alike."""

    robot_state_topic: str = param(ROBOT_STATE_TOPIC, "franka_msgs/FrankaRobotState of the state broadcaster")
    target_pose_topic: str = param(TARGET_POSE_TOPIC, "PoseStamped target of the Cartesian impedance controller")
    gripper_joint_states_topic: str = param(GRIPPER_JOINT_STATES_TOPIC, "finger JointState of franka_gripper")
    gripper_move_action: str = param(GRIPPER_MOVE_ACTION, "franka_msgs/action/Move (open)")
    gripper_grasp_action: str = param(GRIPPER_GRASP_ACTION, "franka_msgs/action/Grasp (close)")
    gripper_homing_action: str = param(GRIPPER_HOMING_ACTION, "franka_msgs/action/Homing (operator only)")
    error_recovery_action: str = param(ERROR_RECOVERY_ACTION, "franka_msgs/action/ErrorRecovery (operator only)")
