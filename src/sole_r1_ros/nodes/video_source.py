"""video_source: replay recorded episodes as the shoulder and wrist camera topics (+ CameraInfo).

Sources: two videos / image folders (`shoulder_path`, `wrist_path`), one side-by-side video
(`side_by_side_path`: left half = shoulder/external, right half = wrist, the official SOLE-R1 test-video layout),
or an episode bag written by the recorder node (`bag`: its two camera topics, wrist frame nearest in time).
Both images of a pair carry the same stamp. With `task` set, each pass over the recording is announced as a new
episode on /episode/info, so a reward node scores every pass from 0 %.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

import cv2
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from sole_r1.msg import EpisodeInfo
from sole_r1_model.frames import split_side_by_side
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.logic.frame_reader import FrameReader
from sole_r1_ros.ros.images import camera_info_from_fov, numpy_to_image


@dataclasses.dataclass
class VideoSourceConfig:
    """Parameters of video_source."""

    shoulder_path: str = param("", "video file or image folder for the shoulder (external) camera")
    wrist_path: str = param("", "video file or image folder for the wrist camera")
    side_by_side_path: str = param("", "one video: left half shoulder, right half wrist (instead of the two paths)")
    bag: str = param("", "an episode bag folder from the recorder node (instead of the paths): its camera topics")
    rate: float = param(10.0, "frames per second to publish", low=0.1, high=1000.0)
    loop: bool = param(True, "start again at the end of the recording")
    exit_when_done: bool = param(True, "with loop=false: stop the node after the last frame")
    width: int = param(0, "resize frames to this width (0 keeps the recorded size)", low=0, high=8192)
    height: int = param(0, "resize frames to this height (0 keeps the recorded size)", low=0, high=8192)
    fovy_deg: float = param(60.0, "vertical field of view for CameraInfo, degrees", low=1.0, high=179.0)
    shoulder_frame_id: str = param("shoulder_camera", "frame_id of shoulder images")
    wrist_frame_id: str = param("wrist_camera", "frame_id of wrist images")
    task: str = param("", "if set: announce each pass as a new episode with this instruction on /episode/info")
    start_delay: float = param(0.0, "seconds to wait before the first frame (lets subscribers connect)", low=0.0,
                               high=60.0)

    def __post_init__(self) -> None:
        sources = [bool(self.side_by_side_path), bool(self.shoulder_path or self.wrist_path), bool(self.bag)]
        if sources.count(True) != 1 or (sources[1] and not (self.shoulder_path and self.wrist_path)):
            raise ConfigError("set one source: 'side_by_side_path', 'bag', or both 'shoulder_path' and 'wrist_path'")
        if (self.width == 0) != (self.height == 0):
            raise ConfigError("set both 'width' and 'height' (or neither)")


class VideoSource(Node):
    """Publishes frame pairs from recordings at a fixed rate."""

    def __init__(self) -> None:
        super().__init__("video_source")
        self.config = conv.declare_config(self, VideoSourceConfig)
        cfg = self.config
        self._size = (cfg.width, cfg.height) if cfg.width else None
        try:  # fail at start, with a message naming the parameter, if a path is wrong
            self._open_sources()
        except (FileNotFoundError, ValueError) as exc:
            name = "side_by_side_path" if cfg.side_by_side_path else "bag" if cfg.bag else "shoulder_path/wrist_path"
            raise ConfigError(f"parameter '{name}': {exc}") from exc
        self._pub_shoulder = self.create_publisher(Image, conv.SHOULDER_IMAGE, conv.IMAGE_PUBLISHER_QOS)
        self._pub_wrist = self.create_publisher(Image, conv.WRIST_IMAGE, conv.IMAGE_PUBLISHER_QOS)
        self._pub_shoulder_info = self.create_publisher(CameraInfo, conv.SHOULDER_INFO, conv.RELIABLE_QOS)
        self._pub_wrist_info = self.create_publisher(CameraInfo, conv.WRIST_INFO, conv.RELIABLE_QOS)
        self._pub_episode = self.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)
        self._frames: Optional[Iterator[tuple[np.ndarray, np.ndarray]]] = None
        self._episode_id = 0
        self._step = 0
        self.published = 0
        self._started = self.get_clock().now()
        self._timer = self.create_timer(1.0 / cfg.rate, self._tick)
        self.get_logger().info(f"publishing {self._describe()} at {cfg.rate:g} Hz (loop={cfg.loop})")

    def _describe(self) -> str:
        cfg = self.config
        if cfg.bag:
            return f"bag {cfg.bag}"
        return f"side-by-side {cfg.side_by_side_path}" if cfg.side_by_side_path \
            else f"shoulder {cfg.shoulder_path} + wrist {cfg.wrist_path}"

    def _open_sources(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cfg = self.config
        if cfg.bag:
            from sole_r1_ros.logic.bags import read_episode

            pairs = read_episode(cfg.bag).iter_frame_pairs()
            return ((self._resize(a), self._resize(b)) for a, b in pairs) if self._size else pairs
        if cfg.side_by_side_path:
            reader = FrameReader(cfg.side_by_side_path)
            pairs = (split_side_by_side(frame) for frame in reader)
            if self._size:
                pairs = ((self._resize(a), self._resize(b)) for a, b in pairs)
            return pairs
        shoulder, wrist = FrameReader(cfg.shoulder_path, self._size), FrameReader(cfg.wrist_path, self._size)
        return zip(iter(shoulder), iter(wrist))  # stops at the shorter recording

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        return cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)

    def _next_pair(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        if self._frames is None:
            self._frames = self._open_sources()
            self._begin_episode()
        pair = next(self._frames, None)
        if pair is None and self.config.loop:
            self._end_episode()
            self._frames = self._open_sources()
            self._begin_episode()
            pair = next(self._frames, None)
        return pair

    def _begin_episode(self) -> None:
        self._episode_id += 1
        self._step = 0
        self._announce(EpisodeInfo.EVENT_STARTED)

    def _end_episode(self) -> None:
        self._announce(EpisodeInfo.EVENT_ENDED, "end_of_recording")

    def _announce(self, event: int, reason: str = "") -> None:
        if not self.config.task:
            return
        msg = EpisodeInfo(episode_id=self._episode_id, event=event, task=self.config.task, step_count=self._step,
                          end_reason=reason, true_success_known=False, privileged_progress=float("nan"))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub_episode.publish(msg)

    def _tick(self) -> None:
        elapsed = (self.get_clock().now() - self._started).nanoseconds * 1e-9
        if elapsed < self.config.start_delay:
            return
        pair = self._next_pair()
        if pair is None:
            self._end_episode()
            self.get_logger().info(f"end of recording after {self.published} frame pairs")
            self._timer.cancel()
            if self.config.exit_when_done:
                raise SystemExit(0)
            return
        stamp = self.get_clock().now().to_msg()
        cfg = self.config
        for frame, frame_id, pub, pub_info in ((pair[0], cfg.shoulder_frame_id, self._pub_shoulder,
                                                self._pub_shoulder_info),
                                               (pair[1], cfg.wrist_frame_id, self._pub_wrist, self._pub_wrist_info)):
            pub.publish(numpy_to_image(frame, "rgb8", stamp=stamp, frame_id=frame_id))
            pub_info.publish(camera_info_from_fov(frame.shape[1], frame.shape[0], cfg.fovy_deg, frame_id, stamp))
        self._step += 1
        self.published += 1


def main(args: Optional[list[str]] = None) -> int:
    """Run the video_source node."""
    return conv.run_node(VideoSource, args)


if __name__ == "__main__":
    raise SystemExit(main())
