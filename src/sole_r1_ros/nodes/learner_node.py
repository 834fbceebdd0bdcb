"""learner_node: DrQ-v2 / SERL online RL with the reward node's progress as the only reward.

Actor: at `control_rate` (realtime) or on every new observation (lockstep), act on the newest complete observation
(both cameras + EE pose with one stamp) and publish an EEDeltaCommand on /learner/command (physical units: the
normalised action times `translation_scale` / `rotation_scale`; header.stamp = the observation's stamp, which
lockstep bridges match). Learner: a background thread (OnlineLearner) updates at the configured ratio and never
delays the actor. Rewards: ProgressEstimates are matched to observations by stamp. Episodes: started by the bridge's
EpisodeInfo STARTED, ended by the episode manager's EVENT_ENDED (`progress_threshold` ends are terminal, others
truncated). While the e-stop is latched the actor is silent and nothing is stored (the episode is dropped); training
continues from the same replay after the e-stop is reset. The learner never reads true success or privileged
progress. The decisions live in sole_r1_ros.logic.actor_loop.ActorLoop; this node only translates messages and timers.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1_config import parse_key_values
from sole_r1_ros.logic.actor_loop import ActorCommand, ActorLoop, ActorLoopConfig, EpisodeChange, EpisodeEvent
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy
from sole_r1_ros.ros.msg_convert import command_to_msg, pose_to_arrays
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.obs import image_to_chw
from sole_r1_rl.online import OnlineLearner
from sole_r1_rl.policy import architecture_overrides
from sole_r1_rl.reward import RewardConfig

EVENTS = {EpisodeInfo.EVENT_STARTED: EpisodeEvent.STARTED, EpisodeInfo.EVENT_STEP: EpisodeEvent.STEP,
          EpisodeInfo.EVENT_ENDED: EpisodeEvent.ENDED}


@dataclasses.dataclass
class LearnerNodeConfig:
    """Parameters of learner_node besides ActorLoopConfig's (agent hyper-parameters: `preset` + `agent_overrides`)."""

    run_dir: str = param("runs/current", "replay, checkpoints and agent.yaml live here (resumed if present)")
    preset: str = param("serl", "agent preset", choices=("drqv2", "serl"))
    device: str = param("cpu", "torch device of the learner (cpu, cuda, cuda:N)")
    agent_overrides: str = param("", "AgentConfig overrides, space separated: 'batch_size=64 num_seed_steps=100'")
    reward: RewardConfig = param(RewardConfig, "how progress estimates become rewards (reward.* parameters, the "
                                 "trainer's --reward.* flags)")
    actor_refresh_updates: int = param(20, "copy the learner's policy to the actor every N updates", low=1)
    init_policy: str = param("", "policy to start a new run from (a folder, or a name under models/ such as "
                             "policy-reach-v3): its encoder + actor and network shapes; ignored when resuming")


def _ns(stamp) -> int:
    return Time.from_msg(stamp).nanoseconds


