"""reward_node: score the camera stream with a rewarder and publish ProgressEstimate -- the learner's only reward.

Subscribes the shoulder and wrist cameras and /episode/info (a new episode resets the frames and brings the task);
asks the rewarder on a worker thread (async: at `query_rate` Hz, one query in flight; lockstep: every
`reward_every`-th frame pair, stamped with that pair's stamp); publishes /reward/progress on every answer, rviz
markers on /reward/markers, /diagnostics at 1 Hz, and serves /reward/query (QueryProgress) in its own callback
group. The logic lives in sole_r1_ros.logic.reward.RewardSession; this node only translates messages and timers.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from sole_r1.msg import EpisodeInfo, ProgressEstimate
from sole_r1.srv import QueryProgress
from sole_r1_model.rewarder import Rewarder
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy
from sole_r1_ros.ros import markers
from sole_r1_ros.logic.reward.episode_frames import EXTERNAL, WRIST, EpisodeFramesConfig
from sole_r1_ros.logic.reward.rewarder_loading import load_rewarder
from sole_r1_ros.logic.reward.session import MODES, Estimate, RewarderCallError, RewardSession, RewardSessionConfig

DIAGNOSTICS_PERIOD = 1.0    # seconds
TIMEOUT_CHECK_PERIOD = 0.1  # seconds: how late a timeout may be noticed


@dataclasses.dataclass
class RewardNodeConfig:
    """Parameters of reward_node."""

    rewarder: str = param("sole_r1", "rewarder spec: sole_r1 | openai | oracle | a config/rewarders name (tiny) | "
                          "a YAML file")
    rewarder_options: str = param("", "YAML mapping merged over the rewarder's config, e.g. '{max_new_tokens: 64}'")
    task: str = param("", "task instruction until /episode/info brings one")
    mode: str = param("async", "async: query at query_rate; lockstep: every reward_every-th frame pair",
                      choices=MODES)
    query_rate: float = param(1.0, "async mode: queries per second (one in flight at a time)", low=0.01, high=100.0)
    reward_every: int = param(1, "lockstep mode: score every n-th frame pair of the episode", low=1, high=100000)
    query_timeout: float = param(60.0, "seconds before a query counts as failed; its late answer is discarded",
                                 low=0.05, high=3600.0)
    pair_tolerance: float = param(0.02, "largest wrist/shoulder stamp difference of a frame pair, seconds",
                                  low=0.0, high=10.0)
    max_frames: int = param(64, "frame pairs held per episode (first, previous and newest always kept)",
                            low=3, high=100000)
    use_wrist: bool = param(True, "pair the wrist camera with the shoulder camera (false: shoulder camera only)")
    marker_frame_id: str = param("base", "frame the rviz progress markers are drawn in")

    def __post_init__(self) -> None:
        if not self.rewarder.strip():
            raise ConfigError("parameter 'rewarder' is empty: use sole_r1, openai, oracle, tiny or a YAML path")
        if not self.marker_frame_id:
            raise ConfigError("parameter 'marker_frame_id' is empty: name a frame such as 'base'")


class RewardNode(Node):
    """ROS adapter of RewardSession: cameras and episodes in, progress, markers and diagnostics out."""

    def __init__(self, rewarder: Optional[Rewarder] = None, **node_kwargs) -> None:
        """`rewarder`: use this instance instead of loading the `rewarder` parameter (tests, embedding)."""
        super().__init__("reward_node", **node_kwargs)
        cfg = self.config = conv.declare_config(self, RewardNodeConfig)
        if rewarder is None:
            try:
                rewarder = load_rewarder(cfg.rewarder, cfg.rewarder_options)
            except (ValueError, FileNotFoundError, TypeError) as exc:
                raise ConfigError(f"parameter 'rewarder' = {cfg.rewarder!r} / 'rewarder_options': {exc}") from exc
        frames = EpisodeFramesConfig(pair_tolerance=cfg.pair_tolerance, max_frames=cfg.max_frames,
                                     use_wrist=cfg.use_wrist)
        session_config = RewardSessionConfig(task=cfg.task, mode=cfg.mode, reward_every=cfg.reward_every,
                                             query_timeout=cfg.query_timeout, frames=frames)
        self.marker_style = markers.MarkerStyle(frame_id=cfg.marker_frame_id)
        self._pub_progress = self.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
        self._pub_markers = self.create_publisher(MarkerArray, conv.REWARD_MARKERS, conv.RELIABLE_QOS)
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        self.session = RewardSession(rewarder, session_config, self._publish_estimate)

        # Three groups for a MultiThreadedExecutor: camera input, timers and the service never wait on each other.
        inputs, timers, service = (MutuallyExclusiveCallbackGroup() for _ in range(3))
        images = conv.camera_qos(cfg.mode, cfg.reward_every)
        self.create_subscription(Image, conv.SHOULDER_IMAGE, lambda m: self._on_image(EXTERNAL, m),
                                 images, callback_group=inputs)
        if cfg.use_wrist:
            self.create_subscription(Image, conv.WRIST_IMAGE, lambda m: self._on_image(WRIST, m),
                                     images, callback_group=inputs)
        self.create_subscription(EpisodeInfo, conv.EPISODE_INFO, self._on_episode, conv.EPISODE_SUBSCRIBER_QOS,
                                 callback_group=inputs)
        self.create_service(QueryProgress, conv.QUERY_PROGRESS_SERVICE, self._on_query, callback_group=service)
        if cfg.mode in ("async", "realtime"):
            self.create_timer(1.0 / cfg.query_rate, self.session.request_query, callback_group=timers)
        self.create_timer(TIMEOUT_CHECK_PERIOD, self.session.check_timeout, callback_group=timers)
        self.create_timer(DIAGNOSTICS_PERIOD, self._publish_diagnostics, callback_group=timers)
        timing = (f"{cfg.query_rate:g} queries/s" if cfg.mode in ("async", "realtime")
                  else f"lockstep, every {cfg.reward_every} frame pair(s)")
        privileged = " (PRIVILEGED: simulator progress, not a reward model)" if rewarder.privileged else ""
        self.get_logger().info(f"rewarder {rewarder.name}{privileged}, {timing}, task {cfg.task!r}")

    # ------------------------------------------------------------------------------------------------ inputs
    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            frame = image_to_numpy(msg, "rgb8")
        except ImageConversionError as exc:
            self.session.count_malformed_image()
            self.get_logger().warning(f"{camera} camera: malformed image dropped ({exc})", throttle_duration_sec=5.0)
            return
        self.session.add_frame(camera, Time.from_msg(msg.header.stamp).nanoseconds, frame)

    def _on_episode(self, msg: EpisodeInfo) -> None:
        if msg.event == EpisodeInfo.EVENT_STARTED:
            if self.session.start_episode(msg.episode_id, msg.task, Time.from_msg(msg.header.stamp).nanoseconds):
                self.get_logger().info(f"episode {msg.episode_id} started: {self.session.task!r}")
        elif msg.event == EpisodeInfo.EVENT_STEP and math.isfinite(msg.privileged_progress):
            self.session.note_privileged(Time.from_msg(msg.header.stamp).nanoseconds, msg.privileged_progress)

    def _on_query(self, request: QueryProgress.Request, response: QueryProgress.Response) -> QueryProgress.Response:
        try:
            external = [image_to_numpy(m, "rgb8") for m in request.external_frames]
            wrist = [image_to_numpy(m, "rgb8") for m in request.wrist_frames]
            result = self.session.score_frames(request.task, external, wrist, request.previous_progress)
        except (ImageConversionError, ValueError) as exc:
            response.success, response.message = False, f"bad request: {exc}"
            return response
        except RewarderCallError as exc:  # an unparsable answer is no failure: it comes back with valid=false
            response.success, response.message = False, str(exc)
            return response
        estimate = response.estimate
        estimate.header.stamp = request.external_frames[-1].header.stamp
        estimate.task, estimate.progress, estimate.valid = request.task, float(result.progress), bool(result.valid)
        estimate.reasoning, estimate.raw_text = result.reasoning, result.raw_text
        estimate.query_index, estimate.frames_used = len(external) - 1, len(external)
        estimate.latency, estimate.rewarder = float(result.latency), result.rewarder
        estimate.privileged = bool(result.privileged)
        response.success, response.message = True, result.error
        return response

    # ----------------------------------------------------------------------------------------------- outputs
    def _publish_estimate(self, estimate: Estimate) -> None:
        msg = ProgressEstimate(episode_id=estimate.episode_id, task=estimate.task, progress=float(estimate.progress),
                               reasoning=estimate.reasoning, raw_text=estimate.raw_text, valid=estimate.valid,
                               query_index=estimate.query_index, frames_used=estimate.frames_used,
                               latency=float(estimate.latency), rewarder=estimate.rewarder,
                               privileged=estimate.privileged)
        msg.header.stamp = Time(nanoseconds=estimate.stamp_ns).to_msg()
        self._pub_progress.publish(msg)
        self._pub_markers.publish(markers.progress_markers(msg, self.marker_style))
        if not estimate.valid:
            self.get_logger().warning(f"query {estimate.query_index}: invalid answer ({estimate.error_kind}: "
                                   f"{estimate.error}); progress stays {estimate.progress:.0f}%",
                                   throttle_duration_sec=5.0)

    def _publish_diagnostics(self) -> None:
        snapshot = self.session.snapshot()
        self._pub_diagnostics.publish(markers.diagnostics(snapshot, self.get_clock().now().to_msg(),
                                                          self.get_name()))

    def close(self) -> None:
        """Stop the rewarder worker and release the model (called by run_node on shutdown)."""
        self.session.close()


def main(args: Optional[list[str]] = None) -> int:
    """Run the reward_node (multi-threaded so the service never blocks camera callbacks)."""
    return conv.run_node(RewardNode, args, multithreaded=True)


if __name__ == "__main__":
    raise SystemExit(main())
