"""learner_node: DrQ-v2 / SERL online RL with the reward node's progress as the only reward.

Actor: at `control_rate` (realtime) or on every new observation (lockstep), act on the newest complete observation
(both cameras + EE pose with one stamp) and publish an EEDeltaCommand on /learner/command (physical units: the
normalised action times `translation_scale` / `rotation_scale`; header.stamp = the observation's stamp, which
lockstep bridges match). Learner: a background thread (OnlineLearner) updates at the configured ratio and never
delays the actor. Rewards: ProgressEstimates are matched to observations by stamp. Episodes: started by the bridge's
EpisodeInfo STARTED, ended by the episode manager's EVENT_ENDED (`progress_threshold` ends are terminal, others
truncated). While the e-stop is latched the actor is silent and nothing is stored (the episode is dropped); training
continues from the same replay after the e-stop is reset. The learner never reads true success or privileged
progress.
"""
from __future__ import annotations

import collections
import dataclasses
import time
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ParameterError, param
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.obs import PROPRIO, image_to_chw
from sole_r1_rl.online import OnlineLearner
from sole_r1_rl.reward import RewardConfig
from sole_r1_ros.ros.msg_convert import command_to_msg, pose_to_arrays
from sole_r1_ros.logic.safety.command import CommandDelta


@dataclasses.dataclass
class LearnerNodeConfig:
    """Parameters of learner_node (agent hyper-parameters come from `preset` + `agent_overrides`)."""

    mode: str = param("realtime", "realtime (timer) or lockstep (one action per observation)",
                      choices=("realtime", "lockstep"))
    control_rate: float = param(10.0, "actor rate in realtime mode, Hz", low=0.1, high=1000.0)
    run_dir: str = param("runs/current", "replay, checkpoints and agent.yaml live here (resumed if present)")
    preset: str = param("serl", "agent preset", choices=("drqv2", "serl"))
    device: str = param("cpu", "torch device of the learner (cpu, cuda, cuda:N)")
    agent_overrides: str = param("", "AgentConfig overrides, space separated: 'batch_size=64 num_seed_steps=100'")
    translation_scale: float = param(-1.0, "metres per unit action; < 0: take it from the bridge (/robot/action_scale)")
    rotation_scale: float = param(-1.0, "radians per unit action (0: no rotation); < 0: from the bridge")
    reward_mode: str = param("interpolate", "progress between estimates", choices=("interpolate", "hold_last"))
    reward_kind: str = param("progress", "reward = progress/100 or its change", choices=("progress", "delta"))
    actor_refresh_updates: int = param(20, "copy the learner's policy to the actor every N updates", low=1)
    checkpoint_every: int = param(1000, "env steps between checkpoints (taken at episode ends)", low=1)


def parse_overrides(text: str) -> dict:
    """'batch_size=64 lr=1e-4' -> {'batch_size': 64, 'lr': 0.0001} (values parsed as YAML scalars)."""
    import yaml

    result = {}
    for item in text.replace(",", " ").split():
        if not item:
            continue
        if "=" not in item:
            raise ParameterError(f"parameter 'agent_overrides': expected name=value, got {item!r}")
        key, value = item.split("=", 1)
        result[key.strip()] = yaml.safe_load(value)
    return result


