"""episode_manager: runs episodes -- sets the task, resets through the bridge, ends episodes, logs them.

An episode ends at the time limit (`episode_steps` control steps), when a valid perceived progress reaches
`progress_threshold`, or when the e-stop latches (the next episode starts only after the e-stop is reset). Each
end is announced on /episode/info (EVENT_ENDED + end_reason; the learner truncates or terminates its episode there)
and logged: CSV + TensorBoard + the perceived-vs-true success plot in `run_dir`, and an annotated video (both
cameras, progress curve, chain of thought) of every `video_every`-th episode. True success is read from the
bridge's EpisodeInfo (simulator: PRIVILEGED) for logging only.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1.srv import ResetEpisode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import param
from sole_r1_ros.logic.episode_log import EpisodeLog, EpisodeSummary
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy


@dataclasses.dataclass
class EpisodeManagerConfig:
    """Parameters of episode_manager."""

    task: str = param("", "suite task id to reset to (empty: the bridge's current task)")
    instruction: str = param("", "instruction for the rewarder (empty: the task's own)")
    episode_steps: int = param(100, "time limit per episode, control steps", low=1)
    progress_threshold: float = param(95.0, "end the episode when a valid perceived progress reaches this (%)",
                                      low=0.0, high=101.0)
    total_steps: int = param(0, "stop (exit 0) after this many control steps in total; 0 = no limit", low=0)
    total_episodes: int = param(0, "stop (exit 0) after this many episodes; 0 = no limit", low=0)
    run_dir: str = param("runs/current", "folder for episodes.csv, tensorboard/, plots and videos")
    video_every: int = param(10, "annotated video of every N-th episode (1st, N+1-th, ...); 0 = none", low=0)
    seed: int = param(-1, "seed of the first reset (-1: the bridge's own sequence)")
    reset_timeout: float = param(120.0, "seconds to wait for a reset before trying again", low=1.0, high=3600.0)
    require_learner: bool = param(True, "wait for a learner (a /learner/command publisher) before the first reset")


class EpisodeManager(Node):
    """Drives episodes over the bridge's ResetEpisode service and logs them."""

    def __init__(self) -> None:
        super().__init__("episode_manager")
        self.config = cfg = conv.declare_config(self, EpisodeManagerConfig)
        self.log = EpisodeLog(cfg.run_dir)
        self._info = self.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)
        self._reset = self.create_client(ResetEpisode, conv.RESET_EPISODE_SERVICE)
        self.create_subscription(EpisodeInfo, conv.EPISODE_INFO, self._on_info, conv.EPISODE_SUBSCRIBER_QOS)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, self._on_progress, conv.RELIABLE_QOS)
        self.create_subscription(EEDeltaCommand, conv.ROBOT_COMMAND, self._on_robot_command, conv.RELIABLE_QOS)
        self.create_subscription(Bool, conv.ESTOP_STATE, self._on_estop, conv.LATCHED_QOS)
        for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE)):
            self.create_subscription(Image, topic, lambda m, n=name: self._on_image(n, m), conv.IMAGE_SUBSCRIBER_QOS)
        self.episode_id: Optional[int] = None    # the running episode (None between episodes)
        self.episodes_done = 0
        self.total_steps = 0
        self.estopped = False
        self._pending_reset = None
        self._reset_sent = 0.0
        self._next_seed = cfg.seed
        self._clear_episode()
        self.create_timer(0.1, self._supervise)
        self.get_logger().info(f"episodes of {cfg.episode_steps} steps, threshold {cfg.progress_threshold:g} %, "
                               f"logging to {Path(cfg.run_dir).resolve()}")

    # ---- episode state -------------------------------------------------------------------------------------
    def _clear_episode(self) -> None:
        self.steps = 0
        self._bridge_counts_steps = False
        self.estimates: list[ProgressEstimate] = []
        self.true_success: Optional[bool] = None
        self.privileged_progress = float("nan")
        self.started_at = time.monotonic()
        self.instruction = self.config.instruction
        self.frames: dict[str, list] = {"shoulder": [], "wrist": []}

    def _recording(self) -> bool:
        k = self.config.video_every
        return self.episode_id is not None and k > 0 and self.episodes_done % k == 0

    # ---- inputs --------------------------------------------------------------------------------------------
    def _on_info(self, msg: EpisodeInfo) -> None:
        if msg.episode_id != self.episode_id or msg.event == EpisodeInfo.EVENT_ENDED:
            return  # our own ENDED messages, or another episode's
        if msg.task:
            self.instruction = msg.task
        if msg.true_success_known:
            self.true_success = bool(msg.true_success)
        self.privileged_progress = float(msg.privileged_progress)
        if msg.event == EpisodeInfo.EVENT_STEP:  # a simulator bridge counts steps itself
            self._bridge_counts_steps = True
            self._advance(int(msg.step_count) - self.steps)

    def _on_robot_command(self, msg: EEDeltaCommand) -> None:
        # On a real robot every gated, non-hold command is one control step (no bridge step counter there).
        if self.episode_id is not None and not self._bridge_counts_steps and not msg.hold:
            self._advance(1)

    def _advance(self, steps: int) -> None:
        if steps > 0:
            self.steps += steps
            self.total_steps += steps
            if self.steps >= self.config.episode_steps:
                self._end("time_limit")

    def _on_progress(self, msg: ProgressEstimate) -> None:
        if self.episode_id is None or msg.episode_id != self.episode_id:
            return
        self.estimates.append(msg)
        if msg.valid and msg.query_index > 0 and msg.progress >= self.config.progress_threshold:
            self._end("progress_threshold")

    def _on_estop(self, msg: Bool) -> None:
        self.estopped = bool(msg.data)
        if self.estopped and self.episode_id is not None:
            self._end("estop")

    def _on_image(self, name: str, msg: Image) -> None:
        if not self._recording():
            return
        try:
            frame = image_to_numpy(msg, "rgb8")
        except ImageConversionError:
            return
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        self.frames[name].append((stamp, frame))

    # ---- episodes ------------------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if not self._reset.service_is_ready():
            return False
        if self.count_publishers(conv.PROGRESS) == 0:
            return False
        return not self.config.require_learner or self.count_publishers(conv.LEARNER_COMMAND) > 0

    def _supervise(self) -> None:
        if self.episode_id is not None or self.estopped:
            return
        if self._pending_reset is not None:
            if time.monotonic() - self._reset_sent < self.config.reset_timeout:
                return
            self.get_logger().warn("reset did not answer: asking again")
        if not self._ready():
            return
        request = ResetEpisode.Request(task_name=self.config.task, instruction=self.config.instruction,
                                       seed=self._next_seed)
        self._next_seed = self._next_seed + 1 if self._next_seed >= 0 else -1
        self._reset_sent = time.monotonic()
        self._pending_reset = self._reset.call_async(request)
        self._pending_reset.add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        self._pending_reset = None
        response = future.result()
        if response is None or not response.success:
            self.get_logger().error(f"reset failed: {getattr(response, 'message', 'no response')}")
            return
        self._clear_episode()
        self.episode_id = int(response.episode_id)
        self.instruction = response.instruction
        self.get_logger().info(f"episode {self.episode_id} started: '{self.instruction}'")

    def _end(self, reason: str) -> None:
        if self.episode_id is None:
            return
        episode_id, summary = self.episode_id, self._summarise(reason)
        self.episode_id = None
        info = EpisodeInfo(episode_id=episode_id, event=EpisodeInfo.EVENT_ENDED, task=self.instruction,
                           task_name=self.config.task, step_count=self.steps, end_reason=reason,
                           perceived_progress=summary.final_progress,
                           true_success_known=summary.true_success is not None,
                           true_success=bool(summary.true_success), privileged_progress=self.privileged_progress)
        info.header.stamp = self.get_clock().now().to_msg()
        self._info.publish(info)
        self.episodes_done += 1
        self.log.add(summary)
        truth = "unknown" if summary.true_success is None else str(summary.true_success)
        self.get_logger().info(
            f"episode {episode_id} ended ({reason}) after {self.steps} steps: perceived {summary.final_progress:.0f}%"
            f", true success {truth}, {summary.invalid_answers}/{summary.reward_queries} invalid answers")
        if self.frames["shoulder"]:
            self._write_video(episode_id)
        self._clear_episode()
        done_steps = self.config.total_steps and self.total_steps >= self.config.total_steps
        done_episodes = self.config.total_episodes and self.episodes_done >= self.config.total_episodes
        if done_steps or done_episodes:
            self.get_logger().info(f"done: {self.episodes_done} episodes, {self.total_steps} steps; "
                                   f"results in {Path(self.config.run_dir).resolve()}")
            raise SystemExit(0)

    def _summarise(self, reason: str) -> EpisodeSummary:
        valid = [e for e in self.estimates if e.valid]
        final = float(valid[-1].progress) if valid else float("nan")
        latencies = [e.latency for e in self.estimates if e.query_index > 0]
        queries = [e for e in self.estimates if e.query_index > 0]
        return EpisodeSummary(
            episode=self.episode_id, task=self.instruction, length=self.steps, total_steps=self.total_steps,
            end_reason=reason, final_progress=final,
            max_progress=max((float(e.progress) for e in valid), default=float("nan")),
            perceived_return=self._perceived_return(valid),
            perceived_success=bool(valid) and final >= self.config.progress_threshold,
            true_success=self.true_success, privileged_progress=self.privileged_progress,
            reward_queries=len(queries), invalid_answers=sum(1 for e in queries if not e.valid),
            reward_latency_mean_s=float(np.mean(latencies)) if latencies else float("nan"),
            wall_time_s=time.monotonic() - self.started_at)

    def _perceived_return(self, valid: list) -> float:
        """Sum over the episode's steps of interpolated perceived progress / 100 (the learner's default reward)."""
        if not valid or self.steps == 0:
            return float("nan")
        points = sorted({int(e.query_index): float(e.progress) for e in valid}.items())
        if points[0][0] != 0:
            points.insert(0, (0, 0.0))
        # Estimates are about 1 query per `steps / queries` steps: spread them evenly over the episode.
        last_query = max(p[0] for p in points) or 1
        x = np.array([p[0] for p in points], float) * self.steps / last_query
        return float(np.interp(np.arange(1, self.steps + 1), x, [p[1] for p in points]).sum() / 100.0)

    def _write_video(self, episode_id: int) -> None:
        """Annotated MP4 + curve of this episode (both cameras, progress, chain of thought)."""
        from sole_r1_model.offline import write_outputs
        from sole_r1_model.records import build_record

        shoulder = self.frames["shoulder"]
        wrist_by_stamp = dict(self.frames["wrist"])
        stamps = [s for s, _ in shoulder]
        keys, progress, texts, valid, latency = [0], [0.0], [""], [True], [0.0]
        for estimate in self.estimates:
            if estimate.query_index == 0:
                continue
            index = int(np.argmin(np.abs(np.array(stamps) - Time.from_msg(estimate.header.stamp).nanoseconds)))
            if index <= keys[-1]:
                continue
            keys.append(index)
            progress.append(float(estimate.progress))
            texts.append(estimate.raw_text or estimate.reasoning)
            valid.append(bool(estimate.valid))
            latency.append(float(estimate.latency))
        if len(keys) < 2:
            return
        record = build_record(self.estimates[-1].rewarder if self.estimates else "", self.instruction, len(shoulder),
                              keys, progress, texts, valid, latency)
        wrist = [wrist_by_stamp.get(s, f) for s, f in shoulder]
        try:
            write_outputs(record, [f for _, f in shoulder], wrist, Path(self.config.run_dir) / "videos",
                          f"episode_{episode_id:05d}", fps=5.0, height=480)  # cameras big enough to see
        except Exception as exc:  # noqa: BLE001 -- a failed video must never stop training
            self.get_logger().warn(f"could not write the video of episode {episode_id}: {exc}")

    def close(self) -> None:
        """Flush logs."""
        self.log.close()


def main(args: Optional[list[str]] = None) -> int:
    """Run the episode_manager node."""
    return conv.run_node(EpisodeManager, args)


if __name__ == "__main__":
    raise SystemExit(main())
