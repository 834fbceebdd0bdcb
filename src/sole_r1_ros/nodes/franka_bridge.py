"""franka_bridge: gated EE deltas -> franka_ros2 (Cartesian impedance target pose, gripper actions); proprio out.

In:  /robot/command (EEDeltaCommand, from the safety gate only), FrankaRobotState (robot_mode, o_t_ee, joints;
     1 kHz on the real robot: only the newest is taken, `state_rate_hz` times a second), the gripper's finger
     JointState, /safety/estopped (the gate's latch: no episode reset while it is set).
Out: the target PoseStamped of a Cartesian impedance controller (`target_controller`: crisp -> `target_pose`,
     franka_example -> `cartesian_impedance_example_controller/equilibrium_pose`, relative names, with the QoS of
     that controller's subscription; `target_pose_topic` overrides the name), franka_msgs Move (open) / Grasp
     (close) goals,
     /robot/ee_pose, /robot/target_pose, /robot/joint_states (arm + fingers), /robot/gripper (opening 0..1),
     /robot/mode (latched String), /estop (latched Bool: True when the robot reports REFLEX or USER_STOPPED, False
     again once an operator recovered it), EpisodeInfo.
Services: /franka_bridge/error_recovery and /franka_bridge/home_gripper (std_srvs/Trigger, operator only -- the
     bridge never recovers or homes by itself), /episode/reset (ResetEpisode: move slowly to the reset pose, open).

All the decisions (target = measured pose + scaled, limited delta; gripper hysteresis; hold latch; which robot modes
allow motion or recovery) are in sole_r1_ros.logic.franka.FrankaBridgeLogic; this node only translates messages.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from sole_r1.msg import EEDeltaCommand, EpisodeInfo
from sole_r1.srv import ResetEpisode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros import franka_interfaces as fi
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.latest_sample import LatestSampleReader
from sole_r1_ros.logic.franka import FrankaBridgeConfig, FrankaBridgeLogic, GripperAction
from sole_r1_ros.logic.franka.bridge import (FRANKA_HAND_MAX_WIDTH_M, MOTION_MODES, compute_target_pose, quat_conjugate,
                                             quat_multiply, quat_normalize, quat_to_rotvec)
from sole_r1_ros.logic.franka.robot_mode import STOP_MODES
from sole_r1_ros.ros.msg_convert import command_from_msg, pose_from_arrays
from sole_r1_ros.logic.safety.command import CommandDelta

@dataclasses.dataclass
class FrankaBridgeNodeConfig:
    """franka_bridge's own parameters; the motion limits and gripper are FrankaBridgeConfig's, the franka_ros2
    names FrankaInterfaceNames'."""

    robot_ip: str = param("", "Franka control box address franka_ros2 connects to (shown in /diagnostics)")
    base_frame: str = param("base", "frame of every pose (the robot base)")
    proprio_rate_hz: float = param(50.0, "max rate of /robot/ee_pose and /robot/joint_states", low=1.0, high=1000.0)
    state_rate_hz: float = param(100.0, "robot states decoded per second, newest first (franka_ros2 publishes "
                                 "them at 1 kHz; the rest are dropped undecoded)", low=10.0, high=1000.0)
    control_rate_hz: float = param(10.0, "rate of reset-motion steps (the learner's commands are applied as they "
                                   "come)", low=1.0, high=100.0)
    action_timeout_s: float = param(15.0, "operator services and resets give up waiting after this long", low=0.5,
                                    high=600.0)
    reset_position: list = param([0.45, 0.0, 0.25], "EE position of the episode reset pose, base frame, m")
    reset_quaternion: list = param([1.0, 0.0, 0.0, 0.0], "EE orientation of the reset pose, x y z w")


