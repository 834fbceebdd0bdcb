"""franka_ros2 interfaces: names, QoS and the target controllers, plus franka_msgs imported lazily.

franka_ros2 is a source-built ROS package: a machine with only the ROS 2 PyPI wheels does not have it. The
franka_bridge and fake_franka nodes import it through `load_franka_msgs()`, so everything else in sole_r1_ros
(and the graph runner resolving a real_franka graph) keeps working without it.

Every default name is relative, like the names franka_ros2 and crisp_controllers create: with no namespace they
resolve to `/franka_robot_state_broadcaster/robot_state`, `/target_pose`, ...; a graph started with `namespace:=left`
talks to a franka_ros2 brought up with `namespace:=left`.
"""
from __future__ import annotations

import dataclasses

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

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


@dataclasses.dataclass(frozen=True)
class TargetController:
    """A Cartesian impedance controller that tracks a PoseStamped target in the robot base frame."""

    topic: str             # its input, relative (resolved in the controller manager's namespace)
    depth: int             # the subscription's history depth; both are reliable + volatile
    controller_name: str   # its name in config/franka/controllers.yaml (what franka_bringup.launch.py spawns)
    description: str


# The two ros2_control controllers the bridge can drive (docs/real_robot.md, "Which controller"):
# - crisp_controllers' CartesianController (v1.0.0 and main) subscribes the *relative* name `target_pose` with
#   rclcpp::QoS(1) (reliable, volatile, depth 1) and ignores targets while more than one publisher is matched.
# - franka_ros2 v3.4.0's cartesian_impedance_example_controller subscribes `~/equilibrium_pose` with
#   SystemDefaultsQoS (reliable, volatile, depth 10).
TARGET_CONTROLLERS = {
    "crisp": TargetController("target_pose", 1, "cartesian_impedance_controller",
                              "crisp_controllers CartesianController (`target_pose`)"),
    "franka_example": TargetController(
        "cartesian_impedance_example_controller/equilibrium_pose", 10, "cartesian_impedance_example_controller",
        "franka_ros2 >= v3.4.0 cartesian_impedance_example_controller (`~/equilibrium_pose`)"),
}
DEFAULT_TARGET_CONTROLLER = "crisp"


def target_qos(controller: str) -> QoSProfile:
    """The QoS of a target controller's pose subscription (what a publisher to it, or a twin of it, uses)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=TARGET_CONTROLLERS[controller].depth,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


# franka_robot_state_broadcaster publishes the full FrankaRobotState at the controller rate (1 kHz) with
# SystemDefaultsQoS. Readers take it best-effort, newest only: a reliable reader would make the real-time
# publisher keep and resend samples for it, and older samples are of no use to anyone here.
ROBOT_STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)
# What the broadcaster itself uses (fake_franka serves the state with it, like franka_ros2).
ROBOT_STATE_PUBLISHER_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                       reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

# franka_ros2 (v2.x+) default names, relative: one place for the defaults of franka_bridge AND fake_franka, so the
# twin always serves what the bridge expects. `config/real_franka.yaml` restates them for readers.
ROBOT_STATE_TOPIC = "franka_robot_state_broadcaster/robot_state"   # franka_msgs/msg/FrankaRobotState
GRIPPER_JOINT_STATES_TOPIC = "franka_gripper/joint_states"         # sensor_msgs/JointState (finger joints)
GRIPPER_MOVE_ACTION = "franka_gripper/move"                        # franka_msgs/action/Move
GRIPPER_GRASP_ACTION = "franka_gripper/grasp"                      # franka_msgs/action/Grasp
GRIPPER_HOMING_ACTION = "franka_gripper/homing"                    # franka_msgs/action/Homing
ERROR_RECOVERY_ACTION = "action_server/error_recovery"             # franka_msgs/action/ErrorRecovery


@dataclasses.dataclass
class FrankaInterfaceNames:
    """franka_ros2 topic and action names: parameters of franka_bridge (client) and fake_franka (server) alike."""

    target_controller: str = param(DEFAULT_TARGET_CONTROLLER, "controller that tracks the target pose: crisp "
                                   "(crisp_controllers) or franka_example (franka_ros2's "
                                   "cartesian_impedance_example_controller)", choices=tuple(TARGET_CONTROLLERS))
    target_pose_topic: str = param("", "PoseStamped input of that controller; empty = its default name "
                                   "(crisp: target_pose, franka_example: cartesian_impedance_example_controller/"
                                   "equilibrium_pose)")
    robot_state_topic: str = param(ROBOT_STATE_TOPIC, "franka_msgs/FrankaRobotState of the state broadcaster")
    gripper_joint_states_topic: str = param(GRIPPER_JOINT_STATES_TOPIC, "finger JointState of franka_gripper")
    gripper_move_action: str = param(GRIPPER_MOVE_ACTION, "franka_msgs/action/Move (open)")
    gripper_grasp_action: str = param(GRIPPER_GRASP_ACTION, "franka_msgs/action/Grasp (close)")
    gripper_homing_action: str = param(GRIPPER_HOMING_ACTION, "franka_msgs/action/Homing (operator only)")
    error_recovery_action: str = param(ERROR_RECOVERY_ACTION, "franka_msgs/action/ErrorRecovery (operator only)")

    @property
    def target_topic(self) -> str:
        """The target-pose topic actually used: `target_pose_topic`, or the chosen controller's input."""
        return self.target_pose_topic or TARGET_CONTROLLERS[self.target_controller].topic

    @property
    def target_qos(self) -> QoSProfile:
        """QoS matching the chosen controller's subscription."""
        return target_qos(self.target_controller)