class LearnerNode(Node):
    """ROS adapter around OnlineLearner."""

    def __init__(self) -> None:
        super().__init__("learner_node")
        self.config = cfg = conv.declare_config(self, LearnerNodeConfig)
        try:
            overrides = {"device": cfg.device, **parse_overrides(cfg.agent_overrides)}
            agent_config = AgentConfig.preset(cfg.preset, **overrides)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"parameters 'preset'/'agent_overrides': {exc}") from exc
        self.agent_config = agent_config
        self.learner = OnlineLearner(agent_config, cfg.run_dir, RewardConfig(mode=cfg.reward_mode,
                                                                             reward=cfg.reward_kind),
                                     actor_refresh_updates=cfg.actor_refresh_updates)
        self._partial: dict = collections.OrderedDict()   # stamp -> {camera: chw, "pose": ...}
        self._gripper = 1.0
        self._newest_pose: Optional[tuple] = None
        self._latest: Optional[tuple] = None               # (stamp_ns, stamp_msg, frames) of the newest observation
        self._acted_stamp: Optional[int] = None
        self._due = False  # realtime: a control tick found no new observation; act as soon as one completes
        self._last_action: Optional[np.ndarray] = None
        self._frame_of_stamp: dict = {}
        self.episode_id: Optional[int] = None
        self._ended: set = set()
        self.estopped = False
        self._last_checkpoint = self.learner.counters.env_steps
        self.periods: collections.deque = collections.deque(maxlen=1000)
        self._last_act_time: Optional[float] = None
        self.counts = collections.Counter()
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
        self._scale = (cfg.translation_scale, cfg.rotation_scale)
        if min(self._scale) < 0:
            self.create_subscription(Float64MultiArray, conv.ACTION_SCALE, self._on_action_scale, conv.LATCHED_QOS)
        # Created last: the episode manager takes this publisher as "the learner is up" and resets the robot, so
        # every subscription above must exist by then.
        self._command = self.create_publisher(EEDeltaCommand, conv.LEARNER_COMMAND, conv.RELIABLE_QOS)
        if cfg.mode == "realtime":
            self.create_timer(1.0 / cfg.control_rate, self._act)
        self.create_timer(1.0, self._publish_diagnostics)
        self.learner.start()
        self.get_logger().info(f"{cfg.preset} agent on {agent_config.device}, {agent_config.image_size}px "
                               f"{list(agent_config.cameras)}, {cfg.mode}; run dir {cfg.run_dir} "
                               f"({len(self.learner.replay)} transitions in replay)")

    # ---- observations --------------------------------------------------------------------------------------
    def _slot(self, stamp) -> dict:
        key = Time.from_msg(stamp).nanoseconds
        slot = self._partial.setdefault(key, {"stamp": stamp})
        while len(self._partial) > 8:  # observations that never completed: drop the oldest
            self._partial.popitem(last=False)
            self.counts["incomplete_observations"] += 1
        return slot

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            image = image_to_numpy(msg, "rgb8")
            if image.shape[:2] != (self.agent_config.image_size,) * 2:
                import cv2

                size = self.agent_config.image_size
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            self._slot(msg.header.stamp)[name] = image_to_chw(image, self.agent_config.image_size, name)
        except (ImageConversionError, ValueError) as exc:
            self.counts["bad_images"] += 1
            self.get_logger().warn(f"dropped a {name} image: {exc}", throttle_duration_sec=5.0)
            return
        self._complete(msg.header.stamp)

    def _on_pose(self, msg: PoseStamped) -> None:
        position, quaternion = pose_to_arrays(msg)
        self._newest_pose = (position, quaternion)
        if self.config.mode == "lockstep":  # the simulator stamps images and pose alike: pair them exactly
            self._slot(msg.header.stamp)["pose"] = (position, quaternion)
            self._complete(msg.header.stamp)

    def _on_action_scale(self, msg: Float64MultiArray) -> None:
        if len(msg.data) == 2 and all(np.isfinite(msg.data)) and min(msg.data) >= 0:
            cfg = self.config
            self._scale = (cfg.translation_scale if cfg.translation_scale >= 0 else float(msg.data[0]),
                           cfg.rotation_scale if cfg.rotation_scale >= 0 else float(msg.data[1]))
            self.get_logger().info(f"action scale: {self._scale[0]:g} m, {self._scale[1]:g} rad per unit action")

    def _on_gripper(self, msg: JointState) -> None:
        if msg.position:
            self._gripper = float(msg.position[0])

    def _complete(self, stamp) -> None:
        key = Time.from_msg(stamp).nanoseconds
        slot = self._partial.get(key)
        if slot is not None and "pose" not in slot and self.config.mode == "realtime" and self._newest_pose:
            # Real robots stream cameras and robot state independently: pair the image pair with the newest pose.
            slot["pose"] = self._newest_pose
        if slot is None or "pose" not in slot or any(c not in slot for c in self.agent_config.cameras):
            return
        del self._partial[key]
        position, quaternion = slot["pose"]
        proprio = np.concatenate([position, quaternion, [self._gripper]]).astype(np.float32)
        if not np.all(np.isfinite(proprio)):
            self.counts["bad_proprio"] += 1
            return
        frames = {c: slot[c] for c in self.agent_config.cameras}
        frames[PROPRIO] = proprio
        self._latest = (key, stamp, frames)
        if self.config.mode == "lockstep" or self._due:
            self._act()

    # ---- acting --------------------------------------------------------------------------------------------
    def _act(self) -> None:
        if self._latest is None or self.episode_id is None or self.estopped or min(self._scale) < 0:
            return  # (a negative scale: still waiting for the bridge's action scale)
        key, stamp, frames = self._latest
        now = time.monotonic()
        if key == self._acted_stamp:
            # No new observation since the last action. Act when the next one completes rather than at the next
            # tick: a bridge streaming at the control rate drifts against this timer, and skipping a whole tick
            # would turn one 100 ms period into 200 ms every time the two clocks cross. (Unless a late action
            # already answered this tick: then a fast camera stream must not make us act twice per period.)
            recent = self._last_act_time is not None and now - self._last_act_time < 0.5 / self.config.control_rate
            self._due = self.config.mode == "realtime" and not recent
            return
        self._due = False
        if self._last_act_time is not None and self.learner.in_episode:  # resets are no control periods
            self.periods.append(now - self._last_act_time)
        self._last_act_time = now
        learner = self.learner
        if not learner.in_episode:
            learner.begin_episode(frames)
            index = 0
        else:
            index = learner.observe(self._last_action, frames)
        self._frame_of_stamp[key] = index
        self._acted_stamp = key
        action = learner.act()
        self._last_action = action
        self._command.publish(self._to_command(action, stamp))

    def _to_command(self, action: np.ndarray, stamp) -> EEDeltaCommand:
        translation_scale, rotation_scale = self._scale
        command = CommandDelta(np.asarray(action[:3], np.float64) * translation_scale,
                               np.asarray(action[3:6], np.float64) * rotation_scale, float(action[6]),
                               int(self.episode_id or 0))
        return command_to_msg(command, stamp=stamp)

    # ---- rewards and episodes ------------------------------------------------------------------------------
    def _on_progress(self, msg: ProgressEstimate) -> None:
        if msg.query_index == 0:
            return  # frame 0 is 0 % by definition: the reward shaper already anchors it
        index = self._frame_of_stamp.get(Time.from_msg(msg.header.stamp).nanoseconds)
        if index is None or msg.episode_id != self.episode_id:
            self.counts["unmatched_estimates"] += 1  # e.g. a frame the actor never acted on
            return
        self.learner.add_estimate(index, float(msg.progress), bool(msg.valid))
        self.counts["valid_estimates" if msg.valid else "invalid_estimates"] += 1

    def _on_episode(self, msg: EpisodeInfo) -> None:
        # Only event, id and end_reason are read: true_success / privileged_progress are not for the learner.
        episode = int(msg.episode_id)
        if msg.event == EpisodeInfo.EVENT_ENDED:
            self._ended.add(episode)
            if episode == self.episode_id:
                if msg.end_reason == "estop":
                    self.learner.abort_episode()
                else:
                    self.learner.end_episode(terminated=msg.end_reason == "progress_threshold")
                self.episode_id = None
                self._maybe_checkpoint()
        elif episode != self.episode_id and episode not in self._ended:
            # STARTED -- or a STEP of an episode whose STARTED this node missed (it started after the bridge):
            # join it rather than wait forever (in lockstep the bridge would wait for us).
            if self.learner.in_episode:
                self.learner.end_episode(terminated=False)
            if msg.event != EpisodeInfo.EVENT_STARTED:
                self.get_logger().warn(f"joined episode {episode} mid-way (missed its start)")
            self.episode_id = episode
            self._frame_of_stamp.clear()
            self._last_action = None

    def _on_estop(self, msg: Bool) -> None:
        if bool(msg.data) and not self.estopped:
            self.get_logger().warn("e-stop latched: actor paused, episode dropped (replay kept)")
            self.learner.abort_episode()
        elif not msg.data and self.estopped:
            self.get_logger().info("e-stop released: acting again from the next episode")
        self.estopped = bool(msg.data)

    def _maybe_checkpoint(self) -> None:
        if self.learner.counters.env_steps - self._last_checkpoint >= self.config.checkpoint_every:
            self.learner.save()
            self._last_checkpoint = self.learner.counters.env_steps

    def _publish_diagnostics(self) -> None:
        counters = self.learner.counters
        periods = np.asarray(self.periods) if self.periods else np.zeros(1)
        updates = self.learner.update_times
        values = {"env_steps": counters.env_steps, "updates": counters.updates, "episodes": counters.episodes,
                  "replay_transitions": len(self.learner.replay), "target_updates": self.learner.target_updates(),
                  "actor_period_p50_ms": f"{np.percentile(periods, 50) * 1e3:.1f}",
                  "actor_period_p99_ms": f"{np.percentile(periods, 99) * 1e3:.1f}",
                  "update_ms_mean": f"{np.mean(updates) * 1e3:.1f}" if updates else "n/a",
                  "estopped": self.estopped, **{f"count_{k}": v for k, v in self.counts.items()}}
        array = conv.diagnostics(self, "learner_node", DiagnosticStatus.OK,
                                 f"{counters.env_steps} steps, {counters.updates} updates", values)
        self._diagnostics.publish(array)

    def close(self) -> None:
        """Stop learning, checkpoint (the replay of completed episodes is already on disk), write actor timing."""
        self.learner.stop()
        self.learner.save()
        if self.periods:
            import json

            periods = np.asarray(self.periods) * 1e3
            timing = {"mode": self.config.mode, "set_period_ms": 1e3 / self.config.control_rate,
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