class FrankaBridge(Node):
    """ROS adapter around FrankaBridgeLogic for franka_ros2."""

    def __init__(self) -> None:
        super().__init__("franka_bridge")
        self.params = p = conv.declare_config(self, FrankaBridgeNodeConfig)
        self.names = names = conv.declare_config(self, fi.FrankaInterfaceNames)
        config = conv.declare_config(self, FrankaBridgeConfig)
        try:
            self._reset_goal = (np.asarray(p.reset_position, float), quat_normalize(p.reset_quaternion))
        except ValueError as exc:
            raise ConfigError(f"invalid franka_bridge parameters: {exc}") from exc
        if np.any(self._reset_goal[0] < config.workspace_min) or np.any(self._reset_goal[0] > config.workspace_max):
            raise ConfigError(f"reset_position {p.reset_position} is outside the workspace box "
                                 f"{config.workspace_min}..{config.workspace_max}")
        self.msgs = fi.load_franka_msgs()
        self.logic = FrankaBridgeLogic(config, clock=self._now)

        self._pub_target = self.create_publisher(PoseStamped, names.target_topic, names.target_qos)
        self._pub_target_view = self.create_publisher(PoseStamped, conv.TARGET_POSE, conv.RELIABLE_QOS)
        self._pub_pose = self.create_publisher(PoseStamped, conv.EE_POSE, conv.RELIABLE_QOS)
        self._pub_joints = self.create_publisher(JointState, conv.JOINT_STATES, conv.RELIABLE_QOS)
        self._pub_gripper = self.create_publisher(JointState, conv.GRIPPER_STATE, conv.RELIABLE_QOS)
        self._pub_mode = self.create_publisher(String, conv.ROBOT_MODE, conv.LATCHED_QOS)
        self._pub_estop = self.create_publisher(Bool, conv.ESTOP, conv.LATCHED_QOS)
        self._pub_episode = self.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        m = self.msgs
        self._move = ActionClient(self, m.Move, names.gripper_move_action)
        self._grasp = ActionClient(self, m.Grasp, names.gripper_grasp_action)
        self._homing = ActionClient(self, m.Homing, names.gripper_homing_action)
        self._recovery = ActionClient(self, m.ErrorRecovery, names.error_recovery_action)
        self._action_names = {id(self._move): names.gripper_move_action,
                              id(self._grasp): names.gripper_grasp_action,
                              id(self._homing): names.gripper_homing_action,
                              id(self._recovery): names.error_recovery_action}
        # The full state comes at the controller rate (1 kHz): a callback per sample plus its deserialisation would
        # take more than a core in Python. The samples wait in a newest-only reader that wakes nothing; a timer
        # takes and decodes the newest one state_rate_hz times a second.
        self._state = LatestSampleReader(self, m.FrankaRobotState, names.robot_state_topic, "state_reader",
                                         fi.ROBOT_STATE_QOS)
        self.create_timer(1.0 / p.state_rate_hz, self._take_state)
        self.create_subscription(JointState, names.gripper_joint_states_topic, self._on_fingers, conv.RELIABLE_QOS)
        self.create_subscription(EEDeltaCommand, conv.ROBOT_COMMAND, self._on_command, conv.RELIABLE_QOS)
        self.create_subscription(Bool, conv.ESTOP_STATE, self._on_gate_estop, conv.LATCHED_QOS)
        # These services are coroutines that wait for action results / the reset motion. A callback group stays
        # busy while its coroutine waits, so they get their own group: the state, command and timer callbacks
        # (default group) keep running meanwhile.
        waiting = ReentrantCallbackGroup()
        self.create_service(Trigger, conv.ERROR_RECOVERY_SERVICE, self._on_error_recovery, callback_group=waiting)
        self.create_service(Trigger, conv.HOME_GRIPPER_SERVICE, self._on_home_gripper, callback_group=waiting)
        self.create_service(ResetEpisode, conv.RESET_EPISODE_SERVICE, self._on_reset, callback_group=waiting)
        self.create_timer(1.0 / p.control_rate_hz, self._reset_step)
        self.create_timer(1.0, self._publish_diagnostics)

        self._fingers: Optional[JointState] = None
        self._last_proprio_t = -math.inf
        self._published_mode: Optional[str] = None
        self._robot_stopped = False          # a REFLEX / USER_STOPPED seen and not yet recovered from
        self._gate_estopped = False
        self._reset: Optional[tuple[Future, float]] = None     # (done future, deadline) of a running reset
        self.episode_id, self.step_count, self.task = 0, 0, ""
        self.get_logger().info(f"bridging {conv.ROBOT_COMMAND} -> {self._pub_target.topic_name} "
                               f"({names.target_controller}); robot state from "
                               f"{self._state.topic_name}; gripper "
                               f"{names.gripper_move_action} / {names.gripper_grasp_action}")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- robot state in, proprio out ----------------------------------------------------------------------
    def _take_state(self) -> None:
        state = self._state.take()
        if state is not None:
            self._on_state(state)

    def _on_state(self, state) -> None:
        pose = state.o_t_ee.pose
        reason = self.logic.on_robot_state(
            state.robot_mode, [pose.position.x, pose.position.y, pose.position.z],
            [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
        mode = self.logic.mode
        if mode.name != self._published_mode:
            self._published_mode = mode.name
            self._pub_mode.publish(String(data=mode.name))
            self.get_logger().info(f"robot mode {mode.name}")
        if reason is not None:
            # The robot stopped itself: latch the e-stop for everyone (the gate latches from /robot/mode too).
            self._robot_stopped = True
            self._pub_estop.publish(Bool(data=True))
            self.get_logger().error(f"e-stop: {reason}. Make the scene safe, release the stop, then call "
                                    f"{conv.ERROR_RECOVERY_SERVICE} and {conv.RESET_ESTOP_SERVICE}")
        elif self._robot_stopped and mode in MOTION_MODES:
            # Recovered by the operator: late joiners must not latch again from a stale True. This does not
            # release the gate's latch (only its reset service does).
            self._robot_stopped = False
            self._pub_estop.publish(Bool(data=False))
        now = self._now()
        if self.logic.position is None or now - self._last_proprio_t < 1.0 / self.params.proprio_rate_hz:
            return
        self._last_proprio_t = now
        stamp = state.header.stamp
        self._pub_joints.publish(self._joint_state(state.measured_joint_state, stamp))
        if self._fingers is not None:
            # Before the pose, as sim_bridge does: the learner completes an observation on the pose.
            width = float(sum(self._fingers.position))
            opening = JointState(name=["opening"], position=[min(max(width / FRANKA_HAND_MAX_WIDTH_M, 0.0), 1.0)])
            opening.header.stamp = stamp
            self._pub_gripper.publish(opening)
        self._pub_pose.publish(pose_from_arrays(self.logic.position, self.logic.quaternion, stamp=stamp,
                                                frame_id=self.params.base_frame))

    def _joint_state(self, arm: JointState, stamp) -> JointState:
        """Arm joints from the robot state followed by the finger joints (the learner's proprio)."""
        names, position = list(arm.name), list(arm.position)
        velocity, effort = list(arm.velocity), list(arm.effort)
        fingers = self._fingers
        if fingers is not None:
            names += list(fingers.name)
            position += list(fingers.position)
            # JointState arrays are all-or-nothing: keep velocity/effort only when both parts have them.
            velocity = velocity + list(fingers.velocity) if velocity and len(fingers.velocity) == len(fingers.name) \
                else []
            effort = effort + list(fingers.effort) if effort and len(fingers.effort) == len(fingers.name) else []
        joints = JointState(name=names, position=position, velocity=velocity, effort=effort)
        joints.header.stamp = stamp
        return joints

    def _on_fingers(self, msg: JointState) -> None:
        self._fingers = msg

    def _on_gate_estop(self, msg: Bool) -> None:
        self._gate_estopped = bool(msg.data)

    # ---- gated commands in, targets and gripper goals out -------------------------------------------------
    def _on_command(self, msg: EEDeltaCommand) -> None:
        if self._reset is not None:
            self.logic.counters["command_during_reset"] += 1
            return
        step = self.logic.step(command_from_msg(msg), bool(msg.hold))
        if step.target is None:
            self.get_logger().warning("no robot state yet: command ignored", throttle_duration_sec=5.0)
            return
        self._send_target(step.target.position, step.target.quaternion)
        if step.gripper is not None:
            self._send_gripper(step.gripper)
        if not step.hold:
            self.step_count += 1
            self._publish_episode(EpisodeInfo.EVENT_STEP)

    def _send_target(self, position, quaternion) -> None:
        target = pose_from_arrays(position, quaternion, stamp=self.get_clock().now().to_msg(),
                                  frame_id=self.params.base_frame)
        self._pub_target.publish(target)
        self._pub_target_view.publish(target)

    def _send_gripper(self, action: GripperAction) -> None:
        fields = self.logic.gripper.goal_fields(action)
        if action is GripperAction.OPEN:
            client, goal = self._move, self.msgs.Move.Goal(width=fields["width"], speed=fields["speed"])
        else:
            client = self._grasp
            goal = self.msgs.Grasp.Goal(width=fields["width"], speed=fields["speed"], force=fields["force"])
            goal.epsilon.inner, goal.epsilon.outer = fields["epsilon"]["inner"], fields["epsilon"]["outer"]
        if not client.server_is_ready():
            self.logic.counters["gripper_server_unavailable"] += 1
            self.get_logger().error(f"gripper action server {self._action_names[id(client)]} not available: "
                                    f"{action.value} not sent", throttle_duration_sec=5.0)
            return
        self.logic.counters[f"gripper_{action.value}"] += 1
        client.send_goal_async(goal).add_done_callback(lambda f, a=action: self._on_gripper_accepted(f, a))

    def _on_gripper_accepted(self, future: Future, action: GripperAction) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self.logic.counters["gripper_goal_rejected"] += 1
            return
        handle.get_result_async().add_done_callback(lambda f, a=action: self._on_gripper_result(f, a))

    def _on_gripper_result(self, future: Future, action: GripperAction) -> None:
        result = future.result().result
        if not result.success:
            # A failed Grasp usually means nothing was between the fingers: normal during learning.
            self.logic.counters[f"gripper_{action.value}_failed"] += 1

    # ---- operator services (never called by the bridge itself) ---------------------------------------------
    async def _on_error_recovery(self, _request, response):
        ok, message = self.logic.request_error_recovery()
        if ok:
            ok, detail = await self._run_action(self._recovery, self.msgs.ErrorRecovery.Goal(), "ErrorRecovery")
            message = f"{detail}; reset the e-stop ({conv.RESET_ESTOP_SERVICE}) to resume" if ok else detail
        response.success, response.message = ok, message
        self.get_logger().warning(f"operator error recovery: {message}")
        return response

    async def _on_home_gripper(self, _request, response):
        ok, message = self.logic.request_homing()
        if ok:
            ok, message = await self._run_action(self._homing, self.msgs.Homing.Goal(), "Homing")
        response.success, response.message = ok, message
        self.get_logger().warning(f"operator gripper homing: {message}")
        return response

    async def _run_action(self, client: ActionClient, goal, name: str) -> tuple[bool, str]:
        """Send a goal and wait for its result without blocking the executor; (succeeded, message)."""
        if not client.server_is_ready():
            return False, f"{name} server {self._action_names[id(client)]} is not available"
        handle = await self._with_timeout(client.send_goal_async(goal))
        if handle is None or not handle.accepted:
            return False, f"{name} goal was not accepted"
        result = await self._with_timeout(handle.get_result_async())
        if result is None:
            return False, f"{name} did not finish within {self.params.action_timeout_s:g} s"
        from action_msgs.msg import GoalStatus

        if result.status != GoalStatus.STATUS_SUCCEEDED:
            error = getattr(result.result, "error", "")
            return False, f"{name} failed (status {result.status}{': ' + error if error else ''})"
        return True, f"{name} succeeded"

    async def _with_timeout(self, future: Future):
        """Await `future`, or return None after action_timeout_s (a one-shot timer completes a proxy)."""
        proxy = Future()
        future.add_done_callback(lambda f: proxy.done() or proxy.set_result(f.result()))
        timer = self.create_timer(self.params.action_timeout_s, lambda: proxy.done() or proxy.set_result(None))
        try:
            return await proxy
        finally:
            self.destroy_timer(timer)

    # ---- episode reset: a slow, limited motion to the reset pose --------------------------------------------
    async def _on_reset(self, request, response):
        refusal = self._reset_refusal()
        if refusal:
            response.success, response.message = False, refusal
            return response
        self.get_logger().info("episode reset: moving to the reset pose and opening the gripper")
        self._publish_episode(EpisodeInfo.EVENT_ENDED, "reset")
        self.logic.gripper.sync(closed=False)
        if self._move.server_is_ready():
            fields = self.logic.gripper.goal_fields(GripperAction.OPEN)
            self._move.send_goal_async(self.msgs.Move.Goal(width=fields["width"], speed=fields["speed"]))
        done = Future()
        self._reset = (done, self._now() + self.params.action_timeout_s)
        reached = await done
        self._reset = None
        if not reached:
            response.success = False
            response.message = "reset pose not reached in time (robot stopped, e-stop, or blocked): check the robot"
            return response
        self.episode_id += 1
        self.step_count = 0
        self.task = request.instruction or self.task
        self._publish_episode(EpisodeInfo.EVENT_STARTED)
        response.success, response.episode_id, response.instruction = True, self.episode_id, self.task
        response.message = f"episode {self.episode_id} started at the reset pose"
        return response

    def _reset_refusal(self, running_ok: bool = False) -> str:
        """Why a reset cannot start (or, with running_ok, go on) now; "" when it can."""
        if self._reset is not None and not running_ok:
            return "a reset is already running"
        if self.logic.position is None:
            return "no robot state received yet"
        if self.logic.mode not in MOTION_MODES:
            return f"robot is in {self.logic.mode.name}: recover it first ({conv.ERROR_RECOVERY_SERVICE})"
        if self._gate_estopped:
            return f"the e-stop is latched: reset it first ({conv.RESET_ESTOP_SERVICE})"
        return ""

    def _reset_step(self) -> None:
        if self._reset is None or self._reset[0].done():
            return
        done, deadline = self._reset
        if self._reset_refusal(running_ok=True) or self._now() > deadline:
            self.logic.counters["reset_failed"] += 1
            done.set_result(False)
            return
        goal_p, goal_q = self._reset_goal
        position, quaternion = self.logic.position, self.logic.quaternion
        rotation = quat_to_rotvec(quat_multiply(goal_q, quat_conjugate(quaternion)))
        if np.linalg.norm(goal_p - position) < 0.01 and np.linalg.norm(rotation) < 0.05:
            done.set_result(True)
            return
        # The same per-step limits, box and cone as learner commands (not the gate: this is the bridge's own move).
        target = compute_target_pose(position, quaternion, CommandDelta(goal_p - position, rotation, 0.0),
                                     self.logic.config)
        self._send_target(target.position, target.quaternion)

    # ---- outputs ------------------------------------------------------------------------------------------
    def _publish_episode(self, event: int, reason: str = "") -> None:
        msg = EpisodeInfo(episode_id=self.episode_id, event=event, task=self.task, step_count=self.step_count,
                          end_reason=reason, perceived_progress=float("nan"), true_success_known=False,
                          privileged_progress=float("nan"))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub_episode.publish(msg)

    def _publish_diagnostics(self) -> None:
        status = self.logic.status()
        stopped = self.logic.mode in STOP_MODES
        level = DiagnosticStatus.ERROR if stopped else (
            DiagnosticStatus.OK if status["has_pose"] else DiagnosticStatus.WARN)
        values = {"robot_ip": self.params.robot_ip}
        values.update({k: status[k] for k in ("robot_mode", "has_pose", "holding", "gripper_closed",
                                              "gripper_toggles_suppressed")})
        values.update({f"count_{k}": v for k, v in sorted(status["counters"].items())})
        values["states_decoded"] = self._state.taken
        message = f"robot {status['robot_mode']}" + ("" if status["has_pose"] else ", no robot state yet")
        array = conv.diagnostics(self, "franka_bridge", level, message, values)
        self._pub_diagnostics.publish(array)

    def close(self) -> None:
        """Destroy the robot-state reader's helper node (run_node calls this on shutdown)."""
        self._state.destroy()


def main(args: Optional[list[str]] = None) -> int:
    """Run the franka_bridge node."""
    return conv.run_node(FrankaBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