class LearnerNode(Node):
    """ROS adapter around ActorLoop and OnlineLearner."""

    def __init__(self) -> None:
        super().__init__("learner_node")
        self.config = cfg = conv.declare_config(self, LearnerNodeConfig)
        self.loop_config = loop_cfg = conv.declare_config(self, ActorLoopConfig)
        try:
            shapes = architecture_overrides(cfg.init_policy) if cfg.init_policy else {}
            overrides = {**shapes, "device": cfg.device,
                         **parse_key_values(cfg.agent_overrides.replace(",", " ").split(), "agent_overrides")}
            agent_config = AgentConfig.preset(cfg.preset, **overrides)
        except (ValueError, TypeError) as exc:  # ConfigError is a ValueError: name both parameters
            raise ConfigError(f"parameters 'preset'/'agent_overrides'/'init_policy': {exc}") from exc
        self.agent_config = agent_config
        self.learner = OnlineLearner(agent_config, cfg.run_dir, cfg.reward,
                                     actor_refresh_updates=cfg.actor_refresh_updates, init_policy=cfg.init_policy)
        self.loop = ActorLoop(self.learner, loop_cfg, cameras=agent_config.cameras)
        self._diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE)):
            if name in agent_config.cameras:
                self.create_subscription(Image, topic, lambda m, n=name: self._on_image(n, m),
                                         conv.IMAGE_SUBSCRIBER_QOS)
        self.create_subscription(PoseStamped, conv.EE_POSE, self._on_pose, conv.RELIABLE_QOS)
        self.create_subscription(JointState, conv.GRIPPER_STATE, self._on_gripper, conv.RELIABLE_QOS)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, self._on_progress, conv.RELIABLE_QOS)
        self.create_subscription(EpisodeInfo, conv.EPISODE_INFO, self._on_episode, conv.EPISODE_SUBSCRIBER_QOS)
        self.create_subscription(Bool, conv.ESTOP_STATE, self._on_estop, conv.LATCHED_QOS)
        if not self.loop.action_scale_known:
            self.create_subscription(Float64MultiArray, conv.ACTION_SCALE, self._on_action_scale, conv.LATCHED_QOS)
        # Created last: the episode manager takes this publisher as "the learner is up" and resets the robot, so
        # every subscription above must exist by then.
        self._command = self.create_publisher(EEDeltaCommand, conv.LEARNER_COMMAND, conv.RELIABLE_QOS)
        if loop_cfg.mode == "realtime":
            self.create_timer(1.0 / loop_cfg.control_rate, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.learner.start()
        self.get_logger().info(f"{cfg.preset} agent on {agent_config.device}, {agent_config.image_size}px "
                               f"{list(agent_config.cameras)}, {loop_cfg.mode}; run dir {cfg.run_dir} "
                               f"({len(self.learner.replay)} transitions in replay)")
        if self.learner.started_from:
            info = self.learner.started_from
            self.get_logger().info(f"started from policy {info['policy']} (reward {info.get('reward', '?')}, "
                                   f"{info.get('env_steps', '?')} env steps)")

    # ---- messages in -----------------------------------------------------------------------------------------
    def _on_image(self, name: str, msg: Image) -> None:
        try:
            image = image_to_numpy(msg, "rgb8")
            size = self.agent_config.image_size
            if image.shape[:2] != (size, size):
                import cv2

                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            frame = image_to_chw(image, size, name)
        except (ImageConversionError, ValueError) as exc:
            self.loop.count_bad_image()
            self.get_logger().warn(f"dropped a {name} image: {exc}", throttle_duration_sec=5.0)
            return
        self._publish(self.loop.on_camera(name, _ns(msg.header.stamp), frame))

    def _on_pose(self, msg: PoseStamped) -> None:
        position, quaternion = pose_to_arrays(msg)
        self._publish(self.loop.on_pose(_ns(msg.header.stamp), position, quaternion))

    def _on_action_scale(self, msg: Float64MultiArray) -> None:
        if self.loop.on_action_scale(msg.data):
            translation, rotation = self.loop.action_scale
            self.get_logger().info(f"action scale: {translation:g} m, {rotation:g} rad per unit action")

    def _on_gripper(self, msg: JointState) -> None:
        if msg.position:
            self.loop.on_gripper(msg.position[0])

    def _on_progress(self, msg: ProgressEstimate) -> None:
        self.loop.on_progress(msg.episode_id, _ns(msg.header.stamp), msg.query_index, msg.progress, msg.valid)

    def _on_episode(self, msg: EpisodeInfo) -> None:
        # Only event, id and end_reason are passed on: true_success / privileged_progress are not for the learner.
        change = self.loop.on_episode(EVENTS.get(msg.event, EpisodeEvent.STEP), msg.episode_id, msg.end_reason)
        if change == EpisodeChange.JOINED:
            self.get_logger().warn(f"joined episode {int(msg.episode_id)} mid-way (missed its start)")

    def _on_estop(self, msg: Bool) -> None:
        if not self.loop.on_estop(bool(msg.data)):
            return
        if self.loop.estopped:
            self.get_logger().warn("e-stop latched: actor paused, episode dropped (replay kept)")
        else:
            self.get_logger().info("e-stop released: acting again from the next episode")

    def _on_tick(self) -> None:
        self._publish(self.loop.tick())

    # ---- messages out ----------------------------------------------------------------------------------------
    def _publish(self, out: Optional[ActorCommand]) -> None:
        if out is not None:
            self._command.publish(command_to_msg(out.command, stamp=Time(nanoseconds=out.stamp_ns).to_msg()))

    def _publish_diagnostics(self) -> None:
        counters = self.learner.counters
        periods = np.asarray(self.loop.periods) if self.loop.periods else np.zeros(1)
        updates = self.learner.update_times
        values = {"env_steps": counters.env_steps, "updates": counters.updates, "episodes": counters.episodes,
                  "replay_transitions": len(self.learner.replay), "target_updates": self.learner.target_updates(),
                  "actor_period_p50_ms": f"{np.percentile(periods, 50) * 1e3:.1f}",
                  "actor_period_p99_ms": f"{np.percentile(periods, 99) * 1e3:.1f}",
                  "update_ms_mean": f"{np.mean(updates) * 1e3:.1f}" if updates else "n/a",
                  "estopped": self.loop.estopped, **{f"count_{k}": v for k, v in self.loop.counts.items()}}
        array = conv.diagnostics(self, "learner_node", DiagnosticStatus.OK,
                                 f"{counters.env_steps} steps, {counters.updates} updates", values)
        self._diagnostics.publish(array)

    def close(self) -> None:
        """Stop learning, checkpoint (the replay of completed episodes is already on disk), write actor timing."""
        self.learner.stop()
        self.learner.save()
        if self.loop.periods:
            periods = np.asarray(self.loop.periods) * 1e3
            timing = {"mode": self.loop_config.mode, "set_period_ms": 1e3 / self.loop_config.control_rate,
                      "actor_period_p50_ms": float(np.percentile(periods, 50)),
                      "actor_period_p99_ms": float(np.percentile(periods, 99)), "samples": int(periods.size),
                      "env_steps": self.learner.counters.env_steps, "updates": self.learner.counters.updates}
            with open(f"{self.config.run_dir}/actor_timing.json", "w") as handle:
                json.dump(timing, handle, indent=1)


def main(args: Optional[list[str]] = None) -> int:
    """Run the learner_node."""
    return conv.run_node(LearnerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
