"""Topic and service names every sole_r1 node uses, in one place and without rclpy (the graph runner reads them).

They are absolute, so the nodes of one graph find each other whatever their own namespace. A graph started with
`namespace:=NS` remaps each of them to /NS/<name> (runner/graph.py: `namespaced_remappings`), which separates two
robots; /diagnostics stays global, as diagnostic aggregators expect.
"""
from __future__ import annotations

SHOULDER_IMAGE = "/cameras/shoulder/image_raw"
SHOULDER_INFO = "/cameras/shoulder/camera_info"
WRIST_IMAGE = "/cameras/wrist/image_raw"
WRIST_INFO = "/cameras/wrist/camera_info"
JOINT_STATES = "/robot/joint_states"
EE_POSE = "/robot/ee_pose"
ACTION_SCALE = "/robot/action_scale"     # std_msgs/Float64MultiArray, latched: [m, rad] per unit action (bridge)
GRIPPER_STATE = "/robot/gripper"          # sensor_msgs/JointState, one joint "opening": 0 closed .. 1 fully open
TARGET_POSE = "/robot/target_pose"
ROBOT_COMMAND = "/robot/command"          # gated EEDeltaCommand: only the safety gate publishes here
LEARNER_COMMAND = "/learner/command"      # raw EEDeltaCommand from the learner, into the safety gate
PROGRESS = "/reward/progress"
REWARD_MARKERS = "/reward/markers"
EPISODE_INFO = "/episode/info"
TASK = "/episode/task"
ESTOP = "/estop"                          # std_msgs/Bool, latched: anyone publishes True to stop the robot
ESTOP_STATE = "/safety/estopped"          # std_msgs/Bool, latched: the gate's e-stop latch (learner pauses on True)
ROBOT_MODE = "/robot/mode"                # std_msgs/String, latched: robot mode name (franka_msgs RobotMode names)
DIAGNOSTICS = "/diagnostics"
RESET_EPISODE_SERVICE = "/episode/reset"
QUERY_PROGRESS_SERVICE = "/reward/query"
SAFETY_WORKSPACE = "/safety/workspace"                      # latched Marker: the workspace box, for rviz
TRIGGER_ESTOP_SERVICE = "/safety/trigger_estop"             # std_srvs/Trigger
RESET_ESTOP_SERVICE = "/safety/reset_estop"                 # std_srvs/Trigger
ERROR_RECOVERY_SERVICE = "/franka_bridge/error_recovery"    # std_srvs/Trigger, operator only
HOME_GRIPPER_SERVICE = "/franka_bridge/home_gripper"        # std_srvs/Trigger, operator only

# Names that stay global under a graph namespace.
SHARED_NAMES = (DIAGNOSTICS,)
# Every absolute name above: a namespaced graph remaps these.
GLOBAL_NAMES = tuple(value for key, value in sorted(globals().items()) if key.isupper() and isinstance(value, str)
                     and value.startswith("/") and value not in SHARED_NAMES)
