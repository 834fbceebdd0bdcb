"""sim_bridge: a simulation suite as a drop-in robot -- the same topics and services as the real-robot bridge.

Publishes both camera topics (+ CameraInfo), JointState and the EE pose after every step; applies the gated
EEDeltaCommand from the safety gate (physical units -> the suite's normalised action); serves ResetEpisode; publishes
EpisodeInfo with the simulator's true success and progress marked PRIVILEGED (the learner never subscribes to them).
A command with a NaN/inf field is held whole (the gate rejects those; a graph without it must not crash the bridge),
and counted (`count_bad_commands` on /diagnostics).

Timing (docs/architecture.md): `realtime` steps at `control_rate` with the newest gated command (no fresh command = hold);
`lockstep` steps once per command that answers the newest observation (matched by stamp) and, on reward frames
(every `reward_every`-th step of an episode), first waits for the reward node's estimate of that frame -- so a slow
CPU rewarder gives the same learning signal as a fast GPU one.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1.srv import ResetEpisode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.images import camera_info_from_fov, numpy_to_image
from sole_r1_ros.ros.msg_convert import command_from_msg, pose_from_arrays


@dataclasses.dataclass
class SimBridgeConfig:
    """Parameters of sim_bridge."""

    suite: str = param("metaworld", "simulation suite", choices=("metaworld", "robosuite", "maniskill", "libero"))
    task: str = param("reach-v3", "suite task id (config/tasks/<suite>.yaml)")
    instruction: str = param("", "language instruction; empty = the task's own")
    image_size: int = param(128, "square camera image size, pixels", low=16, high=1024)
    seed: int = param(0, "seed of the first episode; each reset without a seed uses the next one", low=0)
    tuned: bool = param(True, "fast rendering settings (docs/simulation.md)")
    control_rate: float = param(10.0, "control steps per second (realtime mode)", low=0.1, high=1000.0)
    mode: str = param("realtime", "timing mode", choices=("realtime", "lockstep"))
    reward_every: int = param(10, "lockstep: wait for the reward of every N-th frame of an episode", low=1)
    reward_wait_timeout: float = param(300.0, "lockstep: seconds to wait for a reward before stepping anyway",
                                       low=0.1, high=86400.0)
    command_timeout: float = param(0.5, "realtime: a command older than this is not applied (hold); lockstep: "
                                   "seconds to wait for the learner before stepping with a hold", low=0.01,
                                   high=86400.0)
    min_subscribers: int = param(0, "start the first episode only once the wrist camera topic has this many "
                                 "subscribers (reward node, learner, gate), so no node misses the first frame", low=0)
    fovy_deg: float = param(45.0, "vertical field of view reported in CameraInfo, degrees", low=1.0, high=179.0)
    base_frame: str = param("base", "frame_id of poses and commands")


class SimBridge(Node):
    """Runs one ManipulationEnv and exposes it as a robot on the ROS graph."""

    def __init__(self) -> None:
        super().__init__("sim_bridge")
        self.config = cfg = conv.declare_config(self, SimBridgeConfig)
        images = conv.camera_qos(cfg.mode, cfg.reward_every)
        self._pub = {
            "shoulder": self.create_publisher(Image, conv.SHOULDER_IMAGE, images),
            "wrist": self.create_publisher(Image, conv.WRIST_IMAGE, images),
            "shoulder_info": self.create_publisher(CameraInfo, conv.SHOULDER_INFO, conv.RELIABLE_QOS),
            "wrist_info": self.create_publisher(CameraInfo, conv.WRIST_INFO, conv.RELIABLE_QOS),
        }
        self._joints = self.create_publisher(JointState, conv.JOINT_STATES, conv.RELIABLE_QOS)
        self._gripper_state = self.create_publisher(JointState, conv.GRIPPER_STATE, conv.RELIABLE_QOS)
        self._pose = self.create_publisher(PoseStamped, conv.EE_POSE, conv.RELIABLE_QOS)
        self._episode = self.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)
        self._action_scale = self.create_publisher(Float64MultiArray, conv.ACTION_SCALE, conv.LATCHED_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        self.create_subscription(EEDeltaCommand, conv.ROBOT_COMMAND, self._on_command, conv.RELIABLE_QOS)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, self._on_progress, conv.RELIABLE_QOS)
        self.create_service(ResetEpisode, conv.RESET_EPISODE_SERVICE, self._on_reset)
        self.env = None
        self.episode_id = 0
        self.step_count = 0
        self._next_seed = cfg.seed
        self._gripper = 1.0                         # last gripper command (a hold keeps the gripper as it is)
        self._command: Optional[EEDeltaCommand] = None
        self._command_time = -math.inf
        self._obs_stamp: Optional[TimeMsg] = None   # stamp of the newest published observation
        self._ready_time = time.monotonic()
        self._awaiting_reward = False
        self._reward_wait_start = 0.0
        self.counters = {"steps": 0, "holds": 0, "stale_commands": 0, "reward_wait_timeouts": 0,
                         "learner_wait_timeouts": 0, "bad_commands": 0}
        self._make_env(cfg.task)
        self.instruction = cfg.instruction or self.env.instruction
        self._started = False
        period = 1.0 / cfg.control_rate if cfg.mode == "realtime" else 0.01
        self.create_timer(period, self._realtime_step if cfg.mode == "realtime" else self._lockstep_check)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"{cfg.suite}/{cfg.task} ({cfg.mode}, {cfg.image_size}px): '{self.instruction}'")

    # ---- environment ---------------------------------------------------------------------------------------
    def _make_env(self, task: str) -> None:
        from sole_r1_sim import make_env  # imported here: suites load MuJoCo/SAPIEN, slow and heavy

        if self.env is not None:
            self.env.close()
        size = self.config.image_size
        try:
            self.env = make_env(self.config.suite, task, image_size=(size, size), seed=self.config.seed,
                                tuned=self.config.tuned)
        except (KeyError, ValueError, FileNotFoundError, ImportError) as exc:
            raise ConfigError(f"parameter 'suite'/'task' ({self.config.suite}/{task}): {exc}") from exc
        self.task_name = task
        scale = self.env.action_scale  # the learner scales its normalised actions with these (latched)
        rotation = scale.rotation if any(scale.rotation_axes) else 0.0
        self._action_scale.publish(Float64MultiArray(data=[float(scale.translation), float(rotation)]))

    def _start_episode(self, seed: Optional[int], instruction: str) -> None:
        if seed is None or seed < 0:
            seed = self._next_seed
        self._next_seed = seed + 1
        observation, _ = self.env.reset(seed=seed)
        self.instruction = instruction or self.env.instruction
        self.episode_id += 1
        self.step_count = 0
        self._command = None
        self._publish_episode(EpisodeInfo.EVENT_STARTED)
        self._publish_observation(observation)

    def _to_action(self, command: Optional[EEDeltaCommand]) -> np.ndarray:
        """Gated physical command -> the suite's normalised 7-D action (hold or none -> zero motion)."""
        action = np.zeros(7)
        scale = self.env.action_scale
        if command is not None and not command.hold:
            t, r = command.translation, command.rotation
            action[:3] = _normalise(np.array([t.x, t.y, t.z]), scale.translation)
            action[3:6] = _normalise(np.array([r.x, r.y, r.z]), scale.rotation)  # 0 where the suite cannot rotate
            if command.gripper != 0.0:  # 0 asks for no gripper change
                self._gripper = float(command.gripper)
        else:
            self.counters["holds"] += 1
        action[6] = self._gripper
        return np.clip(action, -1.0, 1.0)

    def _step(self, command: Optional[EEDeltaCommand]) -> None:
        observation, _, terminated, truncated, _ = self.env.step(self._to_action(command))
        self.step_count += 1
        self.counters["steps"] += 1
        self._publish_observation(observation)
        self._publish_episode(EpisodeInfo.EVENT_STEP)

    # ---- timing --------------------------------------------------------------------------------------------
    def _ready_to_start(self) -> bool:
        """Start the first episode once enough subscribers are connected (or a reset arrived)."""
        if not self._started and self._pub["wrist"].get_subscription_count() >= self.config.min_subscribers:
            self._started = True
            self._start_episode(self.config.seed, self.config.instruction)
            return False  # the first observation just went out: nothing to step yet
        return self._started

    def _realtime_step(self) -> None:
        if not self._ready_to_start():
            return
        fresh = self._command is not None and time.monotonic() - self._command_time <= self.config.command_timeout
        if self._command is not None and not fresh:
            self.counters["stale_commands"] += 1
        self._step(self._command if fresh else None)

    def _lockstep_check(self) -> None:
        if not self._ready_to_start():
            return
        now = time.monotonic()
        if self._awaiting_reward:
            if now - self._reward_wait_start < self.config.reward_wait_timeout:
                return
            self.counters["reward_wait_timeouts"] += 1
            self.get_logger().warn(f"no reward for step {self.step_count} after "
                                   f"{self.config.reward_wait_timeout:g} s: stepping on", throttle_duration_sec=10)
            self._awaiting_reward, self._ready_time = False, now
        command = self._command
        if command is not None and command.header.stamp == self._obs_stamp:
            self._command = None
            self._step(command)
        elif now - self._ready_time > self.config.command_timeout:
            self.counters["learner_wait_timeouts"] += 1  # the learner missed this observation: hold and go on
            self._step(None)

    def _on_command(self, msg: EEDeltaCommand) -> None:
        if not msg.hold and not command_from_msg(msg).is_finite():
            self.counters["bad_commands"] += 1
            self.get_logger().warn("non-finite command held (is the safety gate running?)", throttle_duration_sec=10)
            msg.hold = True   # held whole: not even its gripper value (kept across steps) reaches the simulator
        self._command = msg
        self._command_time = time.monotonic()
        if self.config.mode == "lockstep":
            self._lockstep_check()

    def _on_progress(self, msg: ProgressEstimate) -> None:
        if self._awaiting_reward and msg.header.stamp == self._obs_stamp:
            self._awaiting_reward, self._ready_time = False, time.monotonic()
            self._lockstep_check()

    # ---- outputs -------------------------------------------------------------------------------------------
    def _publish_observation(self, observation) -> None:
        stamp = self.get_clock().now().to_msg()
        self._obs_stamp = stamp
        self._ready_time = time.monotonic()  # lockstep: from now (or from the reward's arrival) the learner may act
        if self.config.mode == "lockstep" and self.step_count % self.config.reward_every == 0:
            self._awaiting_reward, self._reward_wait_start = True, self._ready_time
        for name, frame in (("shoulder", observation.shoulder), ("wrist", observation.wrist)):
            frame_id = f"{name}_camera"
            self._pub[name].publish(numpy_to_image(frame, "rgb8", stamp=stamp, frame_id=frame_id))
            self._pub[f"{name}_info"].publish(camera_info_from_fov(frame.shape[1], frame.shape[0],
                                                                   self.config.fovy_deg, frame_id, stamp))
        proprio = observation.proprio
        joints = JointState(name=list(proprio.joint_names), position=[float(v) for v in proprio.joint_positions])
        joints.header.stamp = stamp
        self._joints.publish(joints)
        gripper = JointState(name=["opening"], position=[float(proprio.gripper_opening)])
        gripper.header.stamp = stamp
        self._gripper_state.publish(gripper)  # before the pose: the learner completes an observation on the pose
        self._pose.publish(pose_from_arrays(proprio.ee_position, proprio.ee_quaternion, stamp=stamp,
                                            frame_id=self.config.base_frame))

    def _publish_episode(self, event: int, reason: str = "") -> None:
        msg = EpisodeInfo(episode_id=self.episode_id, event=event, task=self.instruction, task_name=self.task_name,
                          step_count=self.step_count, end_reason=reason, perceived_progress=float("nan"),
                          true_success_known=True, true_success=bool(self.env.true_success()),
                          privileged_progress=float(self.env.privileged_progress()))
        msg.header.stamp = self._obs_stamp or self.get_clock().now().to_msg()
        if event == EpisodeInfo.EVENT_STARTED:
            msg.header.stamp = self.get_clock().now().to_msg()
        self._episode.publish(msg)

    def _publish_diagnostics(self) -> None:
        values = {"episode_id": self.episode_id, "step": self.step_count}
        values.update({f"count_{k}": v for k, v in sorted(self.counters.items())})
        level = DiagnosticStatus.WARN if self.counters["bad_commands"] else DiagnosticStatus.OK
        self._diagnostics.publish(conv.diagnostics(self, "sim_bridge", level, f"{self.config.suite}/{self.task_name}",
                                                   values))

    def _on_reset(self, request, response):
        try:
            if request.task_name and request.task_name != self.task_name:
                self._make_env(request.task_name)
            if self._started:
                self._publish_episode(EpisodeInfo.EVENT_ENDED, "reset")
            self._started = True
            self._start_episode(int(request.seed), request.instruction)
        except Exception as exc:  # noqa: BLE001 -- a bad reset request must not kill the bridge
            response.success, response.message = False, f"reset failed: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.message = f"episode {self.episode_id}: {self.task_name}"
        response.episode_id = self.episode_id
        response.instruction = self.instruction
        return response

    def close(self) -> None:
        """Close the simulator (renderers must be freed before the process exits)."""
        if self.env is not None:
            self.env.close()
            self.env = None


def _normalise(values: np.ndarray, scale: float) -> np.ndarray:
    """Physical delta -> normalised action component; zero when the suite has no such motion (scale 0)."""
    return values / scale if scale > 0 else np.zeros_like(values)


def main(args: Optional[list[str]] = None) -> int:
    """Run the sim_bridge node."""
    return conv.run_node(SimBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
